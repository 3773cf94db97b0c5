// guided-ddpm page: the run on screen, as one object with an explicit phase that every button and
// status line reads. One run at a time: a run that is no longer current (cancelled, replaced, its
// worker lost) draws, charts and reports nothing more, and its workers drop its remaining steps.

import { parts, merge, meanProbs } from "./pool.js";
import { messageOf } from "./sampler.js";
import { guidanceOf } from "./url.js";
import { status, showStatus, fmtSecs } from "./status.js";

const $ = (id) => document.getElementById(id);

/**
 * What the page is doing:
 * - `loading`: the module, the weights and the device are being set up (or failed to be: the
 *   status line says to reload);
 * - `idle`: ready for a press;
 * - `preparing`: a press is being turned into a run (the sampler asked for a comparison's
 *   settings, a drawing, the steps; or the sampler being started again, or moved to the CPU);
 * - `running`: steps are arriving;
 * - `steering`: steps are arriving and a steer is on its way to the run's workers;
 * - `crashed`: the sampler stopped; the next press starts it again.
 * A cancel has no phase of its own: the page is idle at once, and a press may start the next run
 * in the same moment (each run has its own token, so a worker drops the cancelled run's step in
 * flight without drawing or counting it; src/web.rs, `Demo::step`).
 * @typedef {"loading" | "idle" | "preparing" | "running" | "steering" | "crashed"} Phase
 */

/**
 * A run the page started: each worker samples a contiguous part of the batch.
 * @typedef {object} Run
 * @property {number} id
 * @property {string | null} edit "sdedit", "inpaint" or null
 * @property {{ labels: string[], digit: number, preset: string } | null} compare
 * @property {{ worker: any, first: number, count: number, queue: any[] }[]} parts
 * @property {{ step: number, digit: number, key: string, label: string | null }[]} steers
 * @property {(part: any, frame: any) => void} onFrame
 */

/**
 * What the runner asks of the page.
 * @typedef {object} Page
 * @property {() => any} settings the settings the controls hold now (controls.js)
 * @property {() => void} writeUrl
 * @property {() => string} schedule the weights' schedule (their manifest's)
 * @property {() => void} redraw the last frame, in the chosen view
 * @property {(total: number) => void} chart p(digit | x_t) over the steps so far
 * @property {(line?: string) => void} capability shows the backend line (set to `line` if given)
 */

export class Runner {
  /**
   * @param {import("./pool.js").Pool} pool
   * @param {import("./draw.js").DrawPad} pad
   * @param {Page} page
   */
  constructor(pool, pad, page) {
    this.pool = pool;
    this.pad = pad;
    this.page = page;
    /** @type {Phase} */
    this.phase = "loading";
    /** @type {Run | null} the run on screen */
    this.run = null;
    this.runIds = 0;
    /** @type {{ p: number, probs: number[], tiles: number[] }[]} per step: mean p(asked), mean p of each digit, p(asked) per image */
    this.history = [];
    /** @type {{ xt: Uint8Array, x0: Uint8Array, push: Uint8Array, pushed: boolean, n: number, compare: Run["compare"] } | null} the last frame */
    this.frames = null;
    /** @type {any} the settings of the run on screen, as steered so far */
    this.settings = null;
    /** the steps the run on screen takes */
    this.expected = 0;
    /** how many workers the last run was split across */
    this.lastRunParts = 0;
    /** @type {number[] | null} the last drawing "Edit drawing" started from, as the crate prepared it */
    this.prepared = null;
    /** @type {string | null} why the sampler stopped */
    this.broken = null;
    /** @type {(() => void)[]} */
    this.idleWaiters = [];
  }

  /** @param {Phase} phase */
  setPhase(phase) {
    this.phase = phase;
    document.body.dataset.phase = phase;
    if (!this.busy()) this.idleWaiters.splice(0).forEach((ok) => ok());
    const off = this.busy() || !this.pool.primary;
    for (const id of ["generate", "compare", "sdedit", "inpaint"]) $(id).disabled = off;
    $("cancel").disabled = !(this.phase === "running" || this.phase === "steering");
    $("download").disabled = this.busy() || !this.frames;
  }

  /** Whether a press would be turned away now. */
  busy() {
    return !(this.phase === "idle" || this.phase === "crashed");
  }

  /** Resolves when no run is in progress (at once if none is). */
  whenIdle() {
    return this.busy() ? new Promise((ok) => this.idleWaiters.push(ok)) : Promise.resolve();
  }

  /** An error in plain words; the page is ready for the next press unless it is still loading. */
  fail(message) {
    status(message, { error: true });
    $("progress").value = 0;
    if (this.phase !== "loading") this.setPhase(this.broken ? "crashed" : "idle");
  }

  /** A frame of `worker`'s part of run `e.run`. */
  onFrame(e, worker) {
    const part = this.run?.id === e.run && this.run.parts.find((p) => p.worker === worker);
    if (part) this.run.onFrame(part, e);
  }

  // A worker died (an uncaught error, a trap in the module): the run on screen ends with a plain
  // sentence and the next Generate starts the sampler again.
  crashed(worker, why) {
    const primary = this.pool.lost(worker);
    if (primary) this.broken = why;
    if (primary && this.phase === "loading") {
      return this.fail(`The sampler stopped unexpectedly while starting (${why}). Reload the page.`);
    }
    const inRun = this.run?.parts.some((p) => p.worker === worker);
    if (inRun || primary) {
      this.stop();
      this.fail(`The sampler stopped unexpectedly (${why}). Press Generate to start it again.`);
    }
  }

  // A new primary worker on the device in use (WebGPU, or the CPU if the GPU no longer starts).
  async restart() {
    this.setPhase("preparing");
    status("Starting the sampler again…");
    try {
      const gaveUp = await this.pool.restart();
      this.page.capability(gaveUp ? `CPU fallback (WebGPU failed on restart: ${gaveUp})` : undefined);
    } catch (e) {
      this.fail(`The sampler could not be started again: ${messageOf(e)}. Reload the page.`);
      return false;
    }
    this.broken = null;
    this.pool.startHelpers();
    this.setPhase("idle");
    return true;
  }

  // Ends the run on screen: its workers drop its remaining steps, and the page draws nothing
  // more of it.
  stop() {
    if (this.run) for (const p of this.run.parts) p.worker.send("cancel", this.run.id);
    this.run = null;
  }

  // Takes the run on screen off it without a word (the GPU was lost: its loop stops), and
  // returns it so that it can be run again elsewhere.
  interrupt() {
    const run = this.run;
    this.run = null;
    this.setPhase("preparing");
    return run;
  }

  // Runs the controls' settings. `compare` runs the Compare preset: one image per guidance
  // setting, all from the same noise, in one batched run; `edit` ("sdedit" or "inpaint") edits
  // the drawing on the pad instead of starting from noise.
  async generate({ compare = false, edit = null } = {}) {
    if (this.busy()) return;
    if (edit && this.pad.isEmpty()) {
      status("Draw something on the pad first: it is empty.", { error: true });
      return;
    }
    if (this.broken && !(await this.restart())) return;
    // Busy from the press on: what follows asks the sampler thread (the comparison's settings,
    // the run's step count) before the run starts.
    this.setPhase("preparing");
    status("Sampling: starting…");
    showStatus();
    const s = this.page.settings();
    this.page.writeUrl();
    const primary = this.pool.primary;
    let perSample = [];
    if (compare) {
      try {
        perSample = await primary.call("compare", s.compare, s.s, s.w, s.interval, s.grad);
      } catch (e) {
        return this.fail(`The comparison could not be set up: ${messageOf(e)}`);
      }
    }
    const n = compare ? perSample.length : s.n;
    const settings = {
      classes: Array(n).fill(s.class),
      guidance: guidanceOf(s),
      steps: s.steps,
      method: s.sampler,
      seed: s.seed,
      schedule: this.page.schedule(), // the manifest's: the one the networks were trained with
      // Placed as MNIST's digits at the end (the crate's `SampleSettings::place`); an edit keeps
      // its drawing where it is.
      place: s.place && !edit,
    };
    // SDEdit noises the drawing to `strength` and denoises it; inpainting keeps the drawn pixels
    // and starts the rest from noise (strength 1).
    if (edit === "sdedit") {
      try {
        this.prepared = await primary.call("prepareDrawing", this.pad.grey());
      } catch (e) {
        return this.fail(`The drawing could not be prepared: ${messageOf(e)}`);
      }
      settings.edit = { image: this.prepared.map((v) => v / 127.5 - 1), strength: s.strength };
    }
    if (edit === "inpaint") settings.edit = { image: this.pad.image(), strength: 1, mask: this.pad.mask() };
    let expected;
    try {
      expected = await primary.call("stepsRun", settings);
    } catch (e) {
      return this.fail(messageOf(e));
    }
    /** @type {Run} */
    const run = {
      id: ++this.runIds,
      edit,
      compare: compare ? { labels: perSample.map((g) => g.label), digit: s.class, preset: s.compare } : null,
      // A run's `first_image` picks its noise streams, so the images are the same whatever the
      // split; a comparison's images all draw stream 0 (`same_noise`), so they differ by their
      // setting alone.
      parts: parts(n, this.pool.runners()),
      steers: [], // each live steer: after how many steps, to what
      onFrame: () => {},
    };
    const partSettings = (p) => ({
      ...settings,
      classes: settings.classes.slice(p.first, p.first + p.count),
      ...(compare
        ? { per_sample: perSample.slice(p.first, p.first + p.count).map(({ mode, scale, cfg_scale, interval, grad }) => ({ mode, scale, cfg_scale, interval, grad })), same_noise: true, first_image: 0 }
        : { first_image: p.first }),
    });
    this.run = run;
    this.expected = expected;
    this.lastRunParts = run.parts.length;
    this.settings = s;
    this.history = [];
    this.frames = null;
    this.setPhase("running");
    status(`Sampling: starting ${expected} steps${compare ? ` for ${n} settings side by side` : ""}${run.parts.length > 1 ? ` on ${run.parts.length} workers` : ""}…`);
    const started = performance.now();
    performance.mark("run-start");
    let last = started;
    const show = (frame) => {
      const now = performance.now();
      const rate = frame.step / ((now - started) / 1000);
      this.history.push({ p: frame.p.reduce((a, b) => a + b, 0) / frame.p.length, probs: meanProbs(frame.probs, n), tiles: Array.from(frame.p) });
      this.frames = { xt: frame.xt, x0: frame.x0, push: frame.push, pushed: frame.pushed, n, compare: run.compare };
      this.page.redraw();
      this.page.chart(frame.total);
      $("progress").value = frame.step / frame.total;
      status(`Sampling: step ${frame.step} of ${frame.total} (t = ${frame.t})${compare ? `, comparing ${n} settings` : ""}${steeredSoFar(run)}`);
      $("timing").textContent = `${rate.toFixed(1)} steps/s · ${fmtSecs((frame.total - frame.step) / rate)} left · last step ${(now - last).toFixed(0)} ms · p(${this.settings.class}) = ${this.history.at(-1).p.toFixed(2)}`;
      last = now;
    };
    run.onFrame = (part, frame) => {
      part.queue.push(frame);
      while (run.parts.every((p) => p.queue.length)) show(merge(run.parts.map((p) => p.queue.shift())));
    };
    let results;
    try {
      results = await Promise.all(run.parts.map((p) => p.worker.call("run", run.id, partSettings(p))));
    } catch (e) {
      if (this.run !== run) return;
      this.stop();
      return this.fail(messageOf(e));
    }
    // Cancelled, or the GPU was lost: cancel() and the switch to the CPU have said so (the
    // worker reports a lost GPU before the run's end, so the switch has taken this run over and
    // will run it again).
    if (this.run !== run || results.some((r) => r.gpuLost)) return;
    const secs = (performance.now() - started) / 1000;
    this.run = null;
    if (this.history.length !== expected) {
      return this.fail(`The run stopped after ${this.history.length} of ${expected} steps without an error; press Generate to try again.`);
    }
    performance.mark("run-done");
    const final = this.history.at(-1);
    const p = `final p(${this.settings.class}) = ${final.p.toFixed(2)} · seed ${s.seed}`;
    if (compare) {
      status(`Done: ${n} settings compared on digit ${s.class}, all from seed ${s.seed}'s noise, in ${fmtSecs(secs)}`);
      $("timing").textContent = run.compare.labels.map((l, k) => `${l}: p(${s.class}) = ${final.tiles[k].toFixed(2)}`).join(" · ");
    } else if (edit) {
      const how = edit === "sdedit" ? `edited the drawing at strength ${s.strength} (the last ${expected} of ${s.steps} steps)` : "finished the drawing, keeping every drawn pixel";
      status(`Done: ${how}, ${s.n} × digit ${s.class}, in ${fmtSecs(secs)}${steeredRun(run)}`);
      $("timing").textContent = p;
    } else {
      status(`Done: ${s.n} × digit ${s.class} in ${fmtSecs(secs)} (${(settings.steps / secs).toFixed(1)} steps/s)${settings.place ? ", placed as MNIST's digits" : ", as drawn"}${steeredRun(run)}`);
      $("timing").textContent = p;
    }
    this.setPhase("idle");
  }

  // Steers the run on screen from its next step on (issue 32): the digit, mode, strengths and
  // interval the controls show now apply to every image, from the x_t it has reached, on each
  // worker of the run (src/web.rs, Demo.steer). A comparison is not steered. The run keeps each
  // steer, so its result says it was steered: its link names the last settings, not the run.
  steer() {
    const run = this.run;
    if (!run || run.compare || !(this.phase === "running" || this.phase === "steering")) return;
    const c = this.page.settings();
    const to = { class: c.class, guidance: guidanceOf(c) };
    const key = JSON.stringify(to);
    if (run.steers.at(-1)?.key === key) return;
    // Named by the crate's label of the guidance once a worker answers (Guidance::label).
    const entry = { step: this.history.length, digit: c.class, key, label: null };
    run.steers.push(entry);
    this.settings = { ...this.settings, class: c.class, mode: c.mode, s: c.s, w: c.w, interval: c.interval, grad: c.grad };
    this.setPhase("steering");
    const answers = run.parts.map((p) => p.worker.call("steer", run.id, to).then((label) => {
      if (label) entry.label = `digit ${c.class}, ${label}`;
    }, (e) => {
      if (this.run !== run) return;
      $("notice").textContent = `The run could not be steered: ${messageOf(e)}`;
      $("notice").hidden = false;
    }));
    // Back to running once every worker has it, unless the run is over or steered again.
    Promise.all(answers).then(() => {
      if (this.run === run && this.phase === "steering" && run.steers.at(-1) === entry) this.setPhase("running");
    });
    this.page.chart(this.expected);
  }

  cancel() {
    if (!this.run) return;
    this.stop();
    status(`Cancelled at step ${this.history.length} of ${this.expected}.`);
    this.setPhase("idle");
  }
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
