// The page's handle on the sampler threads (www/worker.js): calls as promises, events to a
// callback, and a crash turned into a rejected call plus a `crashed` event. The page (main.js)
// keeps one worker for WebGPU and, on the CPU path, splits a batch across several.

export class SamplerWorker {
  // `onEvent({ event, ... }, worker)` gets the worker's events (`progress`, `frame`, `gpu-lost`)
  // and `crashed` ({ why }) when the worker dies.
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.pending = new Map();
    this.nextId = 1;
    this.dead = null;
    this.worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
    this.worker.onmessage = ({ data }) => {
      if (data.event) return this.onEvent(data, this);
      const call = this.pending.get(data.id);
      if (!call) return; // a `send`
      this.pending.delete(data.id);
      if (data.ok) call.resolve(data.value);
      else call.reject(new Error(data.error));
      if (data.crashed) this.crash(data.error);
    };
    // An error nobody caught inside the worker, or a module that failed to load: the worker is
    // gone for good.
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.crash(e.message || "the worker failed to start");
    };
    this.worker.onmessageerror = () => this.crash("a message could not be read");
  }

  call(call, ...args) {
    if (this.dead) return Promise.reject(new Error(`the sampler stopped (${this.dead})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, call, args });
    });
  }

  // Fire and forget (a cancel): no answer awaited.
  send(call, ...args) {
    if (!this.dead) this.worker.postMessage({ id: 0, call, args });
  }

  crash(why) {
    if (this.dead) return;
    this.dead = why;
    this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new Error(`the sampler stopped (${why})`));
    this.pending.clear();
    this.onEvent({ event: "crashed", why }, this);
  }

  terminate() {
    this.dead ??= "replaced";
    this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new Error("the sampler was replaced"));
    this.pending.clear();
  }
}

// A caught error's sentence (an Error's message, or the thrown value itself).
export const messageOf = (e) => (e instanceof Error ? e.message : String(e));

// Splits `n` images into `parts` contiguous ranges, as even as can be: [[first, count], ...].
export function split(n, parts) {
  const out = [];
  let first = 0;
  for (let i = 0; i < parts; i++) {
    const count = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    if (count) out.push([first, count]);
    first += count;
  }
  return out;
}
