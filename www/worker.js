// guided-ddpm's sampler thread (a module worker): it owns the wasm module, the weights, the
// device and the run, so the page's main thread only draws and answers clicks. The page
// (www/sampler.js) sends calls `{ id, call, args }` and gets `{ id, ok, value }` or
// `{ id, ok: false, error, crashed }` back, plus events: `progress` while the weights load,
// `frame` after each step of a run, `gpu-lost` when the GPU device stops.

import init, * as wasm from "./guided-ddpm.js";

const CACHE = "guided-ddpm-weights";
const WEIGHTS = new URL("weights/", self.location.href);

const state = {
  files: null, // { manifest, unet, classifier }: the manifest text (as Rust normalised it) and bytes
  candidates: {}, // { cpu, gpu }: Demos prepared by `prepare`, until `use` keeps one
  demo: null, // the Demo that runs
  run: null, // { id, token }: the run in progress
  gpuLost: null, // why the GPU device in use stopped, once it has
};

// The GPU devices the runtime asked for, the last one the device in use.
const gpuDevices = [];
// Whether the module was built with the test hooks (feature `test-hooks`; the site is not).
const HOOKS = typeof wasm.Demo.test_hooks === "function";
// For the page tests (`page.workers()` in playwright), in a build with the hooks only: the
// module, the Demo in use and the GPU devices.
if (HOOKS) self.guidedDdpm = { wasm, gpuDevices, get demo() { return state.demo; } };

const messageOf = (e) => (e instanceof Error ? e.message : String(e));
const emit = (event, data, transfer = []) => postMessage({ event, ...data }, transfer);

// ---------- a lost GPU ----------

// The GPUDevice that burn's WebGPU runtime asks for, caught on its way out of requestDevice, so
// that a lost device (driver reset, GPU process crash, `destroy()`) or an error the runtime did
// not catch reaches the page, which then moves to the CPU path.
if ("gpu" in navigator && self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevices.push(device);
    let reported = false;
    const lost = (why) => {
      // Only the device in use matters: a candidate that lost the timing is destroyed on purpose.
      if (reported || !state.demo?.gpu || gpuDevices.at(-1) !== device) return;
      reported = true;
      state.gpuLost = why;
      // Posted before the run in flight ends, so the page hears of the loss first.
      emit("gpu-lost", { why });
    };
    device.lost.then((info) => lost(info.message || `device lost, ${info.reason}`));
    device.addEventListener("uncapturederror", (e) => lost(e.error?.message || "a GPU error"));
    return device;
  };
}

// ---------- weights: fetch with progress, check, cache ----------

async function fetchBytes(url, onBytes, signal) {
  let res;
  try {
    res = await fetch(url, { cache: "no-cache", signal });
  } catch (e) {
    throw new Error(`Could not reach ${url.pathname ?? url}: ${messageOf(e)}. Check the connection and reload.`);
  }
  const name = new URL(url).pathname.split("/").pop();
  if (!res.ok) throw new Error(`${name} could not be downloaded (the server answered ${res.status} ${res.statusText}).`);
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

// The file's bytes, checked against the manifest; from the cache when a good copy is there.
async function loadFile(cache, manifest, which, entry, progress, signal) {
  const key = new Request(new URL(`${entry.file}?sha256=${entry.sha256}`, WEIGHTS));
  const check = (bytes) => wasm.Demo.check_file(manifest, which, bytes);
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
  const bytes = await fetchBytes(new URL(entry.file, WEIGHTS), (n) => progress(n, false), signal);
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

// Reads the manifest and both files (posting `progress` events); keeps them for `prepare` and
// returns them too, for the page to hand to helper workers and to a restarted worker.
async function loadWeights() {
  emit("progress", { text: "reading the manifest", got: 0, total: 0 });
  const text = new TextDecoder().decode(await fetchBytes(new URL("manifest.json", WEIGHTS), () => {}));
  const manifest = wasm.Demo.check_manifest(text);
  const m = JSON.parse(manifest);
  const entries = [["unet", m.unet], ["classifier", m.classifier]];
  const total = entries.reduce((a, [, e]) => a + e.bytes, 0);
  const done = {};
  let fromCache = true;
  // The first failure stops the other download, and its progress is no longer reported.
  const abort = new AbortController();
  const progress = (which) => (n, cached) => {
    if (abort.signal.aborted) return;
    done[which] = n;
    fromCache &&= cached;
    emit("progress", { got: Object.values(done).reduce((a, b) => a + b, 0), total, cached });
  };
  const cache = await openCache();
  const [unet, classifier] = await Promise.all(
    entries.map(([w, e]) => loadFile(cache, manifest, w, e, progress(w), abort.signal).catch((err) => {
      abort.abort();
      throw err;
    })),
  );
  state.files = { manifest, unet, classifier };
  return { total, fromCache, sha256: m.unet.sha256, schedule: m.schedule.kind, files: state.files };
}

// ---------- devices ----------

// The WebGPU adapter this worker sees: { name, software } when there is one, or { name: null, why }.
async function adapter(asked) {
  if (asked === "cpu") return { name: null, why: "asked for with ?backend=cpu" };
  // Missing (Firefox on Linux) or present but null (WebKitGTK with its WebGPU switched on) alike.
  if (!navigator.gpu) return { name: null, why: "this browser has no WebGPU in workers" };
  try {
    const a = await navigator.gpu.requestAdapter();
    if (!a) return { name: null, why: "no WebGPU adapter on this machine" };
    const i = a.info ?? {};
    const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(" ") || "adapter details hidden by the browser";
    return { name, software: Boolean(i.isFallbackAdapter || a.isFallbackAdapter || /swiftshader/i.test(name)) };
  } catch (e) {
    return { name: null, why: `WebGPU failed to start: ${messageOf(e)}` };
  }
}

// A Demo on WebGPU (gpu) or the CPU with the weights loaded and the programs compiled; returns
// the milliseconds of one guided step at the default setting, read back (Demo.warmup).
async function prepare(gpu) {
  if (!state.files) throw new Error("the weights are not loaded yet");
  const demo = await wasm.Demo.create(gpu);
  if (gpu && !demo.gpu) {
    const why = demo.backend;
    demo.free();
    throw new Error(why);
  }
  try {
    const { manifest, unet, classifier } = state.files;
    demo.load(manifest, unet, classifier);
    const ms = await demo.warmup();
    const old = state.candidates[gpu ? "gpu" : "cpu"];
    if (old) release(old);
    state.candidates[gpu ? "gpu" : "cpu"] = demo;
    return { ms, gpu: demo.gpu, backend: demo.backend };
  } catch (e) {
    demo.free();
    throw e;
  }
}

// Frees a Demo unless a call into it is still awaiting (a step on a lost GPU may never return);
// then it is left to the garbage collector.
function release(demo) {
  try {
    demo.cancel();
    demo.free();
  } catch {}
}

// Keeps the prepared Demo for `gpu` and frees the other.
function use(gpu) {
  const keep = state.candidates[gpu ? "gpu" : "cpu"];
  if (!keep) throw new Error(`no ${gpu ? "WebGPU" : "CPU"} sampler was prepared`);
  for (const d of Object.values(state.candidates)) if (d !== keep) release(d);
  if (state.demo && state.demo !== keep) release(state.demo);
  state.candidates = {};
  state.demo = keep;
  return { gpu: keep.gpu, backend: keep.backend };
}

// ---------- runs ----------

// Runs `settings` (a SampleSettings) to its end, posting a `frame` event per step with the
// images as transferred buffers; resolves with the steps done. A `cancel` or a newer run ends
// it after the step in flight, whose frame is then dropped.
async function run(id, settings) {
  const demo = state.demo;
  if (!demo) throw new Error("no sampler is ready");
  const token = demo.start(JSON.stringify(settings));
  state.run = { id, token };
  const current = () => state.run?.id === id && state.demo === demo;
  let steps = 0;
  const lost = () => (demo.gpu && state.gpuLost ? { steps, stopped: true, gpuLost: state.gpuLost } : null);
  for (;;) {
    // Take messages (a cancel) between steps.
    await new Promise((r) => setTimeout(r, 0));
    if (lost()) return lost();
    if (!current()) return { steps, stopped: true };
    let frame;
    try {
      frame = await demo.step(token);
    } catch (e) {
      // A step that fails because the device was lost ends the run as lost, not as an error:
      // the device's `lost` promise may settle just after the failed readback.
      if (demo.gpu && gpuDevices.length) await Promise.race([gpuDevices.at(-1).lost, new Promise((r) => setTimeout(r, 2000))]);
      if (lost()) return lost();
      throw e;
    }
    if (!frame) break;
    if (!current()) {
      frame.free();
      return { steps, stopped: true };
    }
    const { x_t: xt, x0, p, probs, push } = frame;
    emit("frame", { run: id, step: frame.step, total: frame.total, t: frame.t, ms: frame.ms, xt, x0, p, probs, push, pushed: frame.pushed }, [xt.buffer, x0.buffer, push.buffer]);
    frame.free();
    steps++;
  }
  if (current()) state.run = null;
  return { steps, stopped: false };
}

// Steers run `id` from its next step on (`to`: { class, guidance }); returns the guidance's
// label as the crate writes it, or null for a run that is over (left alone). An impossible steer
// is refused with a sentence and the run goes on as it was.
function steer(id, to) {
  if (state.run?.id !== id || !state.demo) return null;
  return state.demo.steer(state.run.token, JSON.stringify(to));
}

function cancel(id) {
  if (state.run?.id !== id) return;
  state.run = null;
  state.demo?.cancel();
}

// ---------- messages ----------

const CALLS = {
  start: async () => {
    await init({ module_or_path: new URL("guided-ddpm_bg.wasm", self.location.href) });
    return { starting: JSON.parse(wasm.Demo.starting()), hooks: HOOKS };
  },
  // The guidance settings of a comparison ("scales" or "modes" at s, w and the classifier's
  // interval and form of the gradient), each with its label.
  compare: (preset, s, w, interval, grad) => JSON.parse(wasm.Demo.compare_settings(preset, s, w, interval, grad)),
  // The pad's drawing (28 x 28 bytes, light on black) made a digit as MNIST's were (Demo.prepare_drawing).
  prepareDrawing: (ink) => Array.from(wasm.Demo.prepare_drawing(Uint8Array.from(ink))),
  // The steps a run of `settings` takes (an edit runs a share of them).
  stepsRun: (settings) => wasm.Demo.steps_run(JSON.stringify(settings)),
  adapter,
  weights: loadWeights,
  // The files another worker loaded, for a worker that helps split a batch.
  setWeights: (files) => {
    state.files = files;
  },
  prepare,
  use,
  run,
  steer,
  cancel,
};

self.onmessage = async ({ data: { id, call, args = [] } }) => {
  try {
    const value = await CALLS[call](...args);
    postMessage({ id, ok: true, value });
  } catch (e) {
    // A trap (a Rust panic, memory exhausted) leaves the module unusable: say so, and stop.
    const crashed = e instanceof WebAssembly.RuntimeError;
    postMessage({ id, ok: false, error: messageOf(e), crashed });
    if (crashed) close();
  }
};
