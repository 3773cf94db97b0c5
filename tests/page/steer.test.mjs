// Page tests: the recorded WebGPU step after any sequence of runs, and live steering. The built site (dist/, from `trunk build --release`) served locally and
// driven in Debian's headless Chromium through playwright-core, WebGPU on SwiftShader
// (browser.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "./serve.mjs";
import { openHarness } from "./host.mjs";
import { AXE, DIST, SHIPPED, SLOW, serveSite, site, open, ready, status, phase, samplerWorker, pixels, assertDrawn, assertDigit, done, canvasStats } from "./browser.mjs";

serveSite();

// On WebGPU every guidance setting the page offers records its step and replays it, whatever ran
// before on the same Demo: the page's sequence after its warm-up (classifier, both, a comparison,
// the default, the classifier within an interval, batch 1 and 4). A replayed step creates no bind
// group (the recording resolved them once); an eager one creates hundreds. Counted on the bench
// harness (harness.html: the site's module, one Demo on the main thread, warmed up as the page
// warms up). Before the retry in replay.rs and with web.rs turning replay off after one failed
// recording, the classifier's first run after the warm-up failed to record and every later run
// of that Demo ran eagerly (514 bind groups a step).
test("every guidance setting replays its recorded step on WebGPU after any sequence of runs", { timeout: SLOW }, async () => {
  const b = await open();
  try {
    const backend = await openHarness(b.page, site());
    assert.match(backend, /WebGPU/, backend);
    const runs = [
      { label: "classifier s=4", classes: [7], guidance: { mode: "classifier", scale: 4, cfg_scale: 0 } },
      { label: "both s=4 w=1", classes: [3], guidance: { mode: "both", scale: 4, cfg_scale: 1 } },
      {
        label: "compare modes",
        classes: [5, 5, 5, 5],
        guidance: { mode: "free", scale: 0, cfg_scale: 0.375 },
        per_sample: [
          { mode: "none", scale: 0, cfg_scale: 0 },
          { mode: "classifier", scale: 4, cfg_scale: 0 },
          { mode: "free", scale: 0, cfg_scale: 0.375 },
          { mode: "both", scale: 4, cfg_scale: 0.375 },
        ],
        same_noise: true,
      },
      { label: "default", classes: [1], guidance: "default" },
      { label: "classifier s=2 t=250-749, batch 4", classes: [0, 1, 2, 3], guidance: { mode: "classifier", scale: 2, cfg_scale: 0, interval: [250, 749] } },
      // Both forms of DPM-Solver++(2M) carry the last x0 from replay to replay.
      { label: "both s=1 w=0, DPM-Solver++(2M)", classes: [2, 8], guidance: { mode: "both", scale: 1, cfg_scale: 0 }, method: "dpm", steps: 15 },
      { label: "default, DPM-Solver++(2M) SDE", classes: [4], guidance: "default", method: "dpm-sde", steps: 10 },
      // The other forms of the classifier's gradient.
      { label: "classifier s=0.05 g=norm", classes: [6, 9], guidance: { mode: "classifier", scale: 0.05, cfg_scale: 0, grad: "norm" }, method: "dpm", steps: 8 },
      { label: "both s=1 w=0 g=x0", classes: [2], guidance: { mode: "both", scale: 1, cfg_scale: 0, grad: "x0" }, method: "dpm", steps: 8 },
      // Steered live after the first replay to another mode: the next step records again, and
      // the steps after it replay.
      { label: "default steered to classifier s=4 on 8", classes: [3], guidance: "default", method: "dpm", steps: 15, steer: { class: 8, guidance: { mode: "classifier", scale: 4, cfg_scale: 0 } } },
      // Steered to a new digit and strengths of the same mode: the step is the same, its tables
      // are rewritten in place, and the steps from the steered one on replay (counted from it).
      { label: "both s=2 w=1 steered to s=0.5 w=3 on 8", classes: [3], guidance: { mode: "both", scale: 2, cfg_scale: 1 }, method: "dpm", steps: 15, sameStep: true, steer: { class: 8, guidance: { mode: "both", scale: 0.5, cfg_scale: 3 } } },
    ];
    for (const run of runs) {
      const result = await b.page.evaluate(async (run) => {
        const { Demo, demo } = globalThis.guidedDdpm;
        const guidance = run.guidance === "default" ? JSON.parse(Demo.starting()).guidance : run.guidance;
        const { label, steer, sameStep, ...rest } = run;
        const token = demo.start(JSON.stringify({ steps: 100, method: "ddpm", ...rest, guidance, seed: 4, schedule: "linear" }));
        const step = async () => {
          const f = await demo.step(token);
          if (!f) throw new Error(`${label}: the run ended early`);
          f.x_t; f.free();
        };
        const proto = GPUDevice.prototype;
        const create = proto.createBindGroup;
        // The bind groups the steps `steps` creates.
        const counted = async (steps) => {
          let count = 0;
          proto.createBindGroup = function (...a) { count++; return create.apply(this, a); };
          try {
            await steps();
          } finally {
            proto.createBindGroup = create;
          }
          return count;
        };
        // The first step warms up and records; the second is the first replay.
        await step();
        await step();
        let steered = null;
        if (steer) {
          await step();
          demo.steer(token, JSON.stringify(steer));
          if (sameStep) {
            steered = await counted(step); // the tables' rewrite, then a replay
          } else {
            await step(); // steered to another step: warms up and records again
            await step();
          }
        }
        const groups = await counted(async () => {
          await step();
          await step();
        });
        demo.cancel();
        return { groups: groups / 2, steered };
      }, run);
      const { groups, steered } = result;
      // The steered step makes the new tables (the networks' embedding MLPs) and writes them
      // in place: tens of kernels. A step that records again runs two steps eagerly (over 500
      // bind groups each).
      if (run.sameStep) assert.ok(steered < 100, `${run.label}: the steered step created ${steered} bind groups, so it recorded again`);
      assert.equal(groups, 0, `${run.label}: ${groups} bind groups a step, so its steps run eagerly`);
    }
    // The bare harness has no icon: the browser's request for one is the only 404.
    assert.deepEqual(b.errors.filter((e) => !/status of 404/.test(e)), []);
  } finally {
    await b.close();
  }
});

for (const [name, query] of [["the CPU path, split over two workers", "backend=cpu&workers=2&n=4"], ["WebGPU", "backend=webgpu&n=1"]]) {
  test(`steering live on ${name}: a 3 bent into an 8 mid-run, the chart and the result follow, and the result says it was steered`, { timeout: SLOW }, async () => {
    const b = await open({ webgpu: query.startsWith("backend=webgpu") });
    try {
      await ready(b.page, `?steps=25&sampler=ddpm&class=3&seed=1&${query}`);
      if (query.includes("workers=2")) await b.page.waitForFunction(() => globalThis.guidedDdpm.workers === 2, null, { timeout: SLOW });
      await b.page.click("#generate");
      await b.page.waitForFunction(() => /step [3-6] of 25/.test(document.getElementById("status").textContent), null, { timeout: SLOW });
      await b.page.click('#classes [data-digit="8"]');
      await done(b.page);
      const text = await status(b.page);
      // The steer is named by the crate's label of the guidance the controls held (the default's).
      assert.match(text, /steered live to digit 8, both s=16 w=0 g=x0 after step [3-9]/, text);
      assert.match(text, /its link alone does not reproduce it/);
      assert.match(b.page.url(), /class=8/);
      // Asked for a 3 until the steer, the images end as 8s.
      const after = await b.page.evaluate(() => globalThis.guidedDdpm.lastProbs);
      assert.ok(after[8] > 0.5 && after[3] < 0.2, `p(8) ${after[8]}, p(3) ${after[3]} at the end`);
      await assertDigit(b.page);
      assert.deepEqual(b.errors, []);
    } finally {
      await b.close();
    }
  });
}
