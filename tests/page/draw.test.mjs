// Page tests: the drawing pad: SDEdit and inpainting. The built site (dist/, from `trunk build --release`) served locally and
// driven in Debian's headless Chromium through playwright-core, WebGPU on SwiftShader
// (browser.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "./serve.mjs";
import { openHarness } from "./host.mjs";
import { AXE, DIST, SHIPPED, SLOW, serveSite, site, open, ready, status, phase, samplerWorker, pixels, assertDrawn, assertDigit, done, canvasStats, drawStroke } from "./browser.mjs";

serveSite();

test("a drawn stroke: SDEdit at low strength keeps it visible, inpainting keeps every drawn pixel, an empty pad runs nothing", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?backend=cpu&steps=25&class=1&seed=4&n=1&strength=0.3");
    // Nothing drawn: a plain message, no run.
    await b.page.click("#sdedit");
    assert.match(await status(b.page), /Draw something on the pad first/);
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.lastImage), null);
    await drawStroke(b.page);
    const drawn = await b.page.evaluate(() => globalThis.guidedDdpm.drawing);
    const ink = drawn.map((v, i) => (v ? i : -1)).filter((i) => i >= 0);
    assert.ok(ink.length >= 17, `the stroke inked ${ink.length} pixels`);
    await b.page.click("#sdedit");
    await done(b.page);
    assert.match(await status(b.page), /edited the drawing at strength 0.3 \(the last 8 of 25 steps\)/);
    // SDEdit starts from the drawing made a digit as MNIST's were (scaled into 20 x 20, centred).
    const prepared = await b.page.evaluate(() => globalThis.guidedDdpm.prepared);
    const strokeAt = prepared.map((v, i) => (v > 127 ? i : -1)).filter((i) => i >= 0);
    const rows = strokeAt.map((i) => Math.floor(i / 28));
    assert.equal(Math.max(...rows) - Math.min(...rows) + 1, 20, "the stroke fills the 20-pixel box");
    let image = await b.page.evaluate(() => globalThis.guidedDdpm.lastImage);
    const bright = strokeAt.filter((i) => image[i] > 128).length;
    assert.ok(bright >= 0.7 * strokeAt.length, `only ${bright} of ${strokeAt.length} stroke pixels stayed bright`);
    await b.page.click("#inpaint");
    await done(b.page);
    image = await b.page.evaluate(() => globalThis.guidedDdpm.lastImage);
    assert.deepEqual(ink.map((i) => image[i]), ink.map(() => 255), "a drawn pixel changed");
    const drawnOutside = image.filter((v, i) => !drawn[i] && v > 128).length;
    assert.ok(drawnOutside > 0, "the model drew nothing beside the stroke");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("a small digit drawn in the pad's corner is edited as a digit centred and scaled as MNIST's were", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?backend=cpu&steps=25&class=1&seed=4&n=1&strength=0.3");
    await drawStroke(b.page, { col: 4, from: 2, to: 8 });
    await b.page.click("#sdedit");
    await done(b.page);
    const image = await b.page.evaluate(() => globalThis.guidedDdpm.lastImage);
    // The result's ink: its centre of mass near the field's centre, not the corner, and tall.
    let mass = 0, cx = 0, cy = 0;
    const rows = [];
    image.forEach((v, i) => {
      if (v <= 128) return;
      mass += v; cx += v * ((i % 28) + 0.5); cy += v * (Math.floor(i / 28) + 0.5);
      rows.push(Math.floor(i / 28));
    });
    assert.ok(mass > 0, "the edit drew nothing");
    [cx, cy] = [cx / mass, cy / mass];
    assert.ok(Math.abs(cx - 14) < 3 && Math.abs(cy - 14) < 3, `the digit's centre is at (${cx.toFixed(1)}, ${cy.toFixed(1)})`);
    assert.ok(Math.max(...rows) - Math.min(...rows) + 1 >= 16, "the digit is the height of MNIST's");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("a pad drawn full leaves the model nothing to draw: inpainting says so and the drawing stays", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?backend=cpu&steps=25&n=1");
    await b.page.selectOption("#brush", "3");
    for (let col = 1; col < 28; col += 2) await drawStroke(b.page, { col, from: 0, to: 27 });
    const drawn = await b.page.evaluate(() => globalThis.guidedDdpm.drawing);
    assert.ok(drawn.every((v) => v), "the pad is full");
    await b.page.click("#inpaint");
    await b.page.waitForFunction(() => document.getElementById("status").classList.contains("error"), null, { timeout: SLOW });
    assert.match(await status(b.page), /the mask keeps every pixel, so there is nothing left to draw/);
    assert.deepEqual(await b.page.evaluate(() => globalThis.guidedDdpm.drawing), drawn);
    assert.equal(await b.page.locator("#generate").isDisabled(), false, "the page is usable again");
  } finally {
    await b.close();
  }
});
