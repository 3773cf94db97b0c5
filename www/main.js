// guided-ddpm page: wires the controls to the wasm `Demo` (src/web.rs). The math, the weight
// checks and the sampling all live in Rust; this file fetches, caches, draws and reports.

const $ = (id) => document.getElementById(id);
const CACHE = "guided-ddpm-weights";
const WEIGHTS = "weights/";
const SIDE = 28;

const state = {
  Demo: null, // the wasm class (static checks)
  demo: null,
  manifest: null, // the manifest text, as Rust normalised it
  running: false,
  run: null, // the run in progress, { demo, token }, null when none
  frames: null, // the last frame's bytes, for the view toggle and the PNG
  history: [], // mean p(target) per step
  settings: null,
};

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

// Guidance defaults are replaced by the crate's own (guidance::DEFAULT) once the module loads.
const DEFAULTS = { class: 7, mode: "both", s: 4, w: 1, steps: 100, sampler: "ddpm", seed: 0, n: 4, view: "xt" };

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
    steps: get("steps", oneOf([25, 50, 100, 250, 1000]), Number),
    sampler: get("sampler", oneOf(["ddpm", "ddim"])),
    seed: get("seed", int(0, 4294967295), Number),
    n: get("n", oneOf([1, 4, 9, 16]), Number),
    view: get("view", oneOf(["xt", "x0"])),
  };
}

function currentSettings() {
  return {
    class: Number(document.querySelector('#classes [aria-checked="true"]').dataset.digit),
    mode: document.querySelector('input[name="mode"]:checked').value,
    s: Number($("scale").value),
    w: Number($("cfg").value),
    steps: Number($("steps").value),
    sampler: $("method").value,
    seed: Number($("seed").value),
    n: Number($("batch").value),
    view: document.querySelector('input[name="view"]:checked').value,
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
  $("steps").value = String(s.steps);
  $("method").value = s.sampler;
  $("seed").value = s.seed;
  $("batch").value = String(s.n);
  document.querySelector(`input[name="view"][value="${s.view}"]`).checked = true;
  syncSliders();
}

function syncSliders() {
  const mode = document.querySelector('input[name="mode"]:checked').value;
  $("scale-out").textContent = Number($("scale").value).toFixed(1);
  $("cfg-out").textContent = Number($("cfg").value).toFixed(2);
  $("scale-row").classList.toggle("off", !(mode === "classifier" || mode === "both"));
  $("cfg-row").classList.toggle("off", !(mode === "free" || mode === "both"));
}

// ---------- weights: fetch with progress, check, cache ----------

async function fetchBytes(url, onBytes, signal) {
  let res;
  try {
    res = await fetch(url, { cache: "no-cache", signal });
  } catch (e) {
    throw new Error(`Could not reach ${url}: ${messageOf(e)}. Check the connection and reload.`);
  }
  if (!res.ok) throw new Error(`${url} could not be downloaded (the server answered ${res.status} ${res.statusText}).`);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onBytes(received);
  }
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function openCache() {
  try {
    return "caches" in self ? await caches.open(CACHE) : null;
  } catch {
    return null; // e.g. an insecure origin: work without the cache
  }
}

// Returns the file's bytes, checked against the manifest; from the cache when a good copy is there.
async function loadFile(cache, which, entry, progress, signal) {
  const key = new Request(`${WEIGHTS}${entry.file}?sha256=${entry.sha256}`);
  const check = (bytes) => state.Demo.check_file(state.manifest, which, bytes);
  if (cache) {
    const hit = await cache.match(key);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      try {
        check(bytes);
        progress(entry.bytes, true);
        return bytes;
      } catch {
        await cache.delete(key); // a corrupt copy: drop it and download again
      }
    }
  }
  const bytes = await fetchBytes(`${WEIGHTS}${entry.file}`, (n) => progress(n, false), signal);
  check(bytes); // throws a plain sentence: size or hash mismatch
  if (cache) {
    await cache.put(key, new Response(bytes, { headers: { "content-type": "application/octet-stream" } }));
    // Keep only the current files.
    for (const old of await cache.keys()) {
      const u = new URL(old.url);
      if (u.pathname.endsWith(`/${entry.file}`) && u.searchParams.get("sha256") !== entry.sha256) await cache.delete(old);
    }
  }
  return bytes;
}

async function loadWeights() {
  status("Loading weights: reading the manifest…");
  const text = new TextDecoder().decode(await fetchBytes(`${WEIGHTS}manifest.json`, () => {}));
  state.manifest = state.Demo.check_manifest(text);
  const m = JSON.parse(state.manifest);
  state.schedule = m.schedule.kind;
  const entries = [["unet", m.unet], ["classifier", m.classifier]];
  const total = entries.reduce((a, [, e]) => a + e.bytes, 0);
  const done = {};
  let fromCache = true;
  // The first failure stops the other download, and its progress no longer updates the page.
  const abort = new AbortController();
  const progress = (which) => (n, cached) => {
    if (abort.signal.aborted) return;
    done[which] = n;
    fromCache &&= cached;
    const got = Object.values(done).reduce((a, b) => a + b, 0);
    status(`Loading weights: ${mb(got)} of ${mb(total)}${cached ? " (from the cache)" : ""}`);
    $("progress").value = got / total;
  };
  const cache = await openCache();
  const [unet, classifier] = await Promise.all(
    entries.map(([w, e]) => loadFile(cache, w, e, progress(w), abort.signal).catch((err) => {
      abort.abort();
      throw err;
    })),
  );
  return { unet, classifier, total, fromCache, sha256: m.unet.sha256 };
}

// ---------- drawing ----------

function drawGrid(bytes, n) {
  const canvas = $("canvas");
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const gap = 2;
  const w = cols * (SIDE + gap) - gap;
  const h = rows * (SIDE + gap) - gap;
  const img = new ImageData(w, h);
  img.data.fill(0);
  for (let i = 0; i < w * h; i++) img.data[i * 4 + 3] = 255;
  for (let k = 0; k < n; k++) {
    const r0 = Math.floor(k / cols) * (SIDE + gap);
    const c0 = (k % cols) * (SIDE + gap);
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        const v = bytes[k * SIDE * SIDE + r * SIDE + c];
        const o = ((r0 + r) * w + c0 + c) * 4;
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v;
      }
    }
  }
  // Draw at native size on an offscreen canvas, then scale up with crisp pixels.
  const small = new OffscreenCanvas(w, h);
  small.getContext("2d").putImageData(img, 0, 0);
  const scale = Math.max(1, Math.floor(448 / Math.max(w, h)));
  canvas.width = w * scale;
  canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function redraw() {
  if (!state.frames) return;
  const view = document.querySelector('input[name="view"]:checked').value;
  drawGrid(view === "x0" ? state.frames.x0 : state.frames.xt, state.frames.n);
}

function drawChart(total) {
  const c = $("chart");
  const ctx = c.getContext("2d");
  const { width: W, height: H } = c;
  const pad = 22;
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#d5d9df";
  ctx.fillStyle = "#5b6470";
  ctx.font = "11px system-ui, sans-serif";
  for (const p of [0, 0.5, 1]) {
    const y = H - pad - p * (H - 2 * pad);
    ctx.beginPath();
    ctx.moveTo(pad, y);
    ctx.lineTo(W - 4, y);
    ctx.stroke();
    ctx.fillText(p.toFixed(1), 0, y + 4);
  }
  ctx.fillText("step →", W - 44, H - 6);
  if (!state.history.length) return;
  ctx.strokeStyle = "#2456d6";
  ctx.lineWidth = 2;
  ctx.beginPath();
  state.history.forEach((p, i) => {
    const x = pad + (i / Math.max(1, total - 1)) * (W - pad - 4);
    const y = H - pad - p * (H - 2 * pad);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

// ---------- running ----------

function setRunning(on) {
  state.running = on;
  $("generate").disabled = on || !state.manifest;
  $("cancel").disabled = !on;
  $("download").disabled = on || !state.frames;
}

const fmtSecs = (s) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

// One run at a time, provably: `state.run` holds the ticket of the run the page shows (its Demo
// and the token Demo.start handed out). A loop whose ticket is no longer current (cancelled, or
// replaced by a new run) stops without drawing, charting or reporting anything, and the Demo
// refuses to step its token.
async function generate() {
  if (state.running) return;
  const s = currentSettings();
  writeUrl();
  const settings = {
    classes: Array(s.n).fill(s.class),
    guidance: { mode: s.mode, scale: s.s, cfg_scale: s.w },
    steps: s.steps,
    method: s.sampler,
    seed: s.seed,
    schedule: state.schedule, // the manifest's: the one the networks were trained with
  };
  // The ticket, not the Demo's token, identifies the run on the page: a Demo made after a lost GPU
  // hands out the same small numbers again.
  let ticket;
  try {
    ticket = { demo: state.demo, token: state.demo.start(JSON.stringify(settings)) };
  } catch (e) {
    fail(messageOf(e));
    return;
  }
  const current = () => state.run === ticket;
  state.run = ticket;
  state.settings = s;
  state.history = [];
  setRunning(true);
  status(`Sampling: starting ${settings.steps} steps…`);
  const started = performance.now();
  performance.mark("run-start");
  let last = started;
  let frame;
  try {
    while ((frame = await ticket.demo.step(ticket.token))) {
      if (!current()) {
        frame.free();
        return;
      }
      const now = performance.now();
      const elapsed = (now - started) / 1000;
      const rate = frame.step / elapsed;
      const p = frame.p;
      state.history.push(p.reduce((a, b) => a + b, 0) / p.length);
      state.frames = { xt: frame.x_t, x0: frame.x0, n: s.n };
      redraw();
      drawChart(frame.total);
      $("progress").value = frame.step / frame.total;
      status(`Sampling: step ${frame.step} of ${frame.total} (t = ${frame.t})`);
      $("timing").textContent = `${rate.toFixed(1)} steps/s · ${fmtSecs((frame.total - frame.step) / rate)} left · last step ${(now - last).toFixed(0)} ms · p(${s.class}) = ${state.history.at(-1).toFixed(2)}`;
      last = now;
      frame.free();
      // Let the page paint and take clicks between steps.
      await new Promise((r) => setTimeout(r, 0));
      if (!current()) return;
    }
  } catch (e) {
    if (current()) fail(`${messageOf(e)}`);
    return;
  }
  if (!current()) return; // cancelled: cancel() has said so
  const secs = (performance.now() - started) / 1000;
  state.run = null;
  if (state.history.length === settings.steps) {
    performance.mark("run-done");
    status(`Done: ${s.n} × digit ${s.class} in ${fmtSecs(secs)} (${(settings.steps / secs).toFixed(1)} steps/s)`);
    $("timing").textContent = `final p(${s.class}) = ${state.history.at(-1).toFixed(2)} · seed ${s.seed}`;
  } else {
    fail(`The run stopped after ${state.history.length} of ${settings.steps} steps without an error; press Generate to try again.`);
    return;
  }
  setRunning(false);
}

function cancel() {
  if (!state.run) return;
  state.run.demo.cancel();
  state.run = null;
  status(`Cancelled at step ${state.history.length} of ${state.settings.steps}.`);
  setRunning(false);
}

function download() {
  $("canvas").toBlob((blob) => {
    const a = document.createElement("a");
    const s = state.settings;
    a.download = `guided-ddpm-digit${s.class}-${s.mode}-seed${s.seed}.png`;
    a.href = URL.createObjectURL(blob);
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, "image/png");
}

// ---------- start-up ----------

function bindings() {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("The WebAssembly module did not start. Reload the page; if it persists, this browser may be too old.")), 60000);
    const ready = () => {
      if (window.wasmBindings) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(window.wasmBindings);
      }
    };
    const poll = setInterval(ready, 50);
    addEventListener("TrunkApplicationStarted", ready, { once: true });
    ready();
  });
}

// The WebGPU adapter: { name, software } when there is one, or { name: null, why }. `?backend=cpu`
// asks for no adapter at all.
async function webGpuAdapter(asked) {
  if (asked === "cpu") return { name: null, why: "asked for with ?backend=cpu" };
  if (!("gpu" in navigator)) return { name: null, why: "this browser has no WebGPU" };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { name: null, why: "no WebGPU adapter on this machine" };
    const i = adapter.info ?? {};
    const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(" ") || "adapter details hidden by the browser";
    return { name, software: Boolean(i.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader/i.test(name)) };
  } catch (e) {
    return { name: null, why: `WebGPU failed to start: ${messageOf(e)}` };
  }
}

// ---------- a lost GPU ----------

// The GPUDevice that burn's WebGPU runtime asks for, caught on its way out of requestDevice, so the
// page can watch it: a lost device (driver reset, GPU process crash, `destroy()`) or an error the
// runtime did not catch switches the page to the CPU path instead of ending it.
const gpuDevices = [];
if ("gpu" in navigator && globalThis.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevices.push(device);
    return device;
  };
}

function watchGpu(files) {
  const device = gpuDevices.at(-1);
  if (!device) return;
  let switched = false;
  const toCpu = async (why) => {
    if (switched || !state.demo?.gpu) return;
    switched = true;
    const interrupted = Boolean(state.run);
    state.run = null; // the run in flight on the GPU is over: its loop stops without a word
    setRunning(true);
    $("generate").disabled = true;
    status(`The GPU stopped working (${why}); switching to the CPU path…`, { error: true });
    try {
      const cpu = await prepare(false, files);
      state.demo = cpu.demo;
      globalThis.guidedDdpm.demo = cpu.demo;
      $("capability").textContent = `Backend: CPU fallback (the GPU stopped: ${why}) · a guided step takes ${fmtMs(cpu.ms)}`;
      $("notice").textContent = `The GPU stopped working (${why}), so the page now draws on the CPU.`;
      $("notice").hidden = false;
      setRunning(false);
      // The press that was running gets its image, from the start, on the CPU.
      if (interrupted) generate();
      else status("Ready (on the CPU): pick a digit and press Generate.");
    } catch (e) {
      fail(`The GPU stopped working (${why}) and the CPU path could not start: ${messageOf(e)}. Reload the page.`);
    }
  };
  device.lost.then((info) => toCpu(info.message || `device lost, ${info.reason}`));
  device.addEventListener("uncapturederror", (e) => toCpu(e.error?.message || "a GPU error"));
}

// A Demo on WebGPU (gpu) or the CPU, with the weights loaded and the programs compiled: { demo, ms }
// where ms is one guided step at the default setting, read back (Demo.warmup).
async function prepare(gpu, files) {
  const demo = await state.Demo.create(gpu);
  if (gpu && !demo.gpu) {
    const why = demo.backend;
    demo.free();
    throw new Error(why);
  }
  try {
    demo.load(state.manifest, files.unet, files.classifier);
    return { demo, ms: await demo.warmup() };
  } catch (e) {
    demo.free();
    throw e;
  }
}

const CHOICE = "guided-ddpm-device";
const fmtMs = (ms) => `${ms < 100 ? ms.toFixed(1) : ms.toFixed(0)} ms`;

// Picks the device. WebGPU is used where its measured guided step beats the CPU path's: both are
// timed once per browser, adapter and weights, and the result is remembered (localStorage).
// `?backend=cpu` and `?backend=webgpu` force either without measuring the other.
async function chooseDevice(adapter, asked, files) {
  if (!adapter.name) {
    status(`Compiling: preparing the CPU path (${adapter.why})…`);
    const cpu = await prepare(false, files);
    return { ...cpu, line: `CPU fallback (${adapter.why}) · a guided step takes ${fmtMs(cpu.ms)}` };
  }
  const gpuName = `WebGPU (${adapter.name})`;
  if (asked === "webgpu") {
    status("Compiling: preparing the GPU programs (once per visit)…");
    try {
      const gpu = await prepare(true, files);
      return { ...gpu, line: `${gpuName}, as asked with ?backend=webgpu · a guided step takes ${fmtMs(gpu.ms)}` };
    } catch (e) {
      return chooseDevice({ name: null, why: `${gpuName} failed: ${messageOf(e)}` }, asked, files);
    }
  }
  const key = `${adapter.name}|${files.sha256}`;
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(CHOICE) ?? "null");
  } catch {}
  const vs = (gpuMs, cpuMs, when) => `a guided step takes ${fmtMs(gpuMs)} on WebGPU and ${fmtMs(cpuMs)} on the CPU${when}`;
  if (saved?.key === key) {
    const useGpu = saved.gpu_ms < saved.cpu_ms;
    status(useGpu ? "Compiling: preparing the GPU programs (once per visit)…" : "Compiling: preparing the CPU path…");
    try {
      const chosen = await prepare(useGpu, files);
      const line = `${useGpu ? gpuName : `CPU fallback (faster here than ${gpuName})`} · ${vs(saved.gpu_ms, saved.cpu_ms, ", measured on an earlier visit")}`;
      return { ...chosen, line };
    } catch (e) {
      if (!useGpu) throw e;
      localStorage.removeItem(CHOICE);
      adapter = { name: null, why: `WebGPU failed: ${messageOf(e)}` };
      return chooseDevice(adapter, asked, files);
    }
  }
  status("Compiling: timing a guided step on the CPU…");
  const cpu = await prepare(false, files);
  status(`Compiling: preparing the GPU programs and timing a step on ${gpuName}, to use the faster one (once per browser)…`);
  let gpu;
  try {
    gpu = await prepare(true, files);
  } catch (e) {
    return { ...cpu, line: `CPU fallback (${gpuName} failed: ${messageOf(e)}) · a guided step takes ${fmtMs(cpu.ms)}` };
  }
  try {
    localStorage.setItem(CHOICE, JSON.stringify({ key, gpu_ms: gpu.ms, cpu_ms: cpu.ms }));
  } catch {}
  const numbers = vs(gpu.ms, cpu.ms, " (measured just now)");
  if (gpu.ms < cpu.ms) {
    cpu.demo.free();
    return { ...gpu, line: `${gpuName} · ${numbers}` };
  }
  gpu.demo.free();
  const soft = adapter.software ? ", a software adapter that runs on the CPU" : "";
  return { ...cpu, line: `CPU fallback (faster here than ${gpuName}${soft}; ?backend=webgpu uses it anyway) · ${numbers}` };
}

async function main() {
  applySettings(readUrl());
  for (const el of document.querySelectorAll('input[name="mode"], #scale, #cfg')) el.addEventListener("input", () => { syncSliders(); writeUrl(); });
  for (const id of ["steps", "method", "batch", "seed"]) $(id).addEventListener("change", writeUrl);
  for (const el of document.querySelectorAll('input[name="view"]')) el.addEventListener("change", () => { redraw(); writeUrl(); });
  $("random-seed").addEventListener("click", () => {
    $("seed").value = crypto.getRandomValues(new Uint32Array(1))[0];
    writeUrl();
  });
  $("generate").addEventListener("click", generate);
  $("cancel").addEventListener("click", cancel);
  $("download").addEventListener("click", download);
  drawChart(1);

  status("Starting: loading the WebAssembly module…");
  const { Demo } = await bindings();
  performance.mark("module-ready");
  const g = JSON.parse(Demo.default_guidance());
  Object.assign(DEFAULTS, { mode: g.mode, s: g.scale, w: g.cfg_scale });
  const notices = [];
  applySettings(readUrl(notices));
  if (notices.length) {
    $("notice").textContent = `Note: ${notices.join("; ")}.`;
    $("notice").hidden = false;
  }
  state.Demo = Demo;
  const asked = new URLSearchParams(location.search).get("backend");
  const adapter = await webGpuAdapter(asked);
  performance.mark("device-ready");
  let files;
  try {
    files = await loadWeights();
  } catch (e) {
    fail(`The weights could not be loaded: ${messageOf(e)}`);
    return;
  }
  performance.mark("weights-loaded");
  $("progress").removeAttribute("value"); // indeterminate
  const t0 = performance.now();
  let chosen;
  try {
    chosen = await chooseDevice(adapter, asked, files);
  } catch (e) {
    fail(`The first step failed: ${messageOf(e)}`);
    return;
  }
  state.demo = chosen.demo;
  if (state.demo.gpu) watchGpu(files);
  performance.mark("compiled");
  $("progress").value = 0;
  $("capability").textContent = `Backend: ${chosen.line} · weights ${mb(files.total)} int8${files.fromCache ? " (from the cache)" : ""} · ready in ${fmtSecs((performance.now() - t0) / 1000)}`;
  status(state.demo.gpu ? "Ready: pick a digit and press Generate." : "Ready (on the CPU): pick a digit and press Generate.");
  // For the console and `make bench` (tests/page/bench.mjs): the page's one Demo.
  globalThis.guidedDdpm = { Demo, demo: state.demo, gpuDevices };
  document.body.dataset.ready = "true";
  setRunning(false);
}

main().catch((e) => fail(messageOf(e)));
