// Page tests: the views: Compare and the push view. The built site (dist/, from `trunk build --release`) served locally and
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

/// Per tile of a comparison on the canvas (one row of 28x28 images, 2 px apart, scaled by an
/// integer): the grey level at each image pixel's centre, and each channel's spread.
const tilePixels = (page) => page.evaluate(() => {
  const c = document.getElementById("canvas");
  const n = globalThis.guidedDdpm.tiles.length;
  const scale = Math.floor(448 / (n * 30 - 2));
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  return Array.from({ length: n }, (_, k) => {
    const rgb = [];
    for (let r = 0; r < 28; r++) for (let col = 0; col < 28; col++) {
      const o = (Math.floor((r + 0.5) * scale) * c.width + Math.floor((k * 30 + col + 0.5) * scale)) * 4;
      rgb.push([d[o], d[o + 1], d[o + 2]]);
    }
    return rgb;
  });
});

const spread = (v) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
};

test("Compare draws five labelled tiles from the same noise whose p(class) rises with s, each the image of a single run of its setting", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    // Two workers: the comparison is split across them, as a batch is.
    await ready(b.page, "?backend=cpu&steps=25&class=7&seed=0&compare=scales&workers=2");
    await b.page.waitForFunction(() => globalThis.guidedDdpm.workers === 2, null, { timeout: SLOW });
    await b.page.click("#compare");
    await done(b.page);
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.lastRunParts), 2);
    const tiles = await b.page.evaluate(() => globalThis.guidedDdpm.tiles);
    assert.deepEqual(tiles.map((t) => t.label), ["classifier s=0", "classifier s=1", "classifier s=2", "classifier s=4", "classifier s=8"]);
    const p = tiles.map((t) => t.p);
    assert.ok(p.every((v, k) => k === 0 || v > p[k - 1] - 0.02), `p(7) does not rise with s: ${p}`);
    assert.ok(p[0] < 0.5 && p[4] > 0.9, `p(7) ${p}`);
    assert.match(await b.page.locator("#timing").textContent(), /classifier s=8: p\(7\) = /);
    const images = await tilePixels(b.page);
    for (const [k, img] of images.entries()) assert.ok(spread(img.map((v) => v[0])) > 20, `tile ${k} is blank`);
    // The s = 4 tile is the image of a run of that setting alone from the same seed.
    await ready(b.page, "?backend=cpu&steps=25&class=7&seed=0&mode=classifier&s=4&n=1");
    await b.page.click("#generate");
    await done(b.page);
    const alone = await b.page.evaluate(() => {
      const c = document.getElementById("canvas");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const out = [];
      for (let r = 0; r < 28; r++) for (let col = 0; col < 28; col++) out.push(d[(Math.floor((r + 0.5) * 16) * c.width + Math.floor((col + 0.5) * 16)) * 4]);
      return out;
    });
    const worst = alone.reduce((m, v, i) => Math.max(m, Math.abs(v - images[3][i][0])), 0);
    assert.ok(worst <= 1, `the s=4 tile differs from its own run by up to ${worst} grey levels`);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("the push view shows the classifier's shift mid-run on WebGPU, white where s = 0, and says so when no image uses the classifier", { timeout: SLOW }, async () => {
  const b = await open();
  try {
    await ready(b.page, "?backend=webgpu&steps=25&class=3&seed=2&compare=scales&view=push");
    assert.equal(await b.page.evaluate(() => globalThis.guidedDdpm.gpu), true);
    assert.equal(await b.page.locator("#push-legend").isVisible(), true);
    // The legend reads the crate's full-colour shift for the run's steps (grid::push_scale:
    // 1 / 25), and follows the steps menu.
    assert.match(await b.page.locator("#legend-hi").textContent(), /^brighter: \+0\.04 or more$/);
    await b.page.selectOption("#steps", "100");
    assert.match(await b.page.locator("#legend-hi").textContent(), /^brighter: \+0\.01 or more$/);
    await b.page.selectOption("#steps", "25");
    await b.page.click("#compare");
    // Mid-run (the last steps push almost nothing: Sigma_t falls to ~0).
    await b.page.waitForFunction(() => {
      const m = /step (\d+) of 25/.exec(document.getElementById("status").textContent);
      return m && Number(m[1]) >= 5;
    }, null, { timeout: SLOW, polling: 20 });
    const tiles = await tilePixels(b.page);
    const white = (px) => px[0] === 255 && px[1] === 255 && px[2] === 255;
    assert.ok(tiles[0].every(white), "s = 0 pushes nothing: its map is white");
    for (const k of [1, 2, 3, 4]) assert.ok(tiles[k].filter((px) => !white(px)).length > 20, `tile ${k} shows no push`);
    await done(b.page);
    const p = (await b.page.evaluate(() => globalThis.guidedDdpm.tiles)).map((t) => t.p);
    assert.ok(p[4] > p[0], `p(3) ${p}`);
    // Classifier-free alone: nothing is pushed, and the note says why the map is white. At the
    // default's 8 steps: the inpainting below runs its steps eagerly, which SwiftShader makes
    // slow.
    await ready(b.page, "?backend=webgpu&steps=8&class=3&seed=2&mode=free&n=1&view=push");
    await b.page.click("#generate");
    await done(b.page);
    assert.match(await b.page.locator("#push-note").textContent(), /No image of this run uses the classifier/);
    // Inpainting on WebGPU (an edit runs its steps eagerly there) keeps every drawn pixel.
    await drawStroke(b.page);
    const drawn = await b.page.evaluate(() => globalThis.guidedDdpm.drawing);
    await b.page.click("#inpaint");
    await done(b.page);
    const image = await b.page.evaluate(() => globalThis.guidedDdpm.lastImage);
    const kept = drawn.map((v, i) => (v ? image[i] : 255));
    assert.ok(kept.every((v) => v === 255), "a drawn pixel changed on WebGPU");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("the push view draws the crate's colours as they are: red where a step brightened a pixel, blue where it darkened it", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?backend=cpu&steps=25&sampler=ddpm&class=3&seed=2&n=1&mode=classifier&s=4&view=push");
    await b.page.click("#generate");
    // Mid-run: the last steps push almost nothing.
    await b.page.waitForFunction(() => Number(/step (\d+) of 25/.exec(document.getElementById("status").textContent)?.[1] ?? 0) >= 5, null, { timeout: SLOW, polling: 20 });
    const { push, width, canvas } = await b.page.evaluate(() => globalThis.guidedDdpm.pushAndCanvas);
    // One 28 x 28 tile, scaled up by a whole factor without smoothing: each pixel's centre.
    const scale = width / 28;
    let red = 0, blue = 0, off = 0;
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const i = (r * 28 + c) * 4;
        const o = ((r * scale + scale / 2) * width + c * scale + scale / 2) * 4;
        if ([0, 1, 2].some((k) => canvas[o + k] !== push[i + k])) off++;
        if (push[i] > push[i + 2]) red++;
        if (push[i + 2] > push[i]) blue++;
      }
    }
    assert.ok(red > 10 && blue > 10, `the push both brightens (${red} pixels red) and darkens (${blue} blue)`);
    assert.equal(off, 0, `${off} pixels drawn in other colours than the crate's`);
    await done(b.page);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
