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

export async function serve(root, port = 0, { override } = {}) {
  const base = resolve(root);
  const hits = new Map();
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    hits.set(path, (hits.get(path) ?? 0) + 1);
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
  return { url: `http://127.0.0.1:${server.address().port}/`, hits, close: () => new Promise((ok) => server.close(ok)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await serve(process.argv[2] ?? "dist", Number(process.argv[3] ?? 8080));
  console.log(`serving ${process.argv[2] ?? "dist"} at ${s.url}`);
}
