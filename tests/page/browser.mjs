// The page tests' shared helpers: the site under test served locally, a fresh headless Chromium
// (Debian's, through playwright-core; WebGPU on SwiftShader) on a desktop or a phone's screen,
// and what the tests read of the page.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";
import { BASE_ARGS, CHROMIUM, WEBGPU_ARGS } from "./chromium.mjs";

export const DIST = process.env.DIST ?? join(import.meta.dirname, "../../dist");
// The shipped site (`make site`), which must export none of the test site's hooks.
export const SHIPPED = process.env.SHIPPED ?? join(import.meta.dirname, "../../dist");
// axe-core (npm, a dev dependency of these tests), injected into the page to audit it.
export const AXE = join(import.meta.dirname, "node_modules/axe-core/axe.min.js");
export const SLOW = 600_000;

let server;
/// Serves the site under test (DIST) for the tests of the calling file.
export function serveSite() {
  before(async () => { server = await serve(DIST); });
  after(async () => { await server?.close(); });
}
/// The server of `serveSite` (`url`, and `hits`: requests per path).
export const site = () => server;

/// A fresh browser profile (empty cache) with or without WebGPU, on a desktop or, with `phone`,
/// a 390 x 844 touch screen (Chromium's mobile emulation); collects console errors.
export async function open({ webgpu = true, profile, phone = false } = {}) {
  const dir = profile ?? mkdtempSync(join(tmpdir(), "guided-ddpm-page-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE_ARGS, ...(webgpu ? WEBGPU_ARGS : ["--disable-webgpu"])],
    ...(phone ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 } : {}),
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors, dir, close: async () => { await context.close(); if (!profile) rmSync(dir, { recursive: true, force: true }); } };
}

export async function ready(page, query = "") {
  await page.goto(`${site().url}${query}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
}

export const status = (page) => page.locator("#status").textContent();
/// What the page is doing (www/run.js, `Phase`): its body's data-phase.
export const phase = (page) => page.locator("body").getAttribute("data-phase");

/// The page's primary sampler worker (www/worker.js; the first one started).
export async function samplerWorker(page) {
  for (let i = 0; i < 100 && !page.workers().length; i++) await page.waitForTimeout(100);
  const w = page.workers().find((w) => w.url().endsWith("/worker.js"));
  assert.ok(w, "the sampler runs in a worker");
  return w;
}

/// The canvas's pixels (red channel).
export const pixels = (page) => page.evaluate(() => {
  const c = document.getElementById("canvas");
  return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0));
});

/// The canvas shows an image, not a blank.
export async function assertDrawn(page) {
  const { std } = await canvasStats(page);
  assert.ok(std > 20, `the canvas is blank (pixel spread ${std})`);
}

/// The last frame is a digit the classifier reads as the asked one, not noise or a blank: most
/// pixels near black (MNIST's background), some near white (strokes), and p(asked digit) at the
/// last step above 0.5. Raw noise, a grey image or another digit fails.
export async function assertDigit(page) {
  await assertDrawn(page);
  // p of the digit the picker shows, not of the class the run was given (a run given the wrong
  // class has its own p high).
  const { image, p } = await page.evaluate(() => {
    const asked = Number(document.querySelector('#classes [aria-checked="true"]').dataset.digit);
    return { image: globalThis.guidedDdpm.lastImage, p: globalThis.guidedDdpm.lastProbs[asked] };
  });
  const dark = image.filter((v) => v < 40).length / image.length;
  const bright = image.filter((v) => v > 200).length / image.length;
  assert.ok(dark > 0.6 && bright > 0.03, `the image is not a digit: ${(100 * dark).toFixed(0)}% near black, ${(100 * bright).toFixed(0)}% near white`);
  assert.ok(p > 0.5, `the classifier reads the asked digit at p = ${p}`);
}

export const done = (page) => page.waitForFunction(() => /^Done/.test(document.getElementById("status").textContent), null, { timeout: SLOW });

/// Mean and spread of the canvas pixels: a blank canvas has no spread.
export async function canvasStats(page) {
  return page.evaluate(() => {
    const c = document.getElementById("canvas");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; n++; }
    const mean = s / n;
    return { mean, std: Math.sqrt(s2 / n - mean * mean) };
  });
}

/// Draws a stroke on the pad with the mouse: a vertical line down the middle, in grid cells
/// (28 x 28) from row `from` to row `to`.
export async function drawStroke(page, { col = 14, from = 6, to = 22 } = {}) {
  await page.locator("#pad").scrollIntoViewIfNeeded();
  const box = await page.locator("#pad").boundingBox();
  const at = (c, r) => [box.x + ((c + 0.5) / 28) * box.width, box.y + ((r + 0.5) / 28) * box.height];
  await page.mouse.move(...at(col, from));
  await page.mouse.down();
  for (let r = from; r <= to; r++) await page.mouse.move(...at(col, r), { steps: 2 });
  await page.mouse.up();
}
