// Trunk post-build hook: writes the build's file list and content hash into dist/sw.js (BUILD and
// FILES, see www/sw.js), so that each build is cached whole and a new deploy replaces the old one.
// Runs after www/strip-wasm.mjs, so the hash is of the files served.
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";

const SW = "sw.js";

async function files(dir, root = dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(path, root)));
    else out.push(relative(root, path).split(sep).join("/"));
  }
  return out;
}

// The site's files but the service worker itself (the browser fetches it on its own terms),
// sorted, and the hash of their names and contents: the same files give the same BUILD.
export async function version(dir) {
  const list = (await files(dir)).filter((f) => f !== SW).sort();
  const hash = createHash("sha256");
  for (const f of list) {
    hash.update(`${f}\0`);
    hash.update(await readFile(join(dir, f)));
    hash.update("\0");
  }
  return { build: hash.digest("hex").slice(0, 16), list };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.env.TRUNK_STAGING_DIR;
  const { build, list } = await version(dir);
  const path = join(dir, SW);
  const source = await readFile(path, "utf8");
  const out = source
    .replace(/^const BUILD = "dev";$/m, `const BUILD = ${JSON.stringify(build)};`)
    .replace(/^const FILES = \[\];$/m, `const FILES = ${JSON.stringify(list)};`);
  if (out === source) throw new Error(`${SW}: no BUILD and FILES lines to fill in`);
  await writeFile(path, out);
  console.error(`${SW}: build ${build}, ${list.length} files`);
}
