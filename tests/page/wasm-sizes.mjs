// Where the wasm module's bytes are: code bytes per crate, from a module that keeps its name
// section (the one cargo writes before wasm-bindgen and the strip hook, e.g.
// target/wasm32-unknown-unknown/web/guided_ddpm.wasm after `make site`). The crate is the first
// path segment of each function's mangled name (for an `<impl ...>` its type's crate); gzip is
// of each crate's function bodies compressed apart, so the gzip column over-counts a little.
//
//   node wasm-sizes.mjs ../../target/wasm32-unknown-unknown/web/guided_ddpm.wasm [TOP]
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
const b = readFileSync(process.argv[2]);
function uleb(i) { let v = 0, s = 0; for (;;) { const x = b[i++]; v += (x & 0x7f) * 2 ** s; s += 7; if (x < 0x80) return [v, i]; } }
let i = 8, imports = 0, bodies = [], names = new Map();
while (i < b.length) {
  const id = b[i++]; const [size, body] = uleb(i); const end = body + size;
  if (id === 2) { // imports: count function imports
    let [n, j] = uleb(body);
    for (let k = 0; k < n; k++) {
      let [l1, a] = uleb(j); j = a + l1; let [l2, c] = uleb(j); j = c + l2;
      const kind = b[j++];
      if (kind === 0) { imports++; [, j] = uleb(j); }
      else if (kind === 1) { j++; const [fl, d] = uleb(j); j = d; [, j] = uleb(j); if (fl & 1) [, j] = uleb(j); }
      else if (kind === 2) { const [fl, d] = uleb(j); j = d; [, j] = uleb(j); if (fl & 1) [, j] = uleb(j); }
      else if (kind === 3) { j += 2; }
      else if (kind === 4) { j++; [, j] = uleb(j); }
    }
  } else if (id === 10) {
    let [n, j] = uleb(body);
    for (let k = 0; k < n; k++) { const [sz, s0] = uleb(j); bodies.push([s0, sz]); j = s0 + sz; }
  } else if (id === 0) {
    const [l, a] = uleb(body); const nm = b.subarray(a, a + l).toString();
    if (nm === "name") {
      let j = a + l;
      while (j < end) {
        const sub = b[j++]; const [ssz, sb] = uleb(j);
        if (sub === 1) { let [n, q] = uleb(sb); for (let k = 0; k < n; k++) { const [idx, q1] = uleb(q); const [nl, q2] = uleb(q1); names.set(idx, b.subarray(q2, q2 + nl).toString()); q = q2 + nl; } }
        j = sb + ssz;
      }
    }
  }
  i = end;
}
const crates = new Map();
let total = 0;
bodies.forEach(([s0, sz], k) => {
  const name = names.get(k + imports) ?? "?";
  // The crate: the first path segment of a demangled name, after any leading `<`.
  let crate = "?";
  const z = /^_ZN(\d+)/.exec(name);
  if (z) {
    let seg = name.slice(z[0].length, z[0].length + Number(z[1]));
    seg = seg.replace(/^_?\$LT\$/, "").replace(/^(\$RF\$|mut\$u20\$|\$u5b\$|\$BP\$)+/, "");
    crate = /^[A-Za-z_][A-Za-z0-9_]*/.exec(seg)?.[0] ?? seg.slice(0, 20);
  } else crate = /^[A-Za-z_$.][A-Za-z0-9_]*/.exec(name)?.[0] ?? "?";
  const e = crates.get(crate) ?? { raw: 0, n: 0, parts: [] };
  e.raw += sz; e.n++; e.parts.push(b.subarray(s0, s0 + sz)); crates.set(crate, e);
  total += sz;
});
const rows = [...crates].map(([c, e]) => [c, e.raw, e.n, gzipSync(Buffer.concat(e.parts), { level: 9 }).length]).sort((x, y) => y[1] - x[1]);
console.log(`code section: ${bodies.length} functions, ${(total / 1e6).toFixed(2)} MB; module ${(b.length / 1e6).toFixed(2)} MB`);
for (const [c, raw, n, gz] of rows.slice(0, Number(process.argv[3] ?? 25))) console.log(`${c.padEnd(28)} ${(raw / 1e6).toFixed(2).padStart(6)} MB ${String(n).padStart(6)} fns  gzip ${(gz / 1e6).toFixed(2)} MB`);
