// Page tests: the device: WebGPU timed against the CPU path, the switch, no WebGPU at all. The built site (dist/, from `trunk build --release`) served locally and
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

test("a first visit is ready on the CPU path at once, times WebGPU in the background, uses the faster, and remembers it", { timeout: SLOW }, async () => {
  const profile = mkdtempSync(join(tmpdir(), "guided-ddpm-page-"));
  const b = await open({ profile });
  try {
    await ready(b.page, "?steps=25&n=1&class=3");
    const capability = () => b.page.locator("#capability").textContent();
    assert.match(await capability(), /CPU path · a guided step takes [0-9.]+ ms · timing WebGPU \(.*\) in the background/);
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.gpu), false);
    // A run pressed during the timing runs on the CPU path and ends.
    await b.page.click("#generate");
    await done(b.page);
    await assertDigit(b.page);
    await b.page.waitForFunction(() => /measured in the background on this visit/.test(document.getElementById("capability").textContent), null, { timeout: SLOW });
    const line = await capability();
    const m = /a guided step takes ([0-9.]+) ms on WebGPU and ([0-9.]+) ms on the CPU \(measured in the background on this visit\)/.exec(line);
    assert.ok(m, line);
    const [gpuMs, cpuMs] = [Number(m[1]), Number(m[2])];
    assert.ok(gpuMs > 0 && cpuMs > 0, line);
    // Whichever measured faster is the one in use.
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.gpu), gpuMs < cpuMs, line);
    if (gpuMs >= cpuMs) {
      // SwiftShader here: a CPU emulation of a GPU loses to the wasm CPU path, by measurement.
      assert.match(line, /CPU fallback \(faster here than WebGPU/);
      assert.match(line, /backend=webgpu/);
    }
    // A reload reuses the measurement instead of timing both again.
    await b.page.reload();
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    assert.match(await capability(), /measured on an earlier visit/);
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.gpu), gpuMs < cpuMs);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test("where WebGPU times faster in the background, the page switches to it between runs and says so", { timeout: SLOW }, async () => {
  const b = await open();
  try {
    // Test hook: a CPU step that takes "forever", so SwiftShader's WebGPU wins the comparison.
    await b.page.addInitScript(() => localStorage.setItem("guided-ddpm-test-cpu-ms", "1e9"));
    await ready(b.page, "?n=1&class=6");
    await b.page.waitForFunction(() => /switched to from the CPU path/.test(document.getElementById("capability").textContent), null, { timeout: SLOW });
    assert.match(await status(b.page), /^Ready: switched to WebGPU/);
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.gpu), true);
    await b.page.click("#generate");
    await done(b.page);
    await assertDigit(b.page);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("without WebGPU the CPU fallback draws the asked digit", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?steps=25&n=1&class=1&seed=3");
    assert.match(await b.page.locator("#capability").textContent(), /CPU fallback/);
    // The crate's default finish (settings::DEFAULT_PLACE): the digits placed as MNIST's were.
    assert.ok(await b.page.locator("#place").isChecked());
    await b.page.click("#generate");
    await done(b.page);
    await assertDigit(b.page);
    assert.match(await status(b.page), /placed as MNIST's digits/);
    assert.match(b.page.url(), /place=true/);
    // Unticked, the run ends as drawn, and the link says so.
    await b.page.uncheck("#place");
    assert.match(b.page.url(), /place=false/);
    await b.page.click("#generate");
    await done(b.page);
    assert.match(await status(b.page), /as drawn/);
    await ready(b.page, "?steps=25&n=1&class=1&seed=3&place=false");
    assert.ok(!(await b.page.locator("#place").isChecked()));
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
