// The page's side of a guided step: how many WebGPU calls of each kind it issues, and how much of
// the thread that runs it takes. `make bench` (bench.mjs), `make profile` (profile.mjs) and
// kernels.mjs use it on the bench harness (harness.html, opened with `openHarness`): the site's
// module with one Demo on the page's main thread, where the DevTools protocol can time and
// profile it. (The site runs the same Demo in a worker.)
//
// Main-thread time comes from the DevTools protocol's Performance.getMetrics (`TaskDuration`: the
// seconds the renderer's main thread spent running tasks, script and wasm included), so time the
// thread spends waiting for the GPU process is not counted.

// The WebGPU methods counted, by kind. Wrapping a prototype method catches every call, because the
// wasm-bindgen glue looks methods up on the object at each call.
const COUNTED = [
  ["GPUComputePassEncoder", "dispatchWorkgroups", "dispatches"],
  ["GPUComputePassEncoder", "dispatchWorkgroupsIndirect", "dispatches"],
  ["GPUDevice", "createBindGroup", "bind_groups"],
  ["GPUQueue", "submit", "submits"],
  ["GPUQueue", "writeBuffer", "buffer_writes"],
  ["GPUDevice", "createBuffer", "buffer_creations"],
  ["GPUCommandEncoder", "beginComputePass", "compute_passes"],
  ["GPUCommandEncoder", "copyBufferToBuffer", "buffer_copies"],
  ["GPUBuffer", "mapAsync", "buffer_maps"],
];
export const KINDS = [...new Set(COUNTED.map(([, , k]) => k))];

// Opens the bench harness in `page` and waits for its Demo (WebGPU, or the CPU path with `cpu`)
// to be loaded and warmed up; returns its device ("WebGPU (adapter)" or "CPU fallback (...)").
export async function openHarness(page, server, { cpu = false } = {}) {
  await page.goto(`${server.url}harness.html${cpu ? "?backend=cpu" : ""}`);
  await page.waitForFunction(() => document.body.dataset.ready === "true" || document.body.dataset.error, null, { timeout: 30 * 60_000 });
  const error = await page.evaluate(() => document.body.dataset.error);
  if (error) throw new Error(`the bench harness failed: ${error}`);
  return page.evaluate(() => globalThis.guidedDdpm.demo.backend);
}

// The device the page chose, as its capability line names it ("WebGPU (adapter)" or "CPU
// fallback (...)"), without a forcing note.
export async function adapterLabel(page) {
  const line = await page.locator("#capability").textContent();
  return line.replace(/^Backend: /, "").split(" · ")[0].replace(/, as asked with .*$/, "");
}

// Starts a run of `total` steps at the default guidance and sampler (batch `batch` of `digit`) in
// the harness's Demo; on WebGPU the run replays one recorded step unless `replay` is false
// (Demo.set_replay).
export async function start(page, { batch, total, replay = true, digit = 7 }) {
  await page.evaluate(([batch, total, replay, digit]) => {
    const { Demo, demo } = globalThis.guidedDdpm;
    demo.set_replay(replay);
    const { guidance: g, run: { method } } = JSON.parse(Demo.starting());
    globalThis.__benchRun = demo.start(JSON.stringify({ classes: Array(batch).fill(digit), guidance: g, steps: total, method, seed: 1, schedule: "linear" }));
    demo.set_replay(true);
  }, [batch, total, replay, digit]);
}

// The seconds the page's main thread has spent running tasks so far (the DevTools protocol's
// `TaskDuration`), read through a session of its own: { seconds, detach }.
async function taskClock(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  return {
    seconds: async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value,
    detach: () => cdp.detach(),
  };
}

// Runs `n` steps of the run in progress, each read back as the page reads it; wall ms.
export function steps(page, n) {
  return page.evaluate(async (n) => {
    const { demo } = globalThis.guidedDdpm;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const f = await demo.step(globalThis.__benchRun);
      if (!f) throw new Error("the run ended early");
      f.x_t; f.x0; f.p; // the page reads all three
      f.free();
    }
    return performance.now() - t0;
  }, n);
}

// The WebGPU calls by kind that `run` (an async function) makes in `page`.
async function countCalls(page, run) {
  await page.evaluate((counted) => {
    const counts = (globalThis.__gpuCalls = {});
    for (const [cls, name, kind] of counted) {
      const proto = globalThis[cls]?.prototype;
      if (!proto?.[name] || proto[name].__counted) continue;
      const f = proto[name];
      proto[name] = function (...a) {
        counts[kind] = (counts[kind] ?? 0) + 1;
        return f.apply(this, a);
      };
      proto[name].__counted = f;
    }
  }, COUNTED);
  // Puts the methods back and returns the counts.
  const restore = () =>
    page.evaluate(([counted, kinds]) => {
      const c = globalThis.__gpuCalls;
      for (const [cls, name] of counted) {
        const proto = globalThis[cls]?.prototype;
        if (proto?.[name]?.__counted) proto[name] = proto[name].__counted;
      }
      return Object.fromEntries(kinds.map((k) => [k, c[k] ?? 0]));
    }, [COUNTED, KINDS]);
  try {
    await run();
  } catch (e) {
    await restore();
    throw e;
  }
  return restore();
}

// Per guided step: the page's main-thread ms and wall ms over `timed` steps after `warm` steps,
// then (in a second pass, so the counting wrappers cost nothing in the timing) the WebGPU calls by
// kind. `gpu` false skips the counts (the CPU path makes none). On WebGPU the first step of a run
// also records the step that later ones replay, so the warm-up step keeps it out of the timing;
// `replay` false measures every step run eagerly instead.
export async function hostCost(page, { batch = 1, warm = 1, timed = 3, counted = 2, gpu = true, replay = true } = {}) {
  const clock = await taskClock(page);
  await start(page, { batch, total: 100, replay });
  await steps(page, warm);
  const before = await clock.seconds();
  const wall = await steps(page, timed);
  const mainMs = ((await clock.seconds()) - before) * 1e3 / timed;
  let calls = null;
  if (gpu) {
    calls = await countCalls(page, () => steps(page, counted));
    for (const k of KINDS) calls[k] /= counted;
  }
  await page.evaluate(() => globalThis.guidedDdpm.demo.cancel());
  await clock.detach();
  return { batch, timed, replay: gpu && replay, main_ms_per_step: mainMs, wall_ms_per_step: wall / timed, calls, main_us_per_dispatch: calls?.dispatches ? (mainMs * 1e3) / calls.dispatches : null };
}

// The page's CPU profile over `n` guided steps (DevTools Profiler), as the top `top` functions by
// self time: [{ name, ms, share }] plus the total sampled ms. Needs a module that keeps its name
// section (`make profile` builds one) for wasm functions to have names.
export async function profileSteps(page, { batch = 1, warm = 1, n = 3, top = 15, replay = true } = {}) {
  const cdp = await page.context().newCDPSession(page);
  await start(page, { batch, total: 100, replay });
  await steps(page, warm);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  await steps(page, n);
  const { profile } = await cdp.send("Profiler.stop");
  await page.evaluate(() => globalThis.guidedDdpm.demo.cancel());
  await cdp.detach();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = (profile.timeDeltas[i] ?? 0) / 1e3;
    const name = node.callFrame.functionName || `(anonymous ${node.callFrame.url.split("/").pop()})`;
    if (name === "(idle)") return;
    busy += dt;
    self.set(name, (self.get(name) ?? 0) + dt);
  });
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, ms]) => ({ name, ms: ms / n, share: ms / busy }));
  return { steps: n, busy_ms_per_step: busy / n, top: rows };
}

// What a live steer costs on WebGPU (Demo.steer, src/replay.rs): a run at the default guidance
// and sampler (batch 1, class 3, 15 steps) takes a recorded step and a replay, is steered to
// `steer` ({ class, guidance }), and the step that takes the steer and the step after it are each
// timed (main-thread ms, TaskDuration) and counted (dispatches, bind groups). Timing and counting
// come from two runs, the same steps of each, so the wrappers cost nothing in the timing.
export async function steerCost(page, steer) {
  const clock = await taskClock(page);
  const begin = async () => {
    await start(page, { batch: 1, total: 15, digit: 3 });
    await steps(page, 2); // recorded, then replayed
    await page.evaluate((to) => globalThis.guidedDdpm.demo.steer(globalThis.__benchRun, JSON.stringify(to)), steer);
  };
  await begin();
  const ms = [];
  for (let i = 0; i < 2; i++) {
    const before = await clock.seconds();
    await steps(page, 1);
    ms.push(((await clock.seconds()) - before) * 1e3);
  }
  await page.evaluate(() => globalThis.guidedDdpm.demo.cancel());
  await begin();
  const calls = [];
  for (let i = 0; i < 2; i++) calls.push(await countCalls(page, () => steps(page, 1)));
  await page.evaluate(() => globalThis.guidedDdpm.demo.cancel());
  await clock.detach();
  return ms.map((m, i) => ({ main_ms: m, dispatches: calls[i].dispatches, bind_groups: calls[i].bind_groups }));
}
