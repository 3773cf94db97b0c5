// guided-ddpm page: which device the sampler runs on. WebGPU is used where its measured guided
// step beats the CPU path's: both are timed once per browser, adapter and weights, and the result
// is remembered (localStorage). On that first visit the page is ready on the CPU path as soon as
// it is compiled, and WebGPU is timed in a worker of its own in the background
// (`timeInBackground`). `?backend=cpu` and `?backend=webgpu` force either without measuring the
// other.

import { messageOf } from "./sampler.js";

const CHOICE = "guided-ddpm-device";

export const fmtMs = (ms) => `${ms < 100 ? ms.toFixed(1) : ms.toFixed(0)} ms`;

// Prepares `worker`'s Demo on WebGPU (`gpu`) or the CPU and makes it the one that runs; returns
// the measured step ({ ms, ... }).
export async function onDevice(worker, gpu) {
  const prepared = await worker.call("prepare", gpu);
  await worker.call("use", gpu);
  return prepared;
}

// Remembers a timing of both devices for `key` (adapter and weights).
function remember(key, gpuMs, cpuMs) {
  try {
    localStorage.setItem(CHOICE, JSON.stringify({ key, gpu_ms: gpuMs, cpu_ms: cpuMs }));
  } catch {}
}

const vs = (gpuMs, cpuMs, when) => `a guided step takes ${fmtMs(gpuMs)} on WebGPU and ${fmtMs(cpuMs)} on the CPU${when}`;

// Picks the device for `worker` (the primary SamplerWorker, its weights set): `adapter` is the
// worker's answer to "adapter" ({ name, software } or { name: null, why }), `asked` the
// address bar's backend (or null), `weightsSha` the U-Net's sha256 (a remembered timing is for
// those weights only), `status` shows what is being done. Returns { gpu, line, timing }: the
// device, a sentence on it for the page, and, on a first visit with an adapter, what
// `timeInBackground` needs to time WebGPU without holding the page back (the CPU path is used
// until then).
export async function chooseDevice(worker, adapter, asked, weightsSha, status) {
  const prepare = async (gpu) => (await worker.call("prepare", gpu)).ms;
  const use = async (gpu, line) => {
    await worker.call("use", gpu);
    return { gpu, line };
  };
  const fallBack = (why) => chooseDevice(worker, { name: null, why }, asked, weightsSha, status);
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
      return fallBack(`${gpuName} failed: ${messageOf(e)}`);
    }
  }
  const key = `${adapter.name}|${weightsSha}`;
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(CHOICE) ?? "null");
  } catch {}
  if (saved?.key === key) {
    const useGpu = saved.gpu_ms < saved.cpu_ms;
    status(useGpu ? "Compiling: preparing the GPU programs (once per visit)…" : "Compiling: preparing the CPU path…");
    try {
      await prepare(useGpu);
      return use(useGpu, `${useGpu ? gpuName : `CPU fallback (faster here than ${gpuName})`} · ${vs(saved.gpu_ms, saved.cpu_ms, ", measured on an earlier visit")}`);
    } catch (e) {
      if (!useGpu) throw e;
      localStorage.removeItem(CHOICE);
      return fallBack(`WebGPU failed: ${messageOf(e)}`);
    }
  }
  // A first visit: ready on the CPU path at once; WebGPU is timed in a worker of its own.
  status("Compiling: preparing the CPU path…");
  const cpuMs = await prepare(false);
  const chosen = await use(false, `CPU path · a guided step takes ${fmtMs(cpuMs)} · timing ${gpuName} in the background…`);
  return { ...chosen, timing: { key, cpuMs, gpuName, software: Boolean(adapter.software) } };
}

// Times a guided step on WebGPU in `timer`, a worker of its own with the weights set, while the
// page runs on the CPU path; `timing` is what `chooseDevice` returned. Remembers both timings for
// the next visit. Resolves to { faster, line }: `faster` whether WebGPU beat the CPU path (then
// `timer` holds the prepared WebGPU sampler, ready to become the primary; otherwise it is
// terminated), `line` the page's sentence on the device to use.
export async function timeInBackground(timer, timing) {
  const { key, cpuMs, gpuName, software } = timing;
  let gpuMs;
  try {
    gpuMs = (await timer.call("prepare", true)).ms;
  } catch (e) {
    timer.terminate();
    return { faster: false, line: `CPU fallback (${gpuName} failed: ${messageOf(e)}) · a guided step takes ${fmtMs(cpuMs)}` };
  }
  remember(key, gpuMs, cpuMs);
  const numbers = vs(gpuMs, cpuMs, " (measured in the background on this visit)");
  if (gpuMs < cpuMs) {
    await timer.call("use", true);
    return { faster: true, line: `${gpuName}, switched to from the CPU path · ${numbers}` };
  }
  timer.terminate();
  const soft = software ? ", a software adapter that runs on the CPU" : "";
  return { faster: false, line: `CPU fallback (faster here than ${gpuName}${soft}; ?backend=webgpu uses it anyway) · ${numbers}` };
}

// The primary's GPU device was lost (driver reset, GPU process crash, `destroy()`) or raised an
// error nobody caught: `pool`'s primary moves to the CPU path, and its helpers start. Returns the
// page's sentence on the device; throws where the CPU path does not start either.
export async function switchToCpu(pool, why) {
  const cpu = await onDevice(pool.primary, false);
  pool.gpu = false;
  pool.startHelpers();
  return `CPU fallback (the GPU stopped: ${why}) · a guided step takes ${fmtMs(cpu.ms)}`;
}

// On a first visit the page is ready on the CPU path at once, and a worker of its own prepares
// and times WebGPU (`timeInBackground`). Where WebGPU is faster it becomes `pool`'s primary once
// `whenIdle()` resolves (no run in progress) unless `stay()` says otherwise (the sampler
// stopped, or the page is on WebGPU already), and `switched()` is called; otherwise the timer
// is let go. Returns the page's sentence on the device, or null where nothing changed. A run
// pressed meanwhile runs on the CPU, sharing the cores with the timing. `cpuMs` overrides the
// CPU step's time to compare against (a test hook, so a page test can see the switch on a
// machine whose WebGPU adapter is a software one).
export async function timeWebGpu(pool, timing, { startWorker, whenIdle, stay, switched, cpuMs = timing.cpuMs }) {
  let timer;
  try {
    ({ worker: timer } = await startWorker());
    await timer.call("setWeights", pool.files);
  } catch (e) {
    timer?.terminate();
    return `CPU fallback (${timing.gpuName} did not start: ${messageOf(e)}) · a guided step takes ${fmtMs(timing.cpuMs)}`;
  }
  const { faster, line } = await timeInBackground(timer, { ...timing, cpuMs });
  performance.mark("webgpu-timed");
  if (faster) {
    await whenIdle();
    if (stay()) {
      timer.terminate();
      return null;
    }
    pool.adopt(timer);
    switched();
  }
  return line;
}
