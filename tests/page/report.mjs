// Shared by bench.mjs and profile.mjs: which commit the numbers come from, and the generated
// section of docs/BENCHMARKS.md that each of them rewrites between its own markers.
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";

// "`abc1234`", with " (with uncommitted changes)" when tracked files differ from HEAD.
export function commitLabel() {
  const git = (...args) => execFileSync("git", args).toString().trim();
  const dirty = git("status", "--porcelain", "--untracked-files=no") ? " (with uncommitted changes)" : "";
  return `\`${git("rev-parse", "--short", "HEAD")}\`${dirty}`;
}

// Replaces the text from `begin` to `end` in the file at `path` with `section` (which carries both
// markers). The markers are found by their fixed part, up to the "(" that opens their note, so a
// reworded note still matches. Without them the section is appended, after `heading` if given;
// a missing file starts as "# Benchmarks".
export async function writeSection(path, begin, end, section, heading = "") {
  let doc;
  try {
    doc = await readFile(path, "utf8");
  } catch {
    doc = "# Benchmarks\n";
  }
  const a = doc.indexOf(begin.slice(0, begin.indexOf("(") + 1));
  const z = doc.indexOf(end);
  doc = a >= 0 && z > a ? doc.slice(0, a) + section + doc.slice(z + end.length) : `${doc.trimEnd()}\n\n${heading ? `${heading}\n\n` : ""}${section}\n`;
  await writeFile(path, doc);
}
