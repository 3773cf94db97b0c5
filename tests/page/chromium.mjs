// How the page tests and the benchmark start Debian's headless Chromium (playwright-core).
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const BASE_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-gpu-sandbox"];
// WebGPU on SwiftShader, the CPU implementation that works on a machine without a GPU.
export const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader"];
// WebGPU on the machine's own GPU.
export const REAL_GPU_ARGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--ignore-gpu-blocklist"];
