// Which kernels one replayed guided step launches on WebGPU, by name: the label cubecl gives each
// compute pipeline is its kernel's entry point, so wrapping `setPipeline` names every launch.
// Kernels of one kind (`kernel_binop_c_f32_n_4_37d47ab0`, `kernel_binop_c_f32_n_1_9616b919`)
// are grouped under their stem (`kernel_binop`). Prints a table; where the count of a default
// step goes is what this is for (docs/BENCHMARKS.md).
//
//   node kernels.mjs [DIST] [BATCH]      DIST: a built site with the test hooks (default ../../target/test-site), BATCH: 1
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";
import { CHROMIUM, BASE_ARGS, WEBGPU_ARGS } from "./chromium.mjs";
import { openHarness, start, steps } from "./host.mjs";

const [dist = "../../target/test-site", batch = "1"] = process.argv.slice(2);
const server = await serve(dist);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
try {
  const page = await (await browser.newContext()).newPage();
  const device = await openHarness(page, server);
  if (!(await page.evaluate(() => globalThis.guidedDdpm.demo.gpu))) throw new Error(`the harness is not on WebGPU: ${device}`);
  await start(page, { batch: Number(batch), total: 100 });
  // The first step records the one that later steps replay.
  await steps(page, 2);
  await page.evaluate(() => {
    const counts = (globalThis.__pipelines = {});
    const proto = GPUComputePassEncoder.prototype;
    const setPipeline = proto.setPipeline;
    proto.setPipeline = function (pipeline) {
      counts[pipeline.label] = (counts[pipeline.label] ?? 0) + 1;
      return setPipeline.call(this, pipeline);
    };
    proto.setPipeline.__counted = setPipeline;
  });
  try {
    await steps(page, 1);
  } finally {
    await page.evaluate(() => {
      const proto = GPUComputePassEncoder.prototype;
      proto.setPipeline = proto.setPipeline.__counted;
      globalThis.guidedDdpm.demo.cancel();
    });
  }
  const labels = await page.evaluate(() => globalThis.__pipelines);
  const stems = new Map();
  for (const [label, n] of Object.entries(labels)) {
    // The stem: the name before its first type/size parameter (`_c_f32...`, `_in_f32...`).
    const stem = label.replace(/_[0-9a-f]{8}$/, "").replace(/_(c|e|t|f|i|in|out|nin|n|lhs|size)_.*$/, "");
    stems.set(stem, (stems.get(stem) ?? 0) + n);
  }
  const total = [...stems.values()].reduce((a, b) => a + b, 0);
  console.log(`| kernel | launches per replayed step (batch ${batch}, default guidance) |\n|---|---:|`);
  for (const [stem, n] of [...stems].sort((a, b) => b[1] - a[1])) console.log(`| \`${stem}\` | ${n} |`);
  console.log(`| **all** (pipelines set) | **${total}** |`);
} finally {
  await browser.close();
  await server.close();
}
