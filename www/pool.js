// guided-ddpm page: the sampler threads a run uses, and the merging of their frames. One primary
// worker (www/worker.js through SamplerWorker) loads the weights and runs on the chosen device; on
// the CPU path, helper workers each take a part of a batch (one module and one copy of the
// weights each).

import { SamplerWorker, split, messageOf } from "./sampler.js";
import { askedWorkers } from "./url.js";
import { onDevice } from "./device.js";

// How many workers split a batch on the CPU path: one per core, at most 4; `?workers=N` (1-8)
// sets it.
export function workerCount() {
  return askedWorkers() ?? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

// A new worker with its module started (`{ worker, ...what "start" answers }`), or a plain
// sentence why not. `onEvent(event, worker)` gets its events.
export async function startWorker(onEvent) {
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

export class Pool {
  // `onEvent(event, worker)` gets every worker's events; `onChange()` is called when a helper
  // joins.
  constructor(onEvent, onChange) {
    this.onEvent = onEvent;
    this.onChange = onChange;
    this.primary = null; // the SamplerWorker that loads the weights and runs on the chosen device
    this.helpers = []; // more SamplerWorkers on the CPU path, each taking a part of a batch
    this.gpu = false; // whether the primary samples on WebGPU
    this.files = null; // the weights the primary loaded, for helpers and a restart
  }

  // Starts the primary worker's module; returns what its "start" answered.
  async start() {
    const { worker, ...started } = await startWorker(this.onEvent);
    this.primary = worker;
    return started;
  }

  // The workers a run splits its batch across: the primary alone on WebGPU.
  runners() {
    return this.gpu ? [this.primary] : [this.primary, ...this.helpers];
  }

  // Starts the helper workers of the CPU path in the background; each joins once it is ready.
  async startHelpers() {
    if (this.gpu) return;
    const generation = this.primary;
    await Promise.all(Array.from({ length: workerCount() - 1 }, async () => {
      let w;
      try {
        ({ worker: w } = await startWorker(this.onEvent));
        await w.call("setWeights", this.files);
        await onDevice(w, false);
      } catch (e) {
        w?.terminate();
        console.warn(`a helper worker did not start: ${messageOf(e)}`);
        return;
      }
      if (this.primary !== generation || this.gpu) return w.terminate();
      this.helpers.push(w);
      this.onChange();
    }));
  }

  stopHelpers() {
    for (const w of this.helpers) w.terminate();
    this.helpers = [];
  }

  // Makes `worker` (started, its weights set, its WebGPU sampler in use) the primary, on WebGPU:
  // the CPU path's workers are let go. Call between runs.
  adopt(worker) {
    this.primary?.terminate();
    this.stopHelpers();
    this.primary = worker;
    this.gpu = true;
  }

  // Forgets a worker that died; true when it was the primary.
  lost(worker) {
    const helper = this.helpers.indexOf(worker);
    if (helper >= 0) this.helpers.splice(helper, 1);
    return worker === this.primary;
  }

  // A new primary worker on the device in use (WebGPU, or the CPU if the GPU no longer starts);
  // returns why WebGPU was given up, or null. Throws a plain sentence when no worker starts.
  async restart() {
    this.primary?.terminate();
    this.stopHelpers();
    const { worker } = await startWorker(this.onEvent);
    this.primary = worker;
    await worker.call("setWeights", this.files);
    try {
      await onDevice(worker, this.gpu);
    } catch (e) {
      if (!this.gpu) throw e;
      await onDevice(worker, false);
      this.gpu = false;
      return messageOf(e);
    }
    return null;
  }
}

// The parts of a batch of `n` images over `workers`: each worker samples a contiguous part
// ({ worker, first, count, queue }).
export function parts(n, workers) {
  return split(n, workers.length).map(([first, count], i) => ({ worker: workers[i], first, count, queue: [] }));
}

// Concatenates the parts' frames of one step (in image order) into one.
export function merge(frames) {
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
export function meanProbs(probs, n) {
  const out = new Array(10).fill(0);
  for (let k = 0; k < n; k++) for (let d = 0; d < 10; d++) out[d] += probs[k * 10 + d] / n;
  return out;
}
