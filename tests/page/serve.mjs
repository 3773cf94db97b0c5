// A minimal static file server for the built site (dist/), on loopback only. It counts requests
// per path so the tests can tell a cached reload from a download, and serves the bench harness
// (harness.html, from this folder) at /harness.html beside the site. Also runnable on its own:
// `node tests/page/serve.mjs dist 8080`.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";

const HARNESS = join(import.meta.dirname, "harness.html");

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
  ".wasm": "application/wasm", ".json": "application/json", ".png": "image/png",
  ".safetensors": "application/octet-stream", ".md": "text/markdown",
};

// `prefix` serves the site under a sub-path ("/guided-ddpm/"), as a project page on a static host
// is: only paths under it are the site's, and the sub-path without its slash redirects to it.
export async function serve(root, port = 0, { override, prefix = "/" } = {}) {
  const base = resolve(root);
  const hits = new Map();
  const server = createServer(async (req, res) => {
    const full = decodeURIComponent(new URL(req.url, "http://x").pathname);
    hits.set(full, (hits.get(full) ?? 0) + 1);
    if (prefix !== "/" && full === prefix.slice(0, -1)) {
      res.writeHead(301, { location: prefix }).end();
      return;
    }
    if (!full.startsWith(prefix)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const path = `/${full.slice(prefix.length)}`;
    const custom = override?.(path);
    if (custom) {
      res.writeHead(custom.status, { "content-type": "application/octet-stream" });
      res.end(custom.body);
      return;
    }
    let file = path === "/harness.html" ? HARNESS : normalize(join(base, path));
    if (file !== HARNESS && !file.startsWith(base)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": body.length });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${server.address().port}${prefix}`, hits, close: () => new Promise((ok) => server.close(ok)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await serve(process.argv[2] ?? "dist", Number(process.argv[3] ?? 8080));
  console.log(`serving ${process.argv[2] ?? "dist"} at ${s.url}`);
}
