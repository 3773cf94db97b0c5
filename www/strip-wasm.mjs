// Trunk post-build hook (release builds): drops the custom sections of the wasm module that the
// browser never reads (`name`, the function names for stack traces, and `producers`), in place.
// They are metadata only, so the code is untouched. Measured in docs/BENCHMARKS.md.
//
// (binaryen's wasm-opt would shrink the module further, but Debian's version 108 breaks
// wasm-bindgen's externref table: "WebAssembly.Table.set(): Argument 1 is invalid for table".)
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

const DROP = new Set(["name", "producers"]);

// Reads an unsigned LEB128 at `i`: [value, next index].
function uleb(bytes, i) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[i++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, i];
  }
}

export function strip(bytes) {
  if (bytes.readUInt32LE(0) !== 0x6d736100) throw new Error("not a WebAssembly module");
  const keep = [bytes.subarray(0, 8)];
  let i = 8;
  while (i < bytes.length) {
    const start = i;
    const id = bytes[i++];
    const [size, body] = uleb(bytes, i);
    const end = body + size;
    let name = null;
    if (id === 0) {
      const [len, at] = uleb(bytes, body);
      name = bytes.subarray(at, at + len).toString("utf8");
    }
    if (!DROP.has(name)) keep.push(bytes.subarray(start, end));
    i = end;
  }
  return Buffer.concat(keep);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `make profile` keeps the names, so a CPU profile of the page names the wasm functions.
  if (process.env.TRUNK_PROFILE !== "release" || process.env.GUIDED_DDPM_KEEP_NAMES === "1") process.exit(0);
  const dir = process.env.TRUNK_STAGING_DIR;
  for (const file of (await readdir(dir)).filter((f) => f.endsWith("_bg.wasm"))) {
    const path = join(dir, file);
    const before = await readFile(path);
    const after = strip(before);
    await writeFile(path, after);
    console.error(`${file}: ${before.length} -> ${after.length} bytes (custom sections name, producers dropped)`);
  }
}
