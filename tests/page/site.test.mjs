// Page tests: the site: a sub-path, accessibility, offline use and updates, no test hooks shipped, broken or corrupted weights. The built site (dist/, from `trunk build --release`) served locally and
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

test("served under a sub-path, the page loads styled, fetches everything from there and draws a digit", { timeout: SLOW }, async () => {
  const sub = await serve(DIST, 0, { prefix: "/guided-ddpm/" });
  const b = await open({ webgpu: false });
  const failed = [];
  b.page.on("requestfailed", (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  b.page.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.url()}: ${r.status()}`); });
  try {
    // Without the trailing slash, as a link to a project page often is: the host redirects.
    await b.page.goto(`${sub.url.slice(0, -1)}?n=1&class=4`);
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    // The stylesheet applied: the controls panel is laid out by style.css, not the browser's defaults.
    const styled = await b.page.evaluate(() => [...document.styleSheets].some((s) => s.href && /style-.*\.css$/.test(s.href) && s.cssRules.length > 0));
    assert.ok(styled, "the stylesheet loaded");
    await b.page.click("#generate");
    await done(b.page);
    await assertDigit(b.page);
    const paths = [...sub.hits.keys()];
    assert.ok(paths.some((p) => /^\/guided-ddpm\/.*\.wasm$/.test(p)), `the module came from the sub-path: ${paths}`);
    assert.ok(paths.some((p) => /^\/guided-ddpm\/weights\/.*\.safetensors$/.test(p)), `the weights came from the sub-path: ${paths}`);
    assert.deepEqual(failed, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
    await sub.close();
  }
});

test("axe-core finds no accessibility violation on the page, before a run and after one, and every control takes keyboard focus visibly", { timeout: SLOW }, async () => {
  const b = await open({ webgpu: false });
  const audit = async (when) => {
    await b.page.addScriptTag({ path: AXE });
    const violations = await b.page.evaluate(async () => (await globalThis.axe.run(document)).violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
    assert.deepEqual(violations, [], `${when}: ${violations.join("; ")}`);
  };
  try {
    await ready(b.page, "?n=4&class=2");
    await audit("on load");
    // Each mode leaves some rows off (a slider the mode does not use): still readable.
    for (const mode of ["classifier", "free", "none", "both"]) {
      await b.page.check(`input[name="mode"][value="${mode}"]`);
      await audit(`mode ${mode}`);
    }
    await b.page.click("#generate");
    await done(b.page);
    await audit("after a run");
    for (const view of ["x0", "push"]) {
      await b.page.check(`input[name="view"][value="${view}"]`);
      await audit(`after a run, the ${view} view`);
    }
    // Tab from the top reaches every enabled control, and the focused one is drawn with an outline.
    const controls = await b.page.evaluate(() => [...document.querySelectorAll("button:not([disabled]), input:not([disabled]), select:not([disabled]), a[href]")].filter((e) => e.offsetParent !== null).length);
    const seen = new Set();
    await b.page.evaluate(() => document.activeElement?.blur());
    for (let i = 0; i < controls + 20; i++) {
      await b.page.keyboard.press("Tab");
      const f = await b.page.evaluate(() => {
        const e = document.activeElement;
        if (!e || e === document.body) return null;
        const style = getComputedStyle(e);
        return { key: e.id || `${e.tagName}:${e.getAttribute("name") ?? ""}:${e.value ?? ""}:${e.textContent}`, outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0 };
      });
      if (!f) continue;
      assert.ok(f.outline, `${f.key} takes focus without a visible outline`);
      seen.add(f.key);
    }
    for (const id of ["generate", "scale", "cfg", "interval", "grad", "steps", "method", "batch", "seed", "random-seed", "preset"]) {
      assert.ok(seen.has(id), `Tab never reaches #${id}: ${[...seen].join(", ")}`);
    }
  } finally {
    await b.close();
  }
});

test("after one visit the page works offline, and a new deploy is offered and replaces the old build whole", { timeout: SLOW }, async () => {
  // A copy of the site, so that a second deploy can be made of it.
  const root = mkdtempSync(join(tmpdir(), "guided-ddpm-deploy-"));
  cpSync(DIST, root, { recursive: true });
  const site = await serve(root);
  const b = await open({ webgpu: false });
  const controlled = () => b.page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
  try {
    await b.page.goto(`${site.url}?backend=cpu&n=1&class=5`);
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    await controlled();
    const manifest = await b.page.evaluate(async () => (await fetch(document.querySelector('link[rel="manifest"]').href)).json());
    assert.equal(manifest.start_url, "./");
    assert.ok(manifest.icons.length > 0);

    await b.context.setOffline(true);
    await b.page.reload();
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    await b.page.click("#generate");
    await done(b.page);
    await assertDigit(b.page);
    await b.context.setOffline(false);

    // A new deploy: one changed file, and the service worker of its build.
    appendFileSync(join(root, "main.js"), "\n// the second deploy\n");
    const sw = join(root, "sw.js");
    writeFileSync(sw, readFileSync(sw, "utf8").replace(/^const BUILD = ".*";$/m, 'const BUILD = "second-deploy";'));
    await b.page.reload();
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    // Until the switch the page is the first build's, whole.
    assert.doesNotMatch(await b.page.evaluate(async () => (await fetch("main.js")).text()), /the second deploy/);
    await b.page.waitForSelector("#update:not([hidden])", { timeout: SLOW });
    await Promise.all([b.page.waitForEvent("load", { timeout: SLOW }), b.page.click("#update-now")]);
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    assert.match(await b.page.evaluate(async () => (await fetch("main.js")).text()), /the second deploy/);
    const builds = await b.page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("guided-ddpm-site-")));
    assert.deepEqual(builds, ["guided-ddpm-site-second-deploy"]);
  } finally {
    await b.close();
    await site.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test("the shipped site's module exports none of the test hooks that the test site's has", () => {
  const HOOKS = ["test_hooks", "set_replay", "bench(settings_json", "bench_matmul", "wasm_memory_bytes"];
  const glue = (dir) => readFileSync(join(dir, "guided-ddpm.js"), "utf8");
  const test = glue(DIST);
  // The names are the test site's own, so their absence below means something.
  for (const name of HOOKS) assert.ok(test.includes(name), `the test site exports ${name}`);
  const shipped = glue(SHIPPED);
  assert.deepEqual(HOOKS.filter((name) => shipped.includes(name)), []);
  assert.ok(shipped.includes("class Demo"), "the shipped glue is the module's");
});

test("a broken weight file shows a plain-language error", { timeout: SLOW }, async () => {
  const broken = await serve(DIST, 0, { override: (p) => (/\/unet-[0-9a-f]+\.safetensors$/.test(p) ? { status: 200, body: Buffer.from("truncated") } : null) });
  const b = await open();
  try {
    await b.page.goto(broken.url);
    await b.page.waitForFunction(() => document.getElementById("status").classList.contains("error"), null, { timeout: SLOW });
    assert.match(await status(b.page), /weights could not be loaded: unet-[0-9a-f]+\.safetensors has 9 bytes, the manifest says \d+.*\. Reload the page to try again\.$/);
    // Nothing to run without weights: Generate stays off, and the page says so rather than
    // failing a press on the missing weights.
    assert.equal(await phase(b.page), "loading");
    assert.ok(await b.page.locator("#generate").isDisabled());
  } finally {
    await b.close();
    await broken.close();
  }
});

test("a corrupted cache entry is dropped and downloaded again", { timeout: SLOW }, async () => {
  const profile = mkdtempSync(join(tmpdir(), "guided-ddpm-page-"));
  const b = await open({ webgpu: false, profile });
  try {
    await ready(b.page, "?backend=cpu");
    // Overwrite the cached classifier with garbage under the same key.
    const keys = await b.page.evaluate(async () => {
      const cache = await caches.open("guided-ddpm-weights");
      const keys = (await cache.keys()).map((r) => r.url);
      const key = keys.find((u) => /\/classifier-[0-9a-f]+\.safetensors/.test(u));
      await cache.put(key, new Response(new Uint8Array([1, 2, 3])));
      return keys;
    });
    assert.equal(keys.length, 2, "both files were cached");
    // Changing a setting rewrites the URL; the forced CPU backend stays in it.
    await b.page.getByRole("radio", { name: "4" }).click();
    assert.match(b.page.url(), /class=4/);
    assert.match(b.page.url(), /backend=cpu/);
    await b.page.reload();
    await b.page.waitForSelector("body[data-ready=true]", { timeout: SLOW });
    assert.match(await b.page.locator("#capability").textContent(), /CPU fallback/);
    // The bad copy was dropped and a good one fetched again in its place (from the server, or
    // from the service worker's copy of this build once it has one: either is the file whole).
    const [cached, bytes] = await b.page.evaluate(async () => {
      const cache = await caches.open("guided-ddpm-weights");
      const key = (await cache.keys()).map((r) => r.url).find((u) => /\/classifier-[0-9a-f]+\.safetensors/.test(u));
      const manifest = await (await fetch("weights/manifest.json")).json();
      return [(await (await cache.match(key)).arrayBuffer()).byteLength, manifest.classifier.bytes];
    });
    assert.equal(cached, bytes, "the bad copy was replaced by the whole file");
    assert.deepEqual(b.errors, []);
  } finally {
    await b.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
