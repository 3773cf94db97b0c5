// guided-ddpm page: the wiring of the DOM. The wasm module, the weights and the sampling live in
// sampler threads (www/worker.js), which www/pool.js starts and whose frames it merges; the
// address bar's settings are www/url.js's, the controls that hold them www/controls.js's, the
// choice of device www/device.js's, the drawing www/views.js's, the test hooks www/hooks.js's
// (imported in the test build only). This file shows frames, runs and reports; the math and the
// weight checks are Rust (src/web.rs).

import { Pool, parts, merge, meanProbs, workerCount, startWorker } from "./pool.js";
import { messageOf } from "./sampler.js";
import { chooseDevice, onDevice, fmtMs, timeInBackground } from "./device.js";
import { registerOffline } from "./offline.js";
import { PAGE_DEFAULTS, startScale, crateDefaults, readUrl, writeUrl as putUrl, guidanceOf, askedBackend } from "./url.js";
import { CRATE_CONTROLS, offered, currentSettings as controlSettings, applySettings as applyControls, scaleSlider, syncSliders } from "./controls.js";
import { DrawPad } from "./draw.js";
import { drawChart as chart, drawLegend, drawTiles } from "./views.js";

const $ = (id) => document.getElementById(id);

const pool = new Pool(onEvent, renderCapability);

const state = {
  weights: null, // { total, fromCache, sha256, schedule, files }
  broken: null, // why the sampler stopped; the next Generate starts a new one
  capability: { line: "", ready: "" },
  running: false,
  run: null, // the run the page shows: { id, parts, ... }; null when none
  runIds: 0,
  frames: null, // the last frame: { xt, x0, push, pushed, n, captions }, for the views and the PNG
  history: [], // per step: { p: mean p(asked), probs: mean p of each digit, tiles: p(asked) per image }
  settings: null,
  // What the page starts from: its own defaults, and the crate's once the module has started.
  defaults: { ...PAGE_DEFAULTS },
  pushPerStep: null, // the push view's full-colour shift times the run's steps (grid::push_scale), once the module has started
};

const pad = new DrawPad($("pad"));

// ---------- status line ----------

function status(text, { error = false } = {}) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

// Brings the status line (and the image under it) into view where it is off screen: on a phone
// it sits above the settings, out of sight of a Generate pressed below them.
function showStatus() {
  const r = $("status").getBoundingClientRect();
  if (r.top < 0 || r.bottom > innerHeight) $("status").scrollIntoView({ block: "start" });
}

function fail(message) {
  status(message, { error: true });
  $("progress").value = 0;
  setRunning(false);
}

addEventListener("error", (e) => fail(`Something went wrong: ${e.message}`));
addEventListener("unhandledrejection", (e) => fail(`Something went wrong: ${messageOf(e.reason)}`));

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

// ---------- settings <-> URL ----------

// The settings the controls hold (www/controls.js).
const currentSettings = () => controlSettings(state.defaults);

function writeUrl() {
  putUrl(currentSettings());
}

// Puts settings on the controls; a digit picked goes into the URL and steers a run in progress.
function applySettings(s) {
  applyControls(s, () => {
    writeUrl();
    steer();
  });
  redraw();
}


// ---------- drawing ----------

// The captions of a comparison's tiles: its setting and p(asked digit) now.
function captions() {
  const run = state.frames?.compare;
  if (!run) return null;
  const p = state.history.at(-1)?.tiles ?? [];
  return run.labels.map((label, k) => [label, p[k] === undefined ? "" : `p(${run.digit}) = ${p[k].toFixed(2)}`]);
}

// Draws the last frame in the chosen view (the sample, predicted x0, or the classifier's push with
// its legend).
function redraw() {
  const f = state.frames;
  const view = document.querySelector('input[name="view"]:checked').value;
  $("push-legend").hidden = view !== "push";
  $("push-note").textContent = view === "push" && f && !f.pushed ? "No image of this run uses the classifier, so nothing is pushed: the map stays white." : "";
  if (!f) return;
  const [bytes, rgba] = view === "x0" ? [f.x0, false] : view === "push" ? [f.push, true] : [f.xt, false];
  drawTiles($("canvas"), bytes, f.n, { rgba, captions: captions() });
}

// The push view's legend, on the crate's scale for the steps menu's count (a run takes the
// menu's): grid::push_scale is inversely proportional to the steps (a run of fewer steps moves a
// pixel further per step), so its value at one step, divided by the steps, is its value there.
function legend() {
  if (state.pushPerStep === null) return;
  const steps = Number($("steps").value) || state.defaults.steps;
  const scale = Number((state.pushPerStep / steps).toPrecision(3)); // an f32 (0.0099999...) as written: 0.01
  drawLegend($("legend-bar"));
  $("legend-lo").textContent = `−${scale} or less: darker`;
  $("legend-hi").textContent = `brighter: +${scale} or more`;
}

// p(digit | x_t) over the steps so far, of a run of `total` steps.
function drawChart(total) {
  chart($("chart"), state.history, total, { asked: state.settings?.class, compare: state.frames?.compare });
}

// ---------- the sampler threads ----------

// What a worker reports: weight progress, frames of the run on screen, a lost GPU, a crash.
function onEvent(e, worker) {
  if (e.event === "progress") {
    if (state.weights || state.broken || $("status").classList.contains("error")) return; // late news
    if (!e.total) return status(`Loading weights: ${e.text}…`);
    status(`Loading weights: ${mb(e.got)} of ${mb(e.total)}${e.cached ? " (from the cache)" : ""}`);
    $("progress").value = e.got / e.total;
  } else if (e.event === "frame") {
    const part = state.run?.id === e.run && state.run.parts.find((p) => p.worker === worker);
    if (part) state.run.onFrame(part, e);
  } else if (e.event === "gpu-lost") {
    toCpu(e.why);
  } else if (e.event === "crashed") {
    crashed(worker, e.why);
  }
}

function renderCapability() {
  const workers = pool.gpu ? "" : ` · ${1 + pool.helpers.length} of ${workerCount()} CPU workers ready`;
  $("capability").textContent = `Backend: ${state.capability.line}${workers}${state.capability.ready}`;
}

// A worker died (an uncaught error, a trap in the module): the run on screen ends with a plain
// sentence and the next Generate starts the sampler again.
function crashed(worker, why) {
  const primary = pool.lost(worker);
  if (primary) state.broken = why;
  const inRun = state.run?.parts.some((p) => p.worker === worker);
  if (inRun || primary) {
    stopRun();
    fail(`The sampler stopped unexpectedly (${why}). Press Generate to start it again.`);
  }
}

// A new primary worker on the device in use (WebGPU, or the CPU if the GPU no longer starts).
async function restart() {
  setRunning(true);
  status("Starting the sampler again…");
  try {
    const gaveUp = await pool.restart();
    if (gaveUp) state.capability.line = `CPU fallback (WebGPU failed on restart: ${gaveUp})`;
  } catch (e) {
    fail(`The sampler could not be started again: ${messageOf(e)}. Reload the page.`);
    return false;
  }
  state.broken = null;
  renderCapability();
  pool.startHelpers();
  setRunning(false);
  return true;
}

// ---------- running ----------

// Resolves when no run is in progress (at once if none is).
const idleWaiters = [];
function whenIdle() {
  return state.running ? new Promise((ok) => idleWaiters.push(ok)) : Promise.resolve();
}

function setRunning(on) {
  state.running = on;
  if (!on) idleWaiters.splice(0).forEach((ok) => ok());
  $("generate").disabled = on || !pool.primary;
  $("compare").disabled = on || !pool.primary;
  $("sdedit").disabled = on || !pool.primary;
  $("inpaint").disabled = on || !pool.primary;
  $("cancel").disabled = !on || !state.run;
  $("download").disabled = on || !state.frames;
}

const fmtSecs = (s) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

// Ends the run on screen: its workers drop its remaining steps, and the page draws nothing more
// of it.
function stopRun() {
  if (state.run) for (const p of state.run.parts) p.worker.send("cancel", state.run.id);
  state.run = null;
}

// One run at a time: `state.run` is the run the page shows. A run that is no longer current
// (cancelled, replaced, its worker lost) draws, charts and reports nothing more, and its workers
// drop its remaining steps. `compare` runs the Compare preset: one image per guidance setting,
// all from the same noise, in one batched run; `edit` ("sdedit" or "inpaint") edits the drawing
// on the pad instead of starting from noise.
async function generate({ compare = false, edit = null } = {}) {
  if (state.running) return;
  if (edit && pad.isEmpty()) {
    status("Draw something on the pad first: it is empty.", { error: true });
    return;
  }
  if (state.broken && !(await restart())) return;
  // Busy from the press on: what follows asks the sampler thread (the comparison's settings, the
  // run's step count) before the run starts.
  setRunning(true);
  status("Sampling: starting…");
  showStatus();
  const s = currentSettings();
  writeUrl();
  let perSample = [];
  if (compare) {
    try {
      perSample = await pool.primary.call("compare", s.compare, s.s, s.w, s.interval, s.grad);
    } catch (e) {
      fail(`The comparison could not be set up: ${messageOf(e)}`);
      return;
    }
  }
  const n = compare ? perSample.length : s.n;
  const settings = {
    classes: Array(n).fill(s.class),
    guidance: guidanceOf(s),
    steps: s.steps,
    method: s.sampler,
    seed: s.seed,
    schedule: state.weights.schedule, // the manifest's: the one the networks were trained with
    // Placed as MNIST's digits at the end (the crate's `SampleSettings::place`); an edit keeps its
    // drawing where it is.
    place: s.place && !edit,
  };
  // SDEdit noises the drawing to `strength` and denoises it; inpainting keeps the drawn pixels and
  // starts the rest from noise (strength 1).
  if (edit === "sdedit") {
    let prepared;
    try {
      prepared = await pool.primary.call("prepareDrawing", pad.grey());
    } catch (e) {
      fail(`The drawing could not be prepared: ${messageOf(e)}`);
      return;
    }
    state.prepared = prepared;
    settings.edit = { image: prepared.map((v) => v / 127.5 - 1), strength: s.strength };
  }
  if (edit === "inpaint") settings.edit = { image: pad.image(), strength: 1, mask: pad.mask() };
  let expected;
  try {
    expected = await pool.primary.call("stepsRun", settings);
  } catch (e) {
    fail(messageOf(e));
    return;
  }
  state.expected = expected;
  const run = {
    id: ++state.runIds,
    edit,
    compare: compare ? { labels: perSample.map((g) => g.label), digit: s.class, preset: s.compare } : null,
    // Each worker samples a contiguous part of the batch. A run's `first_image` picks its noise
    // streams, so the images are the same whatever the split; a comparison's images all draw
    // stream 0 (`same_noise`), so they differ by their setting alone.
    parts: parts(n, pool.runners()),
    steers: [], // { step, digit, label }: each live steer, after how many steps, to what
  };
  const partSettings = (p) => ({
    ...settings,
    classes: settings.classes.slice(p.first, p.first + p.count),
    ...(compare
      ? { per_sample: perSample.slice(p.first, p.first + p.count).map(({ mode, scale, cfg_scale, interval, grad }) => ({ mode, scale, cfg_scale, interval, grad })), same_noise: true, first_image: 0 }
      : { first_image: p.first }),
  });
  const current = () => state.run === run;
  state.run = run;
  state.lastRunParts = run.parts.length;
  state.settings = s;
  state.history = [];
  state.frames = null;
  setRunning(true);
  const what = compare ? `comparing ${n} settings` : "sampling";
  status(`Sampling: starting ${expected} steps${compare ? ` for ${n} settings side by side` : ""}${run.parts.length > 1 ? ` on ${run.parts.length} workers` : ""}…`);
  const started = performance.now();
  performance.mark("run-start");
  let last = started;
  run.onFrame = (part, frame) => {
    part.queue.push(frame);
    while (run.parts.every((p) => p.queue.length)) show(merge(run.parts.map((p) => p.queue.shift())));
  };
  const show = (frame) => {
    const now = performance.now();
    const rate = frame.step / ((now - started) / 1000);
    state.history.push({ p: frame.p.reduce((a, b) => a + b, 0) / frame.p.length, probs: meanProbs(frame.probs, n), tiles: Array.from(frame.p) });
    state.frames = { xt: frame.xt, x0: frame.x0, push: frame.push, pushed: frame.pushed, n, compare: run.compare };
    redraw();
    drawChart(frame.total);
    $("progress").value = frame.step / frame.total;
    status(`Sampling: step ${frame.step} of ${frame.total} (t = ${frame.t})${compare ? `, ${what}` : ""}${steeredSoFar(run)}`);
    $("timing").textContent = `${rate.toFixed(1)} steps/s · ${fmtSecs((frame.total - frame.step) / rate)} left · last step ${(now - last).toFixed(0)} ms · p(${state.settings.class}) = ${state.history.at(-1).p.toFixed(2)}`;
    last = now;
  };
  let results;
  try {
    results = await Promise.all(run.parts.map((p) => p.worker.call("run", run.id, partSettings(p))));
  } catch (e) {
    if (!current()) return;
    stopRun();
    fail(messageOf(e));
    return;
  }
  // Cancelled, or the GPU was lost: cancel() and toCpu() have said so (the worker reports a lost
  // GPU before the run's end, so toCpu has taken this run over and will run it again).
  if (!current() || results.some((r) => r.gpuLost)) return;
  const secs = (performance.now() - started) / 1000;
  state.run = null;
  if (state.history.length !== expected) {
    fail(`The run stopped after ${state.history.length} of ${expected} steps without an error; press Generate to try again.`);
    return;
  }
  performance.mark("run-done");
  const final = state.history.at(-1);
  if (compare) {
    status(`Done: ${n} settings compared on digit ${s.class}, all from seed ${s.seed}'s noise, in ${fmtSecs(secs)}`);
    $("timing").textContent = run.compare.labels.map((l, k) => `${l}: p(${s.class}) = ${final.tiles[k].toFixed(2)}`).join(" · ");
  } else if (edit) {
    const how = edit === "sdedit" ? `edited the drawing at strength ${s.strength} (the last ${expected} of ${s.steps} steps)` : "finished the drawing, keeping every drawn pixel";
    status(`Done: ${how}, ${s.n} × digit ${s.class}, in ${fmtSecs(secs)}${steeredRun(run)}`);
    $("timing").textContent = `final p(${state.settings.class}) = ${final.p.toFixed(2)} · seed ${s.seed}`;
  } else {
    status(`Done: ${s.n} × digit ${s.class} in ${fmtSecs(secs)} (${(settings.steps / secs).toFixed(1)} steps/s)${settings.place ? ", placed as MNIST's digits" : ", as drawn"}${steeredRun(run)}`);
    $("timing").textContent = `final p(${state.settings.class}) = ${final.p.toFixed(2)} · seed ${s.seed}`;
  }
  setRunning(false);
}

// ---------- live steering ----------

// Steers the run on screen from its next step on (issue 32): the digit, mode, strengths and
// interval the controls show now apply to every image, from the x_t it has reached, on each
// worker of the run (src/web.rs, Demo.steer). A comparison is not steered. The run keeps each
// steer, so its result says it was steered: its link names the last settings, not the run.
function steer() {
  const run = state.run;
  if (!run || run.compare) return;
  const c = currentSettings();
  const to = { class: c.class, guidance: guidanceOf(c) };
  const key = JSON.stringify(to);
  if (run.steers.at(-1)?.key === key) return;
  // Named by the crate's label of the guidance once a worker answers (Guidance::label).
  const entry = { step: state.history.length, digit: c.class, key, label: null };
  run.steers.push(entry);
  state.settings = { ...state.settings, class: c.class, mode: c.mode, s: c.s, w: c.w, interval: c.interval, grad: c.grad };
  for (const p of run.parts) {
    p.worker.call("steer", run.id, to).then((label) => {
      if (label) entry.label = `digit ${c.class}, ${label}`;
    }, (e) => {
      if (state.run !== run) return;
      $("notice").textContent = `The run could not be steered: ${messageOf(e)}`;
      $("notice").hidden = false;
    });
  }
  drawChart(state.expected);
}

// A steer's words: the digit and the guidance, as the crate labels it.
const steerLabel = (t) => t.label ?? `digit ${t.digit}`;

// While a run samples: its last steer.
function steeredSoFar(run) {
  const last = run.steers.at(-1);
  return last ? ` · steered to ${steerLabel(last)} after step ${last.step}` : "";
}

// When a run is done: that it was steered, and that its link does not reproduce it.
function steeredRun(run) {
  if (!run.steers.length) return "";
  const to = run.steers.map((t) => `to ${steerLabel(t)} after step ${t.step}`).join(", then ");
  return `, steered live ${to} (a steered run: its link alone does not reproduce it)`;
}

function cancel() {
  if (!state.run) return;
  stopRun();
  status(`Cancelled at step ${state.history.length} of ${state.expected}.`);
  setRunning(false);
}

function download() {
  $("canvas").toBlob((blob) => {
    const a = document.createElement("a");
    const s = state.settings;
    const view = document.querySelector('input[name="view"]:checked').value;
    const what = state.frames?.compare ? `compare-${state.frames.compare.preset}` : s.mode;
    a.download = `guided-ddpm-digit${s.class}-${what}-seed${s.seed}-${view}.png`;
    a.href = URL.createObjectURL(blob);
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, "image/png");
}

// ---------- a lost GPU ----------

// The primary's GPU device was lost (driver reset, GPU process crash, `destroy()`) or raised an
// error nobody caught: the page moves to the CPU path instead of ending, and the press that was
// running gets its image from the start.
let switching = false;
async function toCpu(why) {
  if (switching || !pool.gpu) return;
  switching = true;
  const interrupted = state.run; // the run on screen, to start again on the CPU
  state.run = null; // the run in flight on the GPU is over: its loop stops without a word
  setRunning(true);
  status(`The GPU stopped working (${why}); switching to the CPU path…`, { error: true });
  try {
    const cpu = await onDevice(pool.primary, false);
    pool.gpu = false;
    state.capability = { line: `CPU fallback (the GPU stopped: ${why}) · a guided step takes ${fmtMs(cpu.ms)}`, ready: "" };
    renderCapability();
    $("notice").textContent = `The GPU stopped working (${why}), so the page now draws on the CPU.`;
    $("notice").hidden = false;
    setRunning(false);
    pool.startHelpers();
    if (interrupted) generate({ compare: Boolean(interrupted.compare), edit: interrupted.edit });
    else status("Ready (on the CPU): pick a digit and press Generate.");
  } catch (e) {
    fail(`The GPU stopped working (${why}) and the CPU path could not start: ${messageOf(e)}. Reload the page.`);
  } finally {
    switching = false;
  }
}

// ---------- WebGPU timed in the background ----------

// On a first visit the page is ready on the CPU path at once, and a worker of its own prepares
// and times WebGPU (www/device.js). Where WebGPU is faster it becomes the primary once no run is
// in progress, and the page says so; otherwise the timer is let go and the line says why.
// A run pressed meanwhile runs on the CPU, sharing the cores with the timing.
async function timeWebGpu(timing) {
  let timer;
  try {
    ({ worker: timer } = await startWorker(onEvent));
    await timer.call("setWeights", pool.files);
  } catch (e) {
    timer?.terminate();
    state.capability.line = `CPU fallback (${timing.gpuName} did not start: ${messageOf(e)}) · a guided step takes ${fmtMs(timing.cpuMs)}`;
    renderCapability();
    return;
  }
  // Test hook (a build with the hooks only): the CPU step's time to compare against, so a page
  // test can see the switch on a machine whose WebGPU adapter is a software one.
  const cpuMs = (state.hooks && Number(localStorage.getItem("guided-ddpm-test-cpu-ms"))) || timing.cpuMs;
  const { faster, line } = await timeInBackground(timer, { ...timing, cpuMs });
  performance.mark("webgpu-timed");
  if (faster) {
    await whenIdle();
    if (pool.gpu || state.broken) return timer.terminate();
    pool.adopt(timer);
    status(`Ready: switched to ${timing.gpuName}, which measured faster than the CPU path. Pick a digit and press Generate.`);
  }
  state.capability.line = line;
  renderCapability();
}

// ---------- start-up ----------

async function main() {
  applySettings(readUrl(state.defaults, offered()));
  for (const el of document.querySelectorAll('input[name="mode"], #scale, #cfg, #interval, #strength')) el.addEventListener("input", () => { syncSliders(); writeUrl(); });
  // A form picked starts from its own s (the crate's, url.js startScale): the forms' scales differ.
  $("grad").addEventListener("input", () => {
    scaleSlider();
    $("scale").value = startScale($("grad").value, state.defaults) ?? $("scale").value;
    syncSliders();
    writeUrl();
  });
  // A run in progress follows the guidance controls from its next step (a slider once let go).
  for (const el of document.querySelectorAll('input[name="mode"], #scale, #cfg, #interval, #grad')) el.addEventListener("change", steer);
  for (const id of ["steps", "method", "batch", "seed", "preset", "place"]) $(id).addEventListener("change", writeUrl);
  $("steps").addEventListener("change", () => legend());
  for (const el of document.querySelectorAll('input[name="view"]')) el.addEventListener("change", () => { redraw(); writeUrl(); });
  $("random-seed").addEventListener("click", () => {
    $("seed").value = crypto.getRandomValues(new Uint32Array(1))[0];
    writeUrl();
  });
  $("generate").addEventListener("click", () => generate());
  $("compare").addEventListener("click", () => generate({ compare: true }));
  $("sdedit").addEventListener("click", () => generate({ edit: "sdedit" }));
  $("inpaint").addEventListener("click", () => generate({ edit: "inpaint" }));
  $("clear").addEventListener("click", () => pad.clear());
  $("brush").addEventListener("change", () => { pad.brush = Number($("brush").value); });
  pad.brush = Number($("brush").value);
  $("cancel").addEventListener("click", cancel);
  $("download").addEventListener("click", download);
  drawChart(1);
  legend();

  status("Starting: loading the WebAssembly module… (the guidance and sampling settings open once it has started)");
  const started = await pool.start();
  state.hooks = started.hooks;
  if (started.hooks) (await import("./hooks.js")).installHooks({ pool, state, pad });
  performance.mark("module-ready");
  state.pushPerStep = started.starting.push_per_step;
  Object.assign(state.defaults, crateDefaults(started.starting));
  const notices = [];
  applySettings(readUrl(state.defaults, offered(), notices));
  for (const id of CRATE_CONTROLS) $(id).disabled = false;
  legend();
  if (notices.length) {
    $("notice").textContent = `Note: ${notices.join("; ")}.`;
    $("notice").hidden = false;
  }
  const asked = askedBackend();
  const adapter = await pool.primary.call("adapter", asked);
  performance.mark("device-ready");
  try {
    state.weights = await pool.primary.call("weights");
    pool.files = state.weights.files;
  } catch (e) {
    fail(`The weights could not be loaded: ${messageOf(e)}`);
    return;
  }
  performance.mark("weights-loaded");
  $("progress").removeAttribute("value"); // indeterminate
  const t0 = performance.now();
  let chosen;
  try {
    chosen = await chooseDevice(pool.primary, adapter, asked, state.weights.sha256, status);
  } catch (e) {
    fail(`The first step failed: ${messageOf(e)}`);
    return;
  }
  pool.gpu = chosen.gpu;
  performance.mark("compiled");
  $("progress").value = 0;
  const w = state.weights;
  state.capability = { line: chosen.line, ready: ` · weights ${mb(w.total)} int8${w.fromCache ? " (from the cache)" : ""} · ready in ${fmtSecs((performance.now() - t0) / 1000)}` };
  renderCapability();
  status(pool.gpu ? "Ready: pick a digit and press Generate." : "Ready (on the CPU): pick a digit and press Generate.");
  document.body.dataset.ready = "true";
  setRunning(false);
  pool.startHelpers();
  if (chosen.timing) timeWebGpu(chosen.timing);
  // Offline use from the next visit on, and a new deploy offered when it is in (www/offline.js).
  registerOffline((takeOver) => {
    $("update").hidden = false;
    $("update-now").onclick = takeOver;
  });
}

main().catch((e) => fail(messageOf(e)));
