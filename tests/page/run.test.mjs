// Page tests: a run: a digit drawn, Cancel, a lost GPU, a crashed worker, a batch split over workers. The built site (dist/, from `trunk build --release`) served locally and
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

test("a 7 appears in 25 steps on WebGPU, from the cache on reload, with a clean console", { timeout: SLOW }, async () => {
  const b = await open();
  try {
    await ready(b.page, "?steps=25&n=1&class=2&seed=5&backend=webgpu");
    assert.match(await b.page.locator("#capability").textContent(), /WebGPU/);
    await b.page.getByRole("radio", { name: "7" }).click();
    await b.page.click("#generate");
    await done(b.page);
    assert.equal(await b.page.locator("#progress").evaluate((p) => p.value), 1);
    const timing = await b.page.locator("#timing").textContent();
    const p = Number(/final p\(7\) = ([0-9.]+)/.exec(timing)?.[1]);
    assert.ok(p > 0.8, `p(7) at the end is ${p}: ${timing}`);
    await assertDrawn(b.page);
    assert.match(b.page.url(), /class=7/, "the settings live in the URL");
    // The module ran its static constructors once, at start, not once per call into it (which
    // cost 92% of the page's CPU on WebGPU when wasm-ld wrapped every export with them).
    const worker = await samplerWorker(b.page);
    assert.deepEqual(await worker.evaluate(() => [0, 1, 2].map(() => self.guidedDdpm.wasm.constructor_runs())), [1, 1, 1]);
    const unetPath = [...site().hits.keys()].find((p) => /^\/weights\/unet-[0-9a-f]+\.safetensors$/.test(p));
    assert.ok(unetPath, "the U-Net was downloaded");
    // The service worker, registered once the page is ready, caches the build (its own fetches
    // count too): counted once it has.
    await b.page.evaluate(() => navigator.serviceWorker.ready);
    const downloads = site().hits.get(unetPath);
    // A reload is served from the Cache API: no second download of the weights.
    await b.page.reload();
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    assert.match(await b.page.locator("#capability").textContent(), /from the cache/);
    assert.equal(site().hits.get(unetPath), downloads);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("Cancel stops a run within a step, and Generate does not start a second run", { timeout: SLOW }, async () => {
  const b = await open();
  try {
    await ready(b.page, "?steps=1000&n=1&mode=none&backend=webgpu");
    await b.page.click("#generate");
    await b.page.waitForFunction(() => /step [3-9] of 1000/.test(document.getElementById("status").textContent), null, { timeout: SLOW });
    assert.ok(await b.page.locator("#generate").isDisabled(), "Generate is off during a run");
    assert.equal(await phase(b.page), "running");
    // The step on screen when Cancel is clicked, read in the same task as the click.
    const clicked = await b.page.evaluate(() => {
      const step = Number(/step (\d+) of 1000/.exec(document.getElementById("status").textContent)[1]);
      document.getElementById("cancel").click();
      return step;
    });
    await b.page.waitForFunction(() => /^Cancelled/.test(document.getElementById("status").textContent), null, { timeout: 60_000 });
    const at = await status(b.page);
    // Within a step: the step in flight at the click may still land, no later one.
    const stopped = Number(/^Cancelled at step (\d+) of 1000\.$/.exec(at)?.[1]);
    assert.ok(stopped >= clicked && stopped <= clicked + 1, `Cancel at step ${clicked} stopped at ${at}`);
    await b.page.waitForTimeout(3000);
    assert.equal(await status(b.page), at, "no step after Cancel");
    assert.ok(!(await b.page.locator("#generate").isDisabled()));
    assert.equal(await phase(b.page), "idle");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

// Cancel then Generate in the same task, while a step is in flight: the cancelled run's last
// frame must not be drawn, charted or counted, and must not step the new run. Each new run ends
// Done with exactly its own N steps (the page reports a run that stops short as an error).
// Checked by hand against the page and Demo before run tokens (commit f375d19): both paths
// failed, the new run's status read "Cancelled at step 25 of 25." though nobody cancelled it.
async function cancelThenGenerate(page, rounds) {
  for (let i = 0; i < rounds; i++) {
    await page.waitForFunction(() => /step ([2-9]|1\d) of 25/.test(document.getElementById("status").textContent), null, { timeout: SLOW });
    await page.evaluate(() => {
      document.getElementById("cancel").click();
      document.getElementById("generate").click();
    });
    await page.waitForFunction(() => /^(Done|Something|The run)/.test(document.getElementById("status").textContent) || document.getElementById("status").classList.contains("error"), null, { timeout: SLOW });
    assert.match(await status(page), /^Done: 1 × digit 4/);
    assert.equal(await page.locator("#progress").evaluate((p) => p.value), 1);
    if (i + 1 < rounds) await page.click("#generate");
  }
}

for (const [name, query] of [["the CPU path", "backend=cpu"], ["WebGPU", "backend=webgpu"]]) {
  test(`Cancel then Generate at once, again and again, on ${name}: every new run ends Done with its own steps`, { timeout: SLOW }, async () => {
    const b = await open({ webgpu: query === "backend=webgpu" });
    try {
      await ready(b.page, `?steps=25&n=1&class=4&${query}`);
      await b.page.click("#generate");
      await cancelThenGenerate(b.page, query === "backend=cpu" ? 5 : 2);
      assert.deepEqual(b.errors, []);
    } finally {
      await b.close();
    }
  });
}

test("a GPU lost mid-run: the page says so, switches to the CPU, and the same Generate press ends Done", { timeout: SLOW }, async () => {
  const b = await open();
  try {
    await ready(b.page, "?steps=25&n=1&class=5&backend=webgpu");
    await b.page.click("#generate");
    await b.page.waitForFunction(() => /step [2-9] of 25/.test(document.getElementById("status").textContent), null, { timeout: SLOW });
    await (await samplerWorker(b.page)).evaluate(() => self.guidedDdpm.gpuDevices.at(-1).destroy());
    await done(b.page);
    assert.match(await b.page.locator("#notice").textContent(), /The GPU stopped working \(.+\), so the page now draws on the CPU\./);
    assert.match(await b.page.locator("#capability").textContent(), /CPU fallback \(the GPU stopped/);
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.gpu), false);
    await assertDigit(b.page);
    // And the next press works too.
    await b.page.click("#generate");
    await done(b.page);
  } finally {
    await b.close();
  }
});

// How long the page's main thread is busy during a run is measured by `make bench` ("The page
// stays responsive"), not asserted here: a timing bound fails on a slow machine, not on a bug.
test("during a batch-16 run on the CPU the page answers a click, and Cancel stops the run", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?backend=cpu&n=16&steps=100&class=7");
    await b.page.click("#generate");
    await b.page.waitForFunction(() => /step [3-9] of 100/.test(document.getElementById("status").textContent), null, { timeout: SLOW });
    await b.page.getByRole("radio", { name: "3" }).click();
    assert.equal(await b.page.getByRole("radio", { name: "3" }).getAttribute("aria-checked"), "true");
    assert.match(await status(b.page), /^Sampling: step \d+ of 100/, "the run goes on meanwhile");
    await b.page.click("#cancel");
    assert.match(await status(b.page), /^Cancelled at step \d+ of 100/);
    const at = await status(b.page);
    const before = await pixels(b.page);
    await b.page.waitForTimeout(3000);
    assert.equal(await status(b.page), at, "no step after Cancel");
    assert.deepEqual(await pixels(b.page), before, "no frame drawn after Cancel");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("the same seed gives the same images with one sampler worker and with two", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    const images = [];
    for (const workers of [1, 2]) {
      await ready(b.page, `?backend=cpu&n=4&steps=25&class=8&seed=9&workers=${workers}`);
      await b.page.waitForFunction((n) => globalThis.guidedDdpm.workers === n, workers, { timeout: SLOW });
      await b.page.click("#generate");
      await done(b.page);
      assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.lastRunParts), workers, "the batch was split across the workers");
      images.push(await pixels(b.page));
    }
    const [one, two] = images;
    assert.equal(one.length, two.length);
    const worst = one.reduce((m, v, i) => Math.max(m, Math.abs(v - two[i])), 0);
    await assertDrawn(b.page);
    // To float rounding: a grey level may differ by one where a value sits on a rounding edge.
    assert.ok(worst <= 1, `pixels differ by up to ${worst}`);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("a crashed sampler worker is reported in plain words and replaced on the next Generate", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?backend=cpu&n=1&steps=25&class=2&workers=1");
    const worker = await samplerWorker(b.page);
    await worker.evaluate(() => setTimeout(() => { throw new Error("forced crash"); }));
    await b.page.waitForFunction(() => document.getElementById("status").classList.contains("error"), null, { timeout: 60_000 });
    assert.match(await status(b.page), /The sampler stopped unexpectedly \(.*forced crash.*\)\. Press Generate to start it again\./);
    assert.equal(await phase(b.page), "crashed");
    assert.ok(!(await b.page.locator("#generate").isDisabled()), "Generate is offered");
    await b.page.click("#generate");
    await done(b.page);
    assert.equal(await phase(b.page), "idle");
    await assertDrawn(b.page);
    assert.notEqual(await samplerWorker(b.page), worker, "a new worker took over");
  } finally {
    await b.close();
  }
});
