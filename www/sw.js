// guided-ddpm's service worker: the page, its module and its weights offline, one build at a time.
//
// BUILD and FILES are written into dist/sw.js by www/build-version.mjs (a trunk post-build hook):
// FILES is every file of the site, BUILD a hash of their contents. Each build's files live in a
// cache of their own (`guided-ddpm-site-<BUILD>`), filled whole when this worker installs, and
// every request for one of them is answered from that cache: a page never mixes one build's
// module with another's weights. A new deploy changes BUILD, so the browser installs the new
// worker beside the old one; it waits until the page asks it to take over (the page's "use it
// now", which reloads) or every tab of the site is closed, and then drops the older caches.

const BUILD = "dev";
const FILES = [];
const CACHE = `guided-ddpm-site-${BUILD}`;
const PREFIX = "guided-ddpm-site-";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(["./", ...FILES])));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data === "take-over") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    // The page under any query (its settings live there) is the one page; a file is itself, and a
    // file whose URL carries a query (the weights' `?sha256=` keys) is the file.
    const hit = request.mode === "navigate"
      ? await cache.match("./", { ignoreSearch: true })
      : (await cache.match(request)) ?? (await cache.match(request, { ignoreSearch: true }));
    return hit ?? fetch(request);
  })());
});
