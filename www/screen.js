// guided-ddpm page: the run on screen as the page shows it: its last frame in the chosen view,
// the chart of p(digit | x_t), the push view's legend, and the PNG a user downloads. Drawing
// itself is www/views.js's; the run and its frames are www/run.js's.

import { drawChart as chart, drawLegend, drawTiles } from "./views.js";

const $ = (id) => document.getElementById(id);

const view = () => document.querySelector('input[name="view"]:checked').value;

// The captions of a comparison's tiles: its setting and p(asked digit) now.
function captions(runner) {
  const run = runner.frames?.compare;
  if (!run) return null;
  const p = runner.history.at(-1)?.tiles ?? [];
  return run.labels.map((label, k) => [label, p[k] === undefined ? "" : `p(${run.digit}) = ${p[k].toFixed(2)}`]);
}

/**
 * Draws `runner`'s last frame in the chosen view (the sample, predicted x0, or the classifier's
 * push with its legend).
 * @param {import("./run.js").Runner} runner
 */
export function redraw(runner) {
  const f = runner.frames;
  const v = view();
  $("push-legend").hidden = v !== "push";
  $("push-note").textContent = v === "push" && f && !f.pushed ? "No image of this run uses the classifier, so nothing is pushed: the map stays white." : "";
  if (!f) return;
  const [bytes, rgba] = v === "x0" ? [f.x0, false] : v === "push" ? [f.push, true] : [f.xt, false];
  drawTiles($("canvas"), bytes, f.n, { rgba, captions: captions(runner) });
}

/**
 * p(digit | x_t) over `runner`'s steps so far, of a run of `total` steps.
 * @param {import("./run.js").Runner} runner
 * @param {number} total
 */
export function drawChart(runner, total) {
  chart($("chart"), runner.history, total, { asked: runner.settings?.class, compare: runner.frames?.compare });
}

/**
 * The push view's legend, on the crate's scale for the steps menu's count (a run takes the
 * menu's, `steps` before the menu has one): grid::push_scale is inversely proportional to the
 * steps (a run of fewer steps moves a pixel further per step), so its value at one step
 * (`pushPerStep`), divided by the steps, is its value there.
 * @param {number | null} pushPerStep
 * @param {number} steps
 */
export function legend(pushPerStep, steps) {
  if (pushPerStep === null) return;
  const n = Number($("steps").value) || steps;
  const scale = Number((pushPerStep / n).toPrecision(3)); // an f32 (0.0099999...) as written: 0.01
  drawLegend($("legend-bar"));
  $("legend-lo").textContent = `−${scale} or less: darker`;
  $("legend-hi").textContent = `brighter: +${scale} or more`;
}

/**
 * Downloads the canvas as a PNG named by `runner`'s settings and the view.
 * @param {import("./run.js").Runner} runner
 */
export function download(runner) {
  $("canvas").toBlob((blob) => {
    const a = document.createElement("a");
    const s = runner.settings;
    const what = runner.frames?.compare ? `compare-${runner.frames.compare.preset}` : s.mode;
    a.download = `guided-ddpm-digit${s.class}-${what}-seed${s.seed}-${view()}.png`;
    a.href = URL.createObjectURL(blob);
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, "image/png");
}
