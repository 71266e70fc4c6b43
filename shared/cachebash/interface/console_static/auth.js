// Firebase mode: load the vendored compat SDK, sign in (Google, or email/password against the
// Auth emulator), send the ID token with every request, and offer push notifications (FCM).
// Also registers the service worker in both modes.

import { configure, post } from "./api.js";
import { errorBanner, h } from "./dom.js";

const VENDOR = "/console/vendor";
let firebaseConfig = null;
let hooks = null;
let messagingAvailable = null; // null = not checked yet

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const existing = document.querySelector(`script[data-src="${src}"]`);
    if (existing) {
      if (existing.dataset.loaded) resolve();
      else { existing.addEventListener("load", () => resolve()); existing.addEventListener("error", () => reject(new Error(`could not load ${src}`))); }
      return;
    }
    const script = document.createElement("script");
    script.src = src;
    script.dataset.src = src;
    script.addEventListener("load", () => { script.dataset.loaded = "1"; resolve(); });
    script.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
    document.head.appendChild(script);
  });
}

async function exists(url) {
  try {
    const response = await fetch(url, { method: "HEAD", cache: "no-store" });
    return response.ok;
  } catch (_) {
    return false;
  }
}

export async function startFirebase(config, callbacks) {
  firebaseConfig = config;
  hooks = callbacks;
  if (!config.firebase) throw new Error("config.json says mode 'firebase' but has no firebase settings");
  await loadScript(`${VENDOR}/firebase-app-compat.js`);
  await loadScript(`${VENDOR}/firebase-auth-compat.js`);
  const fb = window.firebase;
  if (!fb.apps.length) fb.initializeApp(config.firebase);
  const authApi = fb.auth();
  if (config.authEmulator) authApi.useEmulator(config.authEmulator, { disableWarnings: true });
  configure({
    tokenSource: async () => {
      const user = authApi.currentUser;
      return user ? user.getIdToken() : null;
    },
  });
  // Fires on sign-in and sign-out only (token refreshes are onIdTokenChanged).
  authApi.onAuthStateChanged(async (user) => {
    if (user) {
      await callbacks.onUser(user);
      offerNotifications(config);
    } else {
      hideNotificationButton();
      callbacks.onNoUser();
    }
  });
}

export async function signOut() {
  if (window.firebase && window.firebase.auth) await window.firebase.auth().signOut();
}

export function showFirebaseSignIn(main, err) {
  const config = firebaseConfig || {};
  const status = h("div", { class: "signin-status", "aria-live": "polite" });
  const show = (e) => status.replaceChildren(e ? errorBanner(friendly(e)) : "");
  const google = h("button", { type: "button", class: "primary", testid: "signin-google" }, "Sign in with Google");
  google.addEventListener("click", async () => {
    show(null);
    try {
      const fb = window.firebase;
      await fb.auth().signInWithPopup(new fb.auth.GoogleAuthProvider());
    } catch (e) {
      show(e);
    }
  });
  let emailForm = null;
  if (config.authEmulator) {
    const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, testid: "signin-email" });
    const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true, minlength: 6, testid: "signin-password" });
    const create = h("button", { type: "button", class: "ghost", testid: "signin-create" }, "Create account");
    emailForm = h("form", { class: "card form", testid: "signin-form" },
      h("h2", {}, "Email and password"),
      h("p", { class: "muted small" }, `Auth emulator at ${config.authEmulator}`),
      h("label", { class: "field" }, h("span", { class: "field-label" }, "Email"), email),
      h("label", { class: "field" }, h("span", { class: "field-label" }, "Password"), password),
      h("div", { class: "row gap" }, h("button", { type: "submit", class: "primary", testid: "signin-submit" }, "Sign in"), create));
    emailForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      show(null);
      try {
        await window.firebase.auth().signInWithEmailAndPassword(email.value.trim(), password.value);
      } catch (e) {
        show(e);
      }
    });
    create.addEventListener("click", async () => {
      show(null);
      try {
        await window.firebase.auth().createUserWithEmailAndPassword(email.value.trim(), password.value);
      } catch (e) {
        show(e);
      }
    });
  }
  const current = window.firebase && window.firebase.auth ? window.firebase.auth().currentUser : null;
  let refused = null;
  if (current) {
    // Signed in to Firebase, but the server said no (e.g. an expired or foreign token).
    const retry = h("button", { type: "button", class: "primary small", testid: "signin-retry" }, "Try again");
    const out = h("button", { type: "button", class: "ghost small", testid: "signin-switch" }, "Use another account");
    retry.addEventListener("click", () => hooks && hooks.onUser(current));
    out.addEventListener("click", () => signOut());
    refused = h("div", { class: "card" },
      h("p", {}, `Signed in as ${current.email || current.uid}, but the server did not accept it.`),
      h("div", { class: "row gap" }, retry, out));
  }
  main.replaceChildren(h("section", { class: "page signin", testid: "signed-out" },
    h("h1", {}, "Sign in to the console"),
    h("p", {}, "Sign in with the Google account that owns this CacheBash project."),
    err && err.message ? h("p", { class: "muted small" }, `(${err.message})`) : null,
    refused,
    h("div", { class: "row" }, google),
    emailForm,
    status));
}

function friendly(e) {
  return { code: e && e.code ? e.code : "SIGN_IN", message: (e && e.message) || String(e) };
}

// ---------- notifications (firebase mode + vapidKey) ----------

function notificationButton() { return document.getElementById("enable-notifications"); }
function offerBox() { return document.getElementById("push-offer"); }
function hideNotificationButton() { const box = offerBox(); if (box) box.hidden = true; }

async function offerNotifications(config) {
  if (!config.vapidKey || !("serviceWorker" in navigator) || !("Notification" in window)) return;
  if (messagingAvailable === null) messagingAvailable = await exists(`${VENDOR}/firebase-messaging-compat.js`);
  if (!messagingAvailable) return;
  const button = notificationButton();
  if (Notification.permission === "granted") {
    // Already allowed: refresh the token quietly (tokens rotate).
    enableNotifications(config, { quiet: true }).catch(() => {});
    return;
  }
  if (Notification.permission === "denied") return;
  if (sessionStorage.getItem("cb-push-later")) return;
  offerBox().hidden = false;
  if (!button.dataset.wired) {
    button.dataset.wired = "1";
    button.addEventListener("click", () => enableNotifications(config, { quiet: false }));
    document.getElementById("push-later").addEventListener("click", () => {
      sessionStorage.setItem("cb-push-later", "1");
      hideNotificationButton();
    });
  }
}

async function enableNotifications(config, { quiet }) {
  const button = notificationButton();
  if (!quiet) button.disabled = true;
  try {
    if (!quiet) {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error(`notifications are ${permission} in this browser`);
    }
    await loadScript(`${VENDOR}/firebase-messaging-compat.js`);
    const registration = await registerServiceWorker(config);
    if (!registration) throw new Error("the service worker could not be registered");
    await navigator.serviceWorker.ready;
    const token = await window.firebase.messaging().getToken({ vapidKey: config.vapidKey, serviceWorkerRegistration: registration });
    if (!token) throw new Error("no push token was issued");
    await post("/devices", { token, platform: "web" });
    hideNotificationButton();
    if (!quiet && hooks) hooks.setNotice(h("div", { class: "ok", role: "status" }, "Notifications are on for this browser."));
  } catch (e) {
    if (!quiet && hooks) hooks.setNotice(errorBanner(friendly(e)));
  } finally {
    button.disabled = false;
  }
}

// ---------- service worker ----------

let swPromise = null;

/** Register /console/sw.js once. In firebase mode with push, the worker is told (in its URL)
 * to load the messaging SDK with the project's settings. */
export function registerServiceWorker(config) {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return Promise.resolve(null);
  if (swPromise) return swPromise;
  swPromise = (async () => {
    let url = "/console/sw.js";
    if (config && config.mode === "firebase" && config.vapidKey && config.firebase) {
      if (messagingAvailable === null) messagingAvailable = await exists(`${VENDOR}/firebase-messaging-compat.js`);
      if (messagingAvailable) url += `?push=1&firebase=${encodeURIComponent(JSON.stringify(config.firebase))}`;
    }
    try {
      return await navigator.serviceWorker.register(url, { scope: "/console/" });
    } catch (_) {
      return null;
    }
  })();
  return swPromise;
}
