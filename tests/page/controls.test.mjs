// Page tests: the controls: pressed before the module has started, on a desktop and a phone, and the settings in the URL. The built site (dist/, from `trunk build --release`) served locally and
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

test("every control pressed before the module has started works or waits, never throws, and a digit picked then is kept", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    // Hold the module back, so the presses land before the crate's settings are in.
    let release;
    const held = new Promise((r) => { release = r; });
    await b.context.route(/\.wasm$/, async (route) => { await held; await route.continue(); });
    await b.page.goto(`${site().url}?seed=5`);
    await b.page.waitForSelector("#classes button");
    assert.doesNotMatch(await b.page.locator("body").getAttribute("data-ready") ?? "", /true/);
    // The crate's controls wait, and the status line says why.
    for (const id of ['input[name="mode"][value="both"]', "#scale", "#cfg", "#interval", "#grad", "#steps", "#method", "#place", "#generate", "#compare", "#sdedit", "#inpaint", "#download"]) {
      assert.ok(await b.page.locator(id).isDisabled(), `${id} waits for the module`);
    }
    assert.match(await status(b.page), /open once it has started/);
    assert.equal(await phase(b.page), "loading");
    // Every control that is enabled, pressed.
    await b.page.click('#classes button[data-digit="3"]');
    await b.page.selectOption("#batch", "9");
    await b.page.selectOption("#preset", "modes");
    await b.page.selectOption("#brush", "3");
    await b.page.fill("#seed", "42");
    await b.page.locator("#seed").dispatchEvent("change");
    await b.page.click("#random-seed");
    await b.page.fill("#seed", "42");
    await b.page.locator("#seed").dispatchEvent("change");
    await b.page.locator("#strength").evaluate((el) => { el.value = "0.8"; el.dispatchEvent(new Event("input", { bubbles: true })); });
    for (const view of ["x0", "push", "xt"]) await b.page.check(`input[name="view"][value="${view}"]`);
    const pad = await b.page.locator("#pad").boundingBox();
    await b.page.mouse.move(pad.x + 50, pad.y + 50);
    await b.page.mouse.down();
    await b.page.mouse.move(pad.x + 150, pad.y + 160, { steps: 5 });
    await b.page.mouse.up();
    await b.page.click("#clear");
    assert.deepEqual(b.errors, [], "no script error before the module started");
    assert.doesNotMatch(await status(b.page), /went wrong/);
    // Nothing the crate sets was written into the link before the crate said what it is.
    assert.doesNotMatch(b.page.url(), /mode=|sampler=|steps=|place=/);
    release();
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    assert.equal(await phase(b.page), "idle");
    // The presses are kept: the digit, the batch, the seed; the crate's settings are its defaults.
    assert.equal(await b.page.locator('#classes [aria-checked="true"]').textContent(), "3");
    assert.equal(await b.page.locator("#batch").inputValue(), "9");
    assert.equal(await b.page.locator("#seed").inputValue(), "42");
    assert.equal(await b.page.locator("#method").inputValue(), "dpm");
    assert.ok(await b.page.locator('input[name="mode"][value="both"]').isChecked());
    assert.ok(!(await b.page.locator("#notice").isVisible()), "no notice: every kept value is one the page offers");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("no control runs past its panel, on a desktop width and a phone's, and the page never scrolls sideways", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page);
    for (const [width, height] of [[1280, 800], [390, 844]]) {
      await b.page.setViewportSize({ width, height });
      const over = await b.page.evaluate(() => {
        const out = [];
        for (const panel of document.querySelectorAll(".panel")) {
          const edge = panel.getBoundingClientRect().right;
          for (const el of panel.querySelectorAll("input, select, button, canvas, progress")) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > edge + 0.5) out.push(`${el.id || el.name || el.tagName} by ${(r.right - edge).toFixed(0)} px`);
          }
        }
        if (document.documentElement.scrollWidth > innerWidth) out.push(`the page, ${document.documentElement.scrollWidth - innerWidth} px wider than the screen`);
        return out;
      });
      assert.deepEqual(over, [], `at ${width} px`);
    }
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("on a phone the status and the image are on the first screen, in view again after Generate is tapped, every control is a target of 24 px or more, and the pad spans the panel", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false, phone: true });
  try {
    await ready(b.page, "?steps=8&n=1&class=4");
    const inView = (id) => b.page.evaluate((id) => {
      const r = document.getElementById(id).getBoundingClientRect();
      return r.top >= 0 && r.top < innerHeight;
    }, id);
    assert.ok(await inView("status"), "Ready is on the first screen");
    assert.ok(await inView("canvas"), "the image is on the first screen");
    const small = await b.page.evaluate(() => {
      const out = [];
      for (const el of document.querySelectorAll("main button, main select, main input, #pad")) {
        const r = el.getBoundingClientRect();
        if (r.width && (r.width < 24 || r.height < 24)) out.push(`${el.id || el.name || el.tagName} ${r.width.toFixed(0)} x ${r.height.toFixed(0)}`);
      }
      return out;
    });
    assert.deepEqual(small, [], "targets under 24 px");
    const pad = await b.page.locator("#pad").boundingBox();
    const panel = await b.page.locator(".controls").boundingBox();
    assert.ok(pad.width > 0.8 * (panel.width - 28), `the pad is ${pad.width} px of a ${panel.width} px panel`);
    // Generate sits below the settings: scrolled to and tapped, the run comes into view.
    await b.page.locator("#generate").scrollIntoViewIfNeeded();
    assert.ok(!(await inView("status")), "Generate is out of sight of the status");
    await b.page.locator("#generate").tap();
    await b.page.waitForFunction(() => /^Sampling/.test(document.getElementById("status").textContent), null, { timeout: 1000 });
    assert.ok(await inView("status"), "the status is in view within a second of the tap");
    assert.ok(await inView("canvas"), "the image is in view within a second of the tap");
    await done(b.page);
    assert.ok(await b.page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), "no sideways scroll");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});

test("settings in the URL that the page does not offer are named in a notice, not silently replaced", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  try {
    await ready(b.page, "?class=12&steps=33&mode=both&s=4&seed=-1&strength=1.5&compare=ranks&interval=3-4&place=maybe");
    const notice = b.page.locator("#notice");
    assert.ok(await notice.isVisible(), "a notice is shown");
    const text = await notice.textContent();
    assert.match(text, /class=12 is not a setting this page offers; it uses class=7/);
    assert.match(text, /steps=33 .* it uses steps=8/);
    assert.match(text, /seed=-1 .* it uses seed=0/);
    assert.match(text, /strength=1.5 .* it uses strength=0.5/);
    assert.match(text, /compare=ranks .* it uses compare=scales/);
    assert.match(text, /place=maybe is not a setting this page offers; it uses place=true/);
    assert.match(text, /interval=3-4 is not a setting this page offers; it uses interval=(all|\d+-\d+)/);
    assert.equal(await b.page.locator("#strength").inputValue(), "0.5");
    assert.doesNotMatch(text, /mode=|s=4/, "valid values are not mentioned");
    assert.equal(await b.page.locator("#steps").inputValue(), "8");
    assert.equal(await b.page.locator("#method").inputValue(), "dpm");
    // A clean URL shows no notice, and the guidance starts at the crate's default
    // (guidance::DEFAULT: both, s = 16 with the gradient at x0, w = 0, DPM-Solver++(2M) in 8
    // steps): the sliders hold it exactly (the x0 form's s slider moves in whole steps; a
    // coarser one would move it unnoticed).
    // A guidance interval the menu offers is taken as it is; a link from before the page had
    // intervals (a mode, no interval) guides at every step, as it did then.
    await ready(b.page, "?mode=classifier&interval=250-749");
    assert.equal(await b.page.locator("#interval").inputValue(), "250-749");
    await ready(b.page, "?mode=classifier&s=2");
    assert.equal(await b.page.locator("#interval").inputValue(), "all");
    assert.equal(await b.page.locator("#grad").inputValue(), "xt");
    // The normalised gradient's s moves in hundredths (its slider, url.js SCALE_SLIDER); an s
    // past its slider is named, and replaced by the form's own start (Grad::start_scale).
    await ready(b.page, "?mode=classifier&grad=norm&s=0.05");
    assert.ok(!(await b.page.locator("#notice").isVisible()));
    assert.equal(await b.page.locator("#scale").inputValue(), "0.05");
    assert.equal(await b.page.locator("#scale-out").textContent(), "0.05");
    await ready(b.page, "?mode=classifier&grad=norm&s=4");
    assert.match(await b.page.locator("#notice").textContent(), /s=4 is not a setting this page offers; it uses s=0.01/);
    assert.equal(await b.page.locator("#scale").inputValue(), "0.01");
    // A link naming the x0 form but no s starts from that form's s, past the paper's slider.
    await ready(b.page, "?mode=both&grad=x0");
    assert.equal(await b.page.locator("#scale").inputValue(), "16");
    assert.equal(await b.page.locator("#scale-out").textContent(), "16");
    // Picking a form starts it from its own s, the crate's: the paper's gradient at 0.75,
    // the normalised one at 0.01, and x0's at 16 again.
    await b.page.selectOption("#grad", "xt");
    assert.equal(await b.page.locator("#scale").inputValue(), "0.75");
    assert.match(b.page.url(), /grad=xt/);
    await b.page.selectOption("#grad", "norm");
    assert.equal(await b.page.locator("#scale").inputValue(), "0.01");
    await b.page.selectOption("#grad", "x0");
    assert.equal(await b.page.locator("#scale").inputValue(), "16");
    // A form the page does not offer is named, and the default's form taken.
    await ready(b.page, "?mode=classifier&grad=x1");
    assert.match(await b.page.locator("#notice").textContent(), /grad=x1 is not a setting this page offers; it uses grad=x0/);
    await ready(b.page, "?class=3&steps=25");
    assert.ok(!(await b.page.locator("#notice").isVisible()));
    assert.ok(await b.page.locator('input[name="mode"][value="both"]').isChecked());
    assert.equal(await b.page.locator("#grad").inputValue(), "x0");
    assert.equal(await b.page.locator("#scale").inputValue(), "16");
    assert.equal(await b.page.locator("#scale-out").textContent(), "16");
    assert.equal(await b.page.locator("#cfg").inputValue(), "0");
    assert.equal(await b.page.locator("#interval").inputValue(), "all");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
  }
});
