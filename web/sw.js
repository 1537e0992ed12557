// megaqa service worker: keeps the app itself (html, js, wasm, css) so that a
// reload works offline. Network first, so a new build is picked up when online;
// the cache answers when the network does not. Models live in the page's own
// cache ("megaqa-models"), which this worker leaves alone.
const APP = "megaqa-app-v2";
const SHELL = [
  "./", "./index.html", "./megaqa-web.js", "./megaqa-web_bg.wasm", "./style.css",
  // The engine's Web Worker (trunk's loader shim, its glue and its wasm).
  "./megaqa-worker_loader.js", "./megaqa-worker.js", "./megaqa-worker_bg.wasm",
];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(APP).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
// An app shell of an earlier version (megaqa-app-v1 …) is dropped once this one is in.
self.addEventListener("activate", (e) =>
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("megaqa-app-") && k !== APP).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  )
);

self.addEventListener("fetch", (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.includes("/megaqa-local/") || url.pathname.endsWith(".safetensors") || url.pathname.endsWith(".nemo")) return;
  e.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(APP).then((c) => c.put(req, copy));
        }
        return res;
      })
      .catch(() =>
        caches.match(req, { ignoreSearch: true }).then((hit) => hit || Promise.reject(new Error("offline and not cached")))
      )
  );
});
