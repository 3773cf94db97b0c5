// guided-ddpm page: which device the sampler runs on. WebGPU is used where its measured guided
// step beats the CPU path's: both are timed once per browser, adapter and weights, and the result
// is remembered (localStorage). `?backend=cpu` and `?backend=webgpu` force either without
// measuring the other.

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

// Picks the device for `worker` (the primary SamplerWorker, its weights set): `adapter` is the
// worker's answer to "adapter" ({ name, software } or { name: null, why }), `asked` the
// address bar's backend (or null), `weightsSha` the U-Net's sha256 (a remembered timing is for
// those weights only), `status` shows what is being done. Returns { gpu, line }: the device and a
// sentence on it for the page.
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
      return fallBack(`WebGPU failed: ${messageOf(e)}`);
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
