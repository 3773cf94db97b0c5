// guided-ddpm page: the wiring of the DOM. The wasm module, the weights and the sampling live in
// sampler threads (www/worker.js), which www/pool.js starts and whose frames it merges; the run
// on screen and its phase are www/run.js's, the status line www/status.js's, the address bar's
// settings www/url.js's, the controls that hold them www/controls.js's, the choice of device and
// the switches between devices www/device.js's, the run's views www/screen.js's, the test hooks
// www/hooks.js's (imported in the test build only). The math and the weight checks are Rust
// (src/web.rs).

import { Pool, workerCount, startWorker } from "./pool.js";
import { messageOf } from "./sampler.js";
import { chooseDevice, switchToCpu, timeWebGpu } from "./device.js";
import { registerOffline } from "./offline.js";
import { PAGE_DEFAULTS, startScale, crateDefaults, readUrl, writeUrl as putUrl, askedBackend } from "./url.js";
import { CRATE_CONTROLS, offered, currentSettings as controlSettings, applySettings as applyControls, scaleSlider, syncSliders } from "./controls.js";
import { DrawPad } from "./draw.js";
import { redraw, drawChart, legend, download } from "./screen.js";
import { Runner } from "./run.js";
import { status, showsError, mb, fmtSecs } from "./status.js";

const $ = (id) => document.getElementById(id);

// What the page knows besides the run: the weights, the backend line, and its defaults.
const page = {
  /** @type {{ total: number, fromCache: boolean, sha256: string, schedule: string, files: any } | null} */
  weights: null,
  capability: { line: "", ready: "" },
  // What the page starts from: its own defaults, and the crate's once the module has started.
  defaults: { ...PAGE_DEFAULTS },
  /** @type {number | null} the push view's full-colour shift times the run's steps (grid::push_scale), once the module has started */
  pushPerStep: null,
  /** whether the module was built with the test hooks */
  hooks: false,
  /** whether the page is moving from a lost GPU to the CPU */
  switching: false,
};

const pool = new Pool(onEvent, renderCapability);
const pad = new DrawPad($("pad"));
const currentSettings = () => controlSettings(page.defaults);
const runner = new Runner(pool, pad, {
  settings: currentSettings,
  writeUrl,
  schedule: () => page.weights.schedule,
  redraw: () => redraw(runner),
  chart: (total) => drawChart(runner, total),
  capability: (line) => {
    if (line !== undefined) page.capability.line = line;
    renderCapability();
  },
});

addEventListener("error", (e) => runner.fail(`Something went wrong: ${e.message}`));
addEventListener("unhandledrejection", (e) => runner.fail(`Something went wrong: ${messageOf(e.reason)}`));

// ---------- settings <-> URL ----------

function writeUrl() {
  putUrl(currentSettings());
}

// Puts settings on the controls; a digit picked goes into the URL and steers a run in progress.
function applySettings(s) {
  applyControls(s, () => {
    writeUrl();
    runner.steer();
  });
  redraw(runner);
}

// ---------- the sampler threads ----------

// What a worker reports: weight progress, frames of the run on screen, a lost GPU, a crash.
function onEvent(e, worker) {
  if (e.event === "progress") {
    if (page.weights || runner.broken || showsError()) return; // late news
    if (!e.total) return status(`Loading weights: ${e.text}…`);
    status(`Loading weights: ${mb(e.got)} of ${mb(e.total)}${e.cached ? " (from the cache)" : ""}`);
    $("progress").value = e.got / e.total;
  } else if (e.event === "frame") {
    runner.onFrame(e, worker);
  } else if (e.event === "gpu-lost") {
    toCpu(e.why);
  } else if (e.event === "crashed") {
    runner.crashed(worker, e.why);
  }
}

function renderCapability() {
  const workers = pool.gpu ? "" : ` · ${1 + pool.helpers.length} of ${workerCount()} CPU workers ready`;
  $("capability").textContent = `Backend: ${page.capability.line}${workers}${page.capability.ready}`;
}

// The primary's GPU was lost: the page moves to the CPU path instead of ending, and the press
// that was running gets its image from the start (www/device.js, switchToCpu).
async function toCpu(why) {
  if (page.switching || !pool.gpu) return;
  page.switching = true;
  const interrupted = runner.interrupt(); // the run on screen, to start again on the CPU
  status(`The GPU stopped working (${why}); switching to the CPU path…`, { error: true });
  try {
    page.capability = { line: await switchToCpu(pool, why), ready: "" };
    renderCapability();
    $("notice").textContent = `The GPU stopped working (${why}), so the page now draws on the CPU.`;
    $("notice").hidden = false;
    runner.setPhase("idle");
    if (interrupted) runner.generate({ compare: Boolean(interrupted.compare), edit: interrupted.edit });
    else status("Ready (on the CPU): pick a digit and press Generate.");
  } catch (e) {
    runner.fail(`The GPU stopped working (${why}) and the CPU path could not start: ${messageOf(e)}. Reload the page.`);
  } finally {
    page.switching = false;
  }
}

// ---------- start-up ----------

async function main() {
  applySettings(readUrl(page.defaults, offered()));
  for (const el of document.querySelectorAll('input[name="mode"], #scale, #cfg, #interval, #strength')) el.addEventListener("input", () => { syncSliders(); writeUrl(); });
  // A form picked starts from its own s (the crate's, url.js startScale): the forms' scales differ.
  $("grad").addEventListener("input", () => {
    scaleSlider();
    $("scale").value = startScale($("grad").value, page.defaults) ?? $("scale").value;
    syncSliders();
    writeUrl();
  });
  // A run in progress follows the guidance controls from its next step (a slider once let go).
  for (const el of document.querySelectorAll('input[name="mode"], #scale, #cfg, #interval, #grad')) el.addEventListener("change", () => runner.steer());
  for (const id of ["steps", "method", "batch", "seed", "preset", "place"]) $(id).addEventListener("change", writeUrl);
  $("steps").addEventListener("change", () => legend(page.pushPerStep, page.defaults.steps));
  for (const el of document.querySelectorAll('input[name="view"]')) el.addEventListener("change", () => { redraw(runner); writeUrl(); });
  $("random-seed").addEventListener("click", () => {
    $("seed").value = crypto.getRandomValues(new Uint32Array(1))[0];
    writeUrl();
  });
  $("generate").addEventListener("click", () => runner.generate());
  $("compare").addEventListener("click", () => runner.generate({ compare: true }));
  $("sdedit").addEventListener("click", () => runner.generate({ edit: "sdedit" }));
  $("inpaint").addEventListener("click", () => runner.generate({ edit: "inpaint" }));
  $("clear").addEventListener("click", () => pad.clear());
  $("brush").addEventListener("change", () => { pad.brush = Number($("brush").value); });
  pad.brush = Number($("brush").value);
  $("cancel").addEventListener("click", () => runner.cancel());
  $("download").addEventListener("click", () => download(runner));
  drawChart(runner, 1);
  runner.setPhase("loading");

  status("Starting: loading the WebAssembly module… (the guidance and sampling settings open once it has started)");
  const started = await pool.start();
  page.hooks = started.hooks;
  if (started.hooks) (await import("./hooks.js")).installHooks({ pool, runner, pad });
  performance.mark("module-ready");
  page.pushPerStep = started.starting.push_per_step;
  Object.assign(page.defaults, crateDefaults(started.starting));
  const notices = [];
  applySettings(readUrl(page.defaults, offered(), notices));
  for (const id of CRATE_CONTROLS) $(id).disabled = false;
  legend(page.pushPerStep, page.defaults.steps);
  if (notices.length) {
    $("notice").textContent = `Note: ${notices.join("; ")}.`;
    $("notice").hidden = false;
  }
  const asked = askedBackend();
  const adapter = await pool.primary.call("adapter", asked);
  performance.mark("device-ready");
  try {
    page.weights = await pool.primary.call("weights");
    pool.files = page.weights.files;
  } catch (e) {
    runner.fail(`The weights could not be loaded: ${messageOf(e)}. Reload the page to try again.`);
    return;
  }
  performance.mark("weights-loaded");
  $("progress").removeAttribute("value"); // indeterminate
  const t0 = performance.now();
  let chosen;
  try {
    chosen = await chooseDevice(pool.primary, adapter, asked, page.weights.sha256, status);
  } catch (e) {
    runner.fail(`The first step failed: ${messageOf(e)}. Reload the page to try again.`);
    return;
  }
  pool.gpu = chosen.gpu;
  performance.mark("compiled");
  $("progress").value = 0;
  const w = page.weights;
  page.capability = { line: chosen.line, ready: ` · weights ${mb(w.total)} int8${w.fromCache ? " (from the cache)" : ""} · ready in ${fmtSecs((performance.now() - t0) / 1000)}` };
  renderCapability();
  status(pool.gpu ? "Ready: pick a digit and press Generate." : "Ready (on the CPU): pick a digit and press Generate.");
  document.body.dataset.ready = "true";
  runner.setPhase("idle");
  pool.startHelpers();
  if (chosen.timing) {
    // Test hook (a build with the hooks only): the CPU step's time to compare against.
    const cpuMs = (page.hooks && Number(localStorage.getItem("guided-ddpm-test-cpu-ms"))) || chosen.timing.cpuMs;
    const gpuName = chosen.timing.gpuName;
    timeWebGpu(pool, chosen.timing, {
      startWorker: () => startWorker(onEvent),
      whenIdle: () => runner.whenIdle(),
      stay: () => pool.gpu || Boolean(runner.broken),
      switched: () => status(`Ready: switched to ${gpuName}, which measured faster than the CPU path. Pick a digit and press Generate.`),
      cpuMs,
    }).then((line) => {
      if (line === null) return;
      page.capability.line = line;
      renderCapability();
    });
  }
  // Offline use from the next visit on, and a new deploy offered when it is in (www/offline.js).
  registerOffline((takeOver) => {
    $("update").hidden = false;
    $("update-now").onclick = takeOver;
  });
}

main().catch((e) => runner.fail(messageOf(e)));
