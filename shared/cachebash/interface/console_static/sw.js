/* CacheBash console service worker.
 * - Keeps the app shell so the console starts offline (network first, cache as fallback, so a
 *   new deploy is picked up at once when online).
 * - Never touches the owner API (/v1/...) or the login link: those always go to the network.
 * - In firebase mode with push (registered as sw.js?push=1&firebase=<config>), loads the FCM
 *   SDK and shows notifications for background messages. Everything push is guarded, so the
 *   worker runs without the SDK.
 */

const CACHE = "cachebash-console-v1";
const SHELL = [
  "/console/",
  "/console/index.html",
  "/console/config.json",
  "/console/app.css",
  "/console/app.js",
  "/console/api.js",
  "/console/auth.js",
  "/console/dom.js",
  "/console/pages/inbox.js",
  "/console/pages/send.js",
  "/console/pages/tasks.js",
  "/console/pages/sprints.js",
  "/console/pages/agents.js",
  "/console/pages/keys.js",
  "/console/pages/usage.js",
  "/console/manifest.webmanifest",
  "/console/icon.svg",
  "/console/icon-192.png",
  "/console/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One missing file must not stop the worker from installing.
    await Promise.all(SHELL.map((url) => cache.add(new Request(url, { cache: "reload" })).catch(() => null)));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith("cachebash-console-") && n !== CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

function cacheable(url, request) {
  if (request.method !== "GET" || url.origin !== self.location.origin) return false;
  if (!url.pathname.startsWith("/console")) return false; // the owner API (/v1/owner/*) and MCP: never
  if (url.pathname.startsWith("/console/login")) return false; // one-time links set the cookie
  return true;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (!cacheable(url, request)) return; // the browser handles it, uncached
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = request.mode === "navigate" ? "/console/" : request;
    try {
      const response = await fetch(request);
      if (response.ok && response.type === "basic") cache.put(key, response.clone()).catch(() => {});
      return response;
    } catch (err) {
      const cached = await cache.match(key, { ignoreSearch: request.mode === "navigate" });
      if (cached) return cached;
      throw err;
    }
  })());
});

// ---------- push (firebase mode only) ----------

const params = new URL(self.location.href).searchParams;
let pushReady = false;

if (params.get("push") === "1") {
  try {
    importScripts("/console/vendor/firebase-app-compat.js", "/console/vendor/firebase-messaging-compat.js");
    const config = JSON.parse(params.get("firebase") || "null");
    if (config && self.firebase) {
      if (!self.firebase.apps.length) self.firebase.initializeApp(config);
      const messaging = self.firebase.messaging();
      messaging.onBackgroundMessage((payload) => {
        // A message with a `notification` part is shown by the SDK itself; show data-only ones.
        if (payload && payload.notification) return;
        const data = (payload && payload.data) || {};
        return self.registration.showNotification(data.title || "CacheBash", {
          body: data.body || data.message || "Something needs your attention.",
          icon: "/console/icon-192.png",
          badge: "/console/icon-192.png",
          tag: data.tag || data.taskId || data.messageId || "cachebash",
          data: { url: data.url || data.link || "/console/#/inbox" },
        });
      });
      pushReady = true;
    }
  } catch (err) {
    // No SDK (or bad config): the worker still caches the shell.
    pushReady = false;
  }
}

if (!pushReady) {
  // A plain Web Push (no SDK): show what it says, if anything.
  self.addEventListener("push", (event) => {
    let data = {};
    try { data = event.data ? event.data.json() : {}; } catch (_) { data = { body: event.data ? event.data.text() : "" }; }
    const note = data.notification || data;
    event.waitUntil(self.registration.showNotification(note.title || "CacheBash", {
      body: note.body || "Something needs your attention.",
      icon: "/console/icon-192.png",
      data: { url: (data.data && data.data.url) || data.url || "/console/#/inbox" },
    }));
  });
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const fcm = event.notification.data && event.notification.data.FCM_MSG;
  const raw = (event.notification.data && event.notification.data.url)
    || (fcm && fcm.notification && fcm.notification.click_action) || "/console/#/inbox";
  const target = new URL(raw, self.location.origin);
  const url = target.origin === self.location.origin ? target.href : new URL("/console/#/inbox", self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).pathname.startsWith("/console")) {
        await client.focus();
        if ("navigate" in client) { try { await client.navigate(url); } catch (_) { /* focused is enough */ } }
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});

// The page (or a test) may ask what this worker can do.
self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "status" && event.ports && event.ports[0]) {
    event.ports[0].postMessage({ cache: CACHE, push: pushReady });
  }
});
