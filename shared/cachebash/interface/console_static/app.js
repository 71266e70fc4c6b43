// The CacheBash console: start-up (config → sign-in → session), the hash router, the header's
// open-question badge, and the service worker. Each page is a module in pages/ exporting
// mount(root, ctx); ctx.signal aborts when the person navigates away.

import { ApiError, configure, get, live, post, setCsrf } from "./api.js";
import { errorBanner, h } from "./dom.js";
import * as auth from "./auth.js";
import * as inbox from "./pages/inbox.js";
import * as send from "./pages/send.js";
import * as tasks from "./pages/tasks.js";
import * as sprints from "./pages/sprints.js";
import * as agents from "./pages/agents.js";
import * as keys from "./pages/keys.js";
import * as usage from "./pages/usage.js";

const ROUTES = [
  [/^\/inbox$/, "inbox", inbox.mount],
  [/^\/send$/, "send", send.mount],
  [/^\/tasks$/, "tasks", tasks.mountBoard],
  [/^\/tasks\/([^/]+)$/, "tasks", tasks.mountDetail],
  [/^\/sprints$/, "sprints", sprints.mountList],
  [/^\/sprints\/([^/]+)$/, "sprints", sprints.mountDetail],
  [/^\/agents$/, "agents", agents.mount],
  [/^\/keys$/, "keys", keys.mount],
  [/^\/usage$/, "usage", usage.mount],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const notice = document.getElementById("notice");
const badge = document.querySelector("[data-testid=open-count]");
const signOutButton = document.getElementById("sign-out");

const app = {
  config: null,
  signedIn: false,
  page: null, // AbortController of the page on screen
  counts: null, // AbortController of the badge loop
};

function setNotice(node) {
  notice.replaceChildren(...(node ? [node] : []));
}

// ---------- routing ----------

function parseHash() {
  const raw = (location.hash || "").replace(/^#/, "");
  const [path, query = ""] = raw.split("?");
  let decoded = path;
  try { decoded = decodeURIComponent(path); } catch (_) { /* keep it as typed */ }
  return { path: decoded || "/", query: new URLSearchParams(query) };
}

function route() {
  if (!app.signedIn) return;
  const { path, query } = parseHash();
  const found = ROUTES.find(([re]) => re.test(path));
  if (!found) {
    location.replace("#/inbox");
    return;
  }
  const [re, name, mount] = found;
  const params = path.match(re).slice(1);
  if (app.page) app.page.abort();
  app.page = new AbortController();
  for (const link of nav.querySelectorAll("a[data-page]")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.page = name;
  const root = h("div", { class: "page", "data-page": name });
  main.replaceChildren(root);
  window.scrollTo(0, 0);
  try {
    mount(root, { signal: app.page.signal, params, query, config: app.config, navigate });
  } catch (err) {
    root.replaceChildren(errorBanner(err));
    console.error(err); // eslint-disable-line no-console
  }
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

window.addEventListener("hashchange", route);

// ---------- the badge ----------

function startCounts() {
  if (app.counts) app.counts.abort();
  app.counts = new AbortController();
  live("/counts", {
    signal: app.counts.signal,
    onData(body) {
      const n = Number(body.openQuestions) || 0;
      badge.textContent = String(n);
      badge.classList.toggle("badge-zero", n === 0);
      document.title = n ? `(${n}) CacheBash console` : "CacheBash console";
      if (navigator.setAppBadge) navigator.setAppBadge(n).catch(() => {});
    },
  });
}

// ---------- signed in / out ----------

function showSignedIn() {
  app.signedIn = true;
  nav.hidden = false;
  signOutButton.hidden = false;
  document.body.classList.add("signed-in");
  setNotice(null);
  startCounts();
  route();
}

function stopAll() {
  app.signedIn = false;
  if (app.page) app.page.abort();
  if (app.counts) app.counts.abort();
  app.page = null;
  nav.hidden = true;
  signOutButton.hidden = true;
  document.body.classList.remove("signed-in");
  badge.textContent = "0";
}

function showEmbeddedSignedOut(err) {
  stopAll();
  main.replaceChildren(h("section", { class: "page signin", testid: "signed-out" },
    h("h1", {}, "Sign in to the console"),
    h("p", {}, "Open the console link printed by ", h("code", {}, "make serve"), ", or run ",
      h("code", {}, ".venv/bin/cachebash console"), " for a fresh one."),
    h("p", { class: "muted" }, "Each link works once and signs this browser in."),
    err && err.message ? h("p", { class: "muted small" }, `(${err.message})`) : null));
}

function onSignedOut(err) {
  if (!app.config) return;
  if (app.config.mode === "firebase") {
    stopAll();
    auth.showFirebaseSignIn(main, err);
  } else {
    showEmbeddedSignedOut(err);
  }
}

async function openSession() {
  try {
    const session = await get("/session", { quiet401: true });
    setCsrf(session.csrf);
    showSignedIn();
    return session;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      onSignedOut(err);
    } else {
      // Offline or the server is down: say so and try again shortly.
      stopAll();
      main.replaceChildren(h("section", { class: "page" }, errorBanner(err),
        h("p", { class: "muted" }, "Trying again…")));
      setTimeout(openSession, 3000);
    }
    return null;
  }
}

signOutButton.addEventListener("click", async () => {
  signOutButton.disabled = true;
  try {
    if (app.config.mode === "firebase") {
      await auth.signOut();
    } else {
      try { await post("/logout", {}); } catch (_) { /* signed out either way */ }
      setCsrf(null);
      showEmbeddedSignedOut(null);
    }
  } finally {
    signOutButton.disabled = false;
  }
});

document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

// ---------- start ----------

async function loadConfig() {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch("/console/config.json", { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
      return await response.json();
    } catch (err) {
      main.replaceChildren(h("section", { class: "page" },
        errorBanner({ message: `Cannot load the console's configuration (${err.message}).` }),
        h("p", { class: "muted" }, "Trying again…")));
      await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 15000)));
    }
  }
}

async function start() {
  app.config = await loadConfig();
  configure({ base: app.config.apiBase || "/v1/owner", mode: app.config.mode, onSignedOut });
  if (app.config.mode === "firebase") {
    try {
      await auth.startFirebase(app.config, {
        main,
        onUser: async () => { await openSession(); },
        onNoUser: () => { stopAll(); auth.showFirebaseSignIn(main, null); },
        setNotice,
      });
    } catch (err) {
      main.replaceChildren(h("section", { class: "page" }, errorBanner(err)));
    }
  } else {
    await openSession();
  }
  auth.registerServiceWorker(app.config);
}

start();
