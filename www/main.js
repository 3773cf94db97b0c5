// guided-ddpm page: the view. The wasm module, the weights and the sampling live in sampler
// threads (www/worker.js, driven through www/sampler.js), so this thread only reads the
// controls, draws frames and reports; the math and the weight checks are Rust (src/web.rs).

import { SamplerWorker, split } from "./sampler.js";
import { DrawPad } from "./draw.js";
import { drawChart as chart, drawLegend, drawTiles } from "./views.js";

const $ = (id) => document.getElementById(id);

const state = {
  primary: null, // the SamplerWorker that loads the weights and runs on the chosen device
  helpers: [], // more SamplerWorkers on the CPU path, each taking a part of a batch
  gpu: false, // whether the primary samples on WebGPU
  weights: null, // { total, fromCache, sha256, schedule, files }: `files` for helpers and a restart
  broken: null, // why the sampler stopped; the next Generate starts a new one
  capability: { line: "", ready: "" },
  running: false,
  run: null, // the run the page shows: { id, parts, ... }; null when none
  runIds: 0,
  frames: null, // the last frame: { xt, x0, push, pushed, n, captions }, for the views and the PNG
  history: [], // per step: { p: mean p(asked), probs: mean p of each digit, tiles: p(asked) per image }
  settings: null,
  pushPerStep: 1, // the push view's full-colour shift times the run's steps; replaced by the crate's (grid::push_scale)
};

const pad = new DrawPad($("pad"));

// ---------- status line ----------

function status(text, { error = false } = {}) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

function fail(message) {
  status(message, { error: true });
  $("progress").value = 0;
  setRunning(false);
}

addEventListener("error", (e) => fail(`Something went wrong: ${e.message}`));
addEventListener("unhandledrejection", (e) => fail(`Something went wrong: ${messageOf(e.reason)}`));

function messageOf(e) {
  if (e instanceof Error) return e.message;
  return String(e);
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

// ---------- settings <-> URL ----------

// Guidance, sampler and steps defaults are replaced by the crate's own (guidance::STARTING: the
// default, with the classifier scale its other modes start from; settings::DEFAULT_METHOD and
// DEFAULT_STEPS) once the module loads.
const DEFAULTS = { class: 7, mode: "both", s: 0.75, w: 0, interval: "all", steps: 8, sampler: "dpm", seed: 0, n: 4, view: "xt", compare: "scales", strength: 0.5 };

// The settings in the address bar; a value out of range or not offered by the page is replaced by
// the default, and `notices` says so, naming both (a shared link must not show another setting
// without a word).
function readUrl(notices = []) {
  const q = new URLSearchParams(location.search);
  const get = (k, ok, fix = (v) => v) => {
    if (!q.has(k)) return DEFAULTS[k];
    const raw = q.get(k);
    const v = fix(raw);
    if (ok(v)) return v;
    notices.push(`${k}=${raw} is not a setting this page offers; it uses ${k}=${DEFAULTS[k]}`);
    return DEFAULTS[k];
  };
  const num = (lo, hi) => (v) => Number.isFinite(v) && v >= lo && v <= hi;
  const int = (lo, hi) => (v) => Number.isInteger(v) && v >= lo && v <= hi;
  const oneOf = (list) => (v) => list.includes(v);
  return {
    class: get("class", int(0, 9), Number),
    mode: get("mode", oneOf(["classifier", "free", "both", "none"])),
    s: get("s", num(0, 10), Number),
    w: get("w", num(0, 5), Number),
    // A link made before the page offered intervals names a mode but no interval: its classifier
    // acted at every step, so it still does.
    interval: q.has("mode") && !q.has("interval") ? "all" : get("interval", oneOf(intervalChoices())),
    steps: get("steps", oneOf([8, 10, 15, 20, 25, 50, 100, 250, 1000]), Number),
    sampler: get("sampler", oneOf(["ddpm", "ddim", "dpm", "dpm-sde"])),
    seed: get("seed", int(0, 4294967295), Number),
    n: get("n", oneOf([1, 4, 9, 16]), Number),
    view: get("view", oneOf(["xt", "x0", "push"])),
    compare: get("compare", oneOf(["scales", "modes"])),
    strength: get("strength", num(0.05, 1), Number),
  };
}

// Where the classifier's gradient acts, as the page's menu offers it: "all" (every step) or
// "LO-HI" (original timesteps, inclusive), the crate's `guidance::parse_interval` text.
function intervalChoices() {
  return Array.from($("interval").options, (o) => o.value);
}

// The guidance interval as the crate's settings hold it: null for every step, else [lo, hi].
function intervalOf(choice) {
  return choice === "all" ? null : choice.split("-").map(Number);
}

function currentSettings() {
  return {
    class: Number(document.querySelector('#classes [aria-checked="true"]').dataset.digit),
    mode: document.querySelector('input[name="mode"]:checked').value,
    s: Number($("scale").value),
    w: Number($("cfg").value),
    interval: $("interval").value,
    steps: Number($("steps").value),
    sampler: $("method").value,
    seed: Number($("seed").value),
    n: Number($("batch").value),
    view: document.querySelector('input[name="view"]:checked').value,
    compare: $("preset").value,
    strength: Number($("strength").value),
  };
}

function writeUrl() {
  const s = currentSettings();
  const q = new URLSearchParams(Object.entries(s).map(([k, v]) => [k, String(v)]));
  // `?backend=cpu|webgpu` is not a control on the page; keep it so a reload or a shared link keeps it.
  const backend = new URLSearchParams(location.search).get("backend");
  if (backend === "cpu" || backend === "webgpu") q.set("backend", backend);
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

function applySettings(s) {
  const classes = $("classes");
  classes.replaceChildren();
  for (let d = 0; d < 10; d++) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = d;
    b.dataset.digit = d;
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(d === s.class));
    b.addEventListener("click", () => {
      for (const o of classes.children) o.setAttribute("aria-checked", String(o === b));
      writeUrl();
    });
    classes.append(b);
  }
  document.querySelector(`input[name="mode"][value="${s.mode}"]`).checked = true;
  $("scale").value = s.s;
  $("cfg").value = s.w;
  $("interval").value = s.interval;
  $("steps").value = String(s.steps);
  $("method").value = s.sampler;
  $("seed").value = s.seed;
  $("batch").value = String(s.n);
  document.querySelector(`input[name="view"][value="${s.view}"]`).checked = true;
  $("preset").value = s.compare;
  $("strength").value = s.strength;
  syncSliders();
  redraw();
}

function syncSliders() {
  const mode = document.querySelector('input[name="mode"]:checked').value;
  // Steps of 0.25: two decimals, so the label is the s that runs.
  $("scale-out").textContent = Number($("scale").value).toFixed(2);
  // Steps of 0.125: three decimals, so the label is the w that runs.
  $("cfg-out").textContent = Number($("cfg").value).toFixed(3);
  $("strength-out").textContent = Number($("strength").value).toFixed(2);
  $("scale-row").classList.toggle("off", !(mode === "classifier" || mode === "both"));
  $("interval-row").classList.toggle("off", !(mode === "classifier" || mode === "both"));
  $("cfg-row").classList.toggle("off", !(mode === "free" || mode === "both"));
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
  const steps = Number($("steps").value) || DEFAULTS.steps;
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

// A new worker with its module started, or a plain sentence why not.
async function startWorker() {
  const w = new SamplerWorker(onEvent);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("The WebAssembly module did not start in a minute. Reload the page; if it persists, this browser may be too old.")), 60000);
  });
  try {
    const started = await Promise.race([w.call("start"), timeout]);
    return { worker: w, ...started };
  } catch (e) {
    w.terminate();
    throw new Error(`The sampler could not start: ${messageOf(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

// Prepares `worker`'s Demo on WebGPU (`gpu`) or the CPU and makes it the one that runs; returns
// the measured step ({ ms, ... }).
async function onDevice(worker, gpu) {
  const prepared = await worker.call("prepare", gpu);
  await worker.call("use", gpu);
  return prepared;
}

// How many workers split a batch on the CPU path: one per core, at most 4 (each holds its own
// module and weights); `?workers=N` (1-8) sets it.
function workerCount() {
  const asked = Number(new URLSearchParams(location.search).get("workers"));
  if (Number.isInteger(asked) && asked >= 1 && asked <= 8) return asked;
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

// Starts the helper workers of the CPU path in the background; each joins once it is ready.
async function startHelpers() {
  if (state.gpu) return;
  const generation = state.primary;
  await Promise.all(Array.from({ length: workerCount() - 1 }, async () => {
    let w;
    try {
      ({ worker: w } = await startWorker());
      await w.call("setWeights", state.weights.files);
      await onDevice(w, false);
    } catch (e) {
      w?.terminate();
      console.warn(`a helper worker did not start: ${messageOf(e)}`);
      return;
    }
    if (state.primary !== generation || state.gpu) return w.terminate();
    state.helpers.push(w);
    renderCapability();
  }));
}

function stopHelpers() {
  for (const w of state.helpers) w.terminate();
  state.helpers = [];
}

function renderCapability() {
  const workers = state.gpu ? "" : ` · ${1 + state.helpers.length} of ${workerCount()} CPU workers ready`;
  $("capability").textContent = `Backend: ${state.capability.line}${workers}${state.capability.ready}`;
}

// A worker died (an uncaught error, a trap in the module): the run on screen ends with a plain
// sentence and the next Generate starts the sampler again.
function crashed(worker, why) {
  const helper = state.helpers.indexOf(worker);
  if (helper >= 0) state.helpers.splice(helper, 1);
  if (worker === state.primary) state.broken = why;
  const inRun = state.run?.parts.some((p) => p.worker === worker);
  if (inRun || worker === state.primary) {
    stopRun();
    fail(`The sampler stopped unexpectedly (${why}). Press Generate to start it again.`);
  }
}

// A new primary worker on the device in use (WebGPU, or the CPU if the GPU no longer starts).
async function restart() {
  setRunning(true);
  status("Starting the sampler again…");
  state.primary?.terminate();
  stopHelpers();
  try {
    const { worker } = await startWorker();
    state.primary = worker;
    await worker.call("setWeights", state.weights.files);
    try {
      await onDevice(worker, state.gpu);
    } catch (e) {
      if (!state.gpu) throw e;
      await onDevice(worker, false);
      state.gpu = false;
      state.capability.line = `CPU fallback (WebGPU failed on restart: ${messageOf(e)})`;
    }
  } catch (e) {
    fail(`The sampler could not be started again: ${messageOf(e)}. Reload the page.`);
    return false;
  }
  state.broken = null;
  renderCapability();
  startHelpers();
  setRunning(false);
  return true;
}

// ---------- running ----------

function setRunning(on) {
  state.running = on;
  $("generate").disabled = on || !state.primary;
  $("compare").disabled = on || !state.primary;
  $("sdedit").disabled = on || !state.primary;
  $("inpaint").disabled = on || !state.primary;
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

// Concatenates the parts' frames of one step (in image order) into one.
function merge(frames) {
  if (frames.length === 1) return frames[0];
  const cat = (key) => {
    const out = new (frames[0][key].constructor)(frames.reduce((a, f) => a + f[key].length, 0));
    let at = 0;
    for (const f of frames) {
      out.set(f[key], at);
      at += f[key].length;
    }
    return out;
  };
  return { ...frames[0], xt: cat("xt"), x0: cat("x0"), p: cat("p"), probs: cat("probs"), push: cat("push"), pushed: frames.some((f) => f.pushed) };
}

// The mean over images of each of the ten digits' p, from a frame's `probs` ([n, 10]).
function meanProbs(probs, n) {
  const out = new Array(10).fill(0);
  for (let k = 0; k < n; k++) for (let d = 0; d < 10; d++) out[d] += probs[k * 10 + d] / n;
  return out;
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
  const s = currentSettings();
  writeUrl();
  let perSample = [];
  if (compare) {
    try {
      perSample = await state.primary.call("compare", s.compare, s.s, s.w, s.interval);
    } catch (e) {
      fail(`The comparison could not be set up: ${messageOf(e)}`);
      return;
    }
  }
  const n = compare ? perSample.length : s.n;
  const settings = {
    classes: Array(n).fill(s.class),
    guidance: { mode: s.mode, scale: s.s, cfg_scale: s.w, interval: intervalOf(s.interval) },
    steps: s.steps,
    method: s.sampler,
    seed: s.seed,
    schedule: state.weights.schedule, // the manifest's: the one the networks were trained with
  };
  // SDEdit noises the drawing to `strength` and denoises it; inpainting keeps the drawn pixels and
  // starts the rest from noise (strength 1).
  if (edit === "sdedit") settings.edit = { image: pad.image(), strength: s.strength };
  if (edit === "inpaint") settings.edit = { image: pad.image(), strength: 1, mask: pad.mask() };
  const expected = settings.edit ? Math.round(settings.edit.strength * settings.steps) : settings.steps;
  state.expected = expected;
  const workers = state.gpu ? [state.primary] : [state.primary, ...state.helpers];
  const run = {
    id: ++state.runIds,
    edit,
    compare: compare ? { labels: perSample.map((g) => g.label), digit: s.class, preset: s.compare } : null,
    // Each worker samples a contiguous part of the batch. A run's `first_image` picks its noise
    // streams, so the images are the same whatever the split; a comparison's images all draw
    // stream 0 (`same_noise`), so they differ by their setting alone.
    parts: split(n, workers.length).map(([first, count], i) => ({ worker: workers[i], first, count, queue: [] })),
  };
  const partSettings = (p) => ({
    ...settings,
    classes: settings.classes.slice(p.first, p.first + p.count),
    ...(compare
      ? { per_sample: perSample.slice(p.first, p.first + p.count).map(({ mode, scale, cfg_scale, interval }) => ({ mode, scale, cfg_scale, interval })), same_noise: true, first_image: 0 }
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
    status(`Sampling: step ${frame.step} of ${frame.total} (t = ${frame.t})${compare ? `, ${what}` : ""}`);
    $("timing").textContent = `${rate.toFixed(1)} steps/s · ${fmtSecs((frame.total - frame.step) / rate)} left · last step ${(now - last).toFixed(0)} ms · p(${s.class}) = ${state.history.at(-1).p.toFixed(2)}`;
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
    status(`Done: ${how}, ${s.n} × digit ${s.class}, in ${fmtSecs(secs)}`);
    $("timing").textContent = `final p(${s.class}) = ${final.p.toFixed(2)} · seed ${s.seed}`;
  } else {
    status(`Done: ${s.n} × digit ${s.class} in ${fmtSecs(secs)} (${(settings.steps / secs).toFixed(1)} steps/s)`);
    $("timing").textContent = `final p(${s.class}) = ${final.p.toFixed(2)} · seed ${s.seed}`;
  }
  setRunning(false);
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
  if (switching || !state.gpu) return;
  switching = true;
  const interrupted = state.run; // the run on screen, to start again on the CPU
  state.run = null; // the run in flight on the GPU is over: its loop stops without a word
  setRunning(true);
  status(`The GPU stopped working (${why}); switching to the CPU path…`, { error: true });
  try {
    const cpu = await onDevice(state.primary, false);
    state.gpu = false;
    state.capability = { line: `CPU fallback (the GPU stopped: ${why}) · a guided step takes ${fmtMs(cpu.ms)}`, ready: "" };
    renderCapability();
    $("notice").textContent = `The GPU stopped working (${why}), so the page now draws on the CPU.`;
    $("notice").hidden = false;
    setRunning(false);
    startHelpers();
    if (interrupted) generate({ compare: Boolean(interrupted.compare), edit: interrupted.edit });
    else status("Ready (on the CPU): pick a digit and press Generate.");
  } catch (e) {
    fail(`The GPU stopped working (${why}) and the CPU path could not start: ${messageOf(e)}. Reload the page.`);
  } finally {
    switching = false;
  }
}

// ---------- start-up ----------

const CHOICE = "guided-ddpm-device";
const fmtMs = (ms) => `${ms < 100 ? ms.toFixed(1) : ms.toFixed(0)} ms`;

// Picks the device for the primary worker. WebGPU is used where its measured guided step beats
// the CPU path's: both are timed once per browser, adapter and weights, and the result is
// remembered (localStorage). `?backend=cpu` and `?backend=webgpu` force either without measuring
// the other. Returns { gpu, line }.
async function chooseDevice(adapter, asked) {
  const w = state.primary;
  const prepare = async (gpu) => (await w.call("prepare", gpu)).ms;
  const use = async (gpu, line) => {
    await w.call("use", gpu);
    return { gpu, line };
  };
  if (!adapter.name) {
    status(`Compiling: preparing the CPU path (${adapter.why})…`);
    const ms = await prepare(false);
    return use(false, `CPU fallback (${adapter.why}) · a guided step takes ${fmtMs(ms)}`);
  }
  const gpuName = `WebGPU (${adapter.name})`;
  if (asked === "webgpu") {
    status("Compiling: preparing the GPU programs (once per visit)…");
    try {
      const ms = await prepare(true);
      return use(true, `${gpuName}, as asked with ?backend=webgpu · a guided step takes ${fmtMs(ms)}`);
    } catch (e) {
      return chooseDevice({ name: null, why: `${gpuName} failed: ${messageOf(e)}` }, asked);
    }
  }
  const key = `${adapter.name}|${state.weights.sha256}`;
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(CHOICE) ?? "null");
  } catch {}
  const vs = (gpuMs, cpuMs, when) => `a guided step takes ${fmtMs(gpuMs)} on WebGPU and ${fmtMs(cpuMs)} on the CPU${when}`;
  if (saved?.key === key) {
    const useGpu = saved.gpu_ms < saved.cpu_ms;
    status(useGpu ? "Compiling: preparing the GPU programs (once per visit)…" : "Compiling: preparing the CPU path…");
    try {
      await prepare(useGpu);
      return use(useGpu, `${useGpu ? gpuName : `CPU fallback (faster here than ${gpuName})`} · ${vs(saved.gpu_ms, saved.cpu_ms, ", measured on an earlier visit")}`);
    } catch (e) {
      if (!useGpu) throw e;
      localStorage.removeItem(CHOICE);
      return chooseDevice({ name: null, why: `WebGPU failed: ${messageOf(e)}` }, asked);
    }
  }
  status("Compiling: timing a guided step on the CPU…");
  const cpuMs = await prepare(false);
  status(`Compiling: preparing the GPU programs and timing a step on ${gpuName}, to use the faster one (once per browser)…`);
  let gpuMs;
  try {
    gpuMs = await prepare(true);
  } catch (e) {
    return use(false, `CPU fallback (${gpuName} failed: ${messageOf(e)}) · a guided step takes ${fmtMs(cpuMs)}`);
  }
  try {
    localStorage.setItem(CHOICE, JSON.stringify({ key, gpu_ms: gpuMs, cpu_ms: cpuMs }));
  } catch {}
  const numbers = vs(gpuMs, cpuMs, " (measured just now)");
  if (gpuMs < cpuMs) return use(true, `${gpuName} · ${numbers}`);
  const soft = adapter.software ? ", a software adapter that runs on the CPU" : "";
  return use(false, `CPU fallback (faster here than ${gpuName}${soft}; ?backend=webgpu uses it anyway) · ${numbers}`);
}

async function main() {
  applySettings(readUrl());
  for (const el of document.querySelectorAll('input[name="mode"], #scale, #cfg, #interval, #strength')) el.addEventListener("input", () => { syncSliders(); writeUrl(); });
  for (const id of ["steps", "method", "batch", "seed", "preset"]) $(id).addEventListener("change", writeUrl);
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
  // For the console, the page tests and `make bench`.
  globalThis.guidedDdpm = {
    get gpu() { return state.gpu; },
    get workers() { return state.primary ? 1 + state.helpers.length : 0; },
    get lastRunParts() { return state.lastRunParts; },
    // The comparison on screen: each tile's label and p(asked digit) at the last frame.
    get tiles() {
      const c = state.frames?.compare;
      return c ? c.labels.map((label, k) => ({ label, p: state.history.at(-1).tiles[k] })) : null;
    },
    get pushed() { return state.frames?.pushed ?? null; },
    // The drawing on the pad (1 where drawn) and the last frame's x_t bytes, for the page tests.
    get drawing() { return Array.from(pad.ink); },
    get lastImage() { return state.frames ? Array.from(state.frames.xt) : null; },
    // p(asked digit | x_t) at the last frame, as the chart draws it.
    get lastP() { return state.history.at(-1)?.p ?? null; },
  };

  status("Starting: loading the WebAssembly module…");
  const started = await startWorker();
  state.primary = started.worker;
  performance.mark("module-ready");
  state.pushPerStep = started.pushPerStep;
  const g = started.defaultGuidance;
  const r = started.defaultRun;
  Object.assign(DEFAULTS, { mode: g.mode, s: g.scale, w: g.cfg_scale, interval: g.interval ? g.interval.join("-") : "all", sampler: r.method, steps: r.steps });
  const notices = [];
  applySettings(readUrl(notices));
  legend();
  if (notices.length) {
    $("notice").textContent = `Note: ${notices.join("; ")}.`;
    $("notice").hidden = false;
  }
  const asked = new URLSearchParams(location.search).get("backend");
  const adapter = await state.primary.call("adapter", asked);
  performance.mark("device-ready");
  try {
    state.weights = await state.primary.call("weights");
  } catch (e) {
    fail(`The weights could not be loaded: ${messageOf(e)}`);
    return;
  }
  performance.mark("weights-loaded");
  $("progress").removeAttribute("value"); // indeterminate
  const t0 = performance.now();
  let chosen;
  try {
    chosen = await chooseDevice(adapter, asked);
  } catch (e) {
    fail(`The first step failed: ${messageOf(e)}`);
    return;
  }
  state.gpu = chosen.gpu;
  performance.mark("compiled");
  $("progress").value = 0;
  const w = state.weights;
  state.capability = { line: chosen.line, ready: ` · weights ${mb(w.total)} int8${w.fromCache ? " (from the cache)" : ""} · ready in ${fmtSecs((performance.now() - t0) / 1000)}` };
  renderCapability();
  status(state.gpu ? "Ready: pick a digit and press Generate." : "Ready (on the CPU): pick a digit and press Generate.");
  document.body.dataset.ready = "true";
  setRunning(false);
  startHelpers();
}

main().catch((e) => fail(messageOf(e)));
