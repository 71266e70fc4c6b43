// Small DOM helpers. API data only ever reaches the page as text (textContent / attributes);
// the one exception is `trustedSvg`, for the server-made charts and QR codes.

const PROPS = new Set(["value", "checked", "disabled", "selected", "open", "hidden", "required", "multiple",
  "readOnly", "htmlFor", "type"]);

/** h("div", {class: "x", testid: "y", onclick: fn}, "text", child, [more]) → an element. */
export function h(tag, attrs, ...children) {
  const el = tag === "svg" || tag === "path" ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "testid") el.setAttribute("data-testid", value);
    else if (key === "dataset") for (const [k, v] of Object.entries(value)) { if (v != null) el.dataset[k] = v; }
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Replace an element's children (skipping null / false, flattening arrays, strings as text). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false || child === "") continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Insert server-made SVG (charts, QR). Only ever called with `charts.*` and `qrSvg`. It is
 * parsed in a detached document and tidied before it joins the page: no scripts, event
 * handlers, foreign content or `style` attributes (the page's CSP forbids inline styles, so they
 * would only log errors), and a viewBox so it scales with its container. */
export function trustedSvg(container, svg) {
  container.replaceChildren();
  if (typeof svg !== "string" || !svg) return container;
  // Parsing applies the page's CSP already, so inline styles go before the markup is parsed.
  const markup = svg.replace(/\sstyle\s*=\s*("[^"]*"|'[^']*')/gi, "");
  const doc = new DOMParser().parseFromString(`<!doctype html><body>${markup}`, "text/html");
  for (const bad of doc.body.querySelectorAll("script, foreignObject, iframe, object, embed")) bad.remove();
  for (const el of doc.body.querySelectorAll("*")) {
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase();
      const value = attr.value.trim().toLowerCase();
      if (name.startsWith("on") || name === "style" || ((name === "href" || name === "xlink:href") && value.startsWith("javascript:"))) {
        el.removeAttribute(attr.name);
      }
    }
  }
  for (const root of doc.body.querySelectorAll("svg")) {
    const w = parseFloat(root.getAttribute("width"));
    const hgt = parseFloat(root.getAttribute("height"));
    if (!root.hasAttribute("viewBox") && w > 0 && hgt > 0) root.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  }
  container.append(...Array.from(doc.body.childNodes).map((n) => document.importNode(n, true)));
  return container;
}

/** Keep a list's elements keyed by id, so unchanged rows (and what is typed into them) survive a
 * re-render. `make(item)` builds a row, `update(row, item)` refreshes a changed one in place
 * (default: replace it; an update may also return a new row to put in its place). Rows are moved only when out of order, so focus is not lost. */
export function keyedList(container, items, keyOf, make, update) {
  const old = new Map();
  for (const child of Array.from(container.children)) {
    if (child.dataset && child.dataset.key !== undefined) old.set(child.dataset.key, child);
    else child.remove();
  }
  const wanted = [];
  for (const item of items) {
    const key = String(keyOf(item));
    const sig = JSON.stringify(item);
    let row = old.get(key);
    if (row) {
      old.delete(key);
      if (row._sig !== sig) {
        const fresh = update ? update(row, item) : make(item);
        if (fresh instanceof Node && fresh !== row) { row.replaceWith(fresh); row = fresh; }
      }
    } else {
      row = make(item);
    }
    row.dataset.key = key;
    row._sig = sig;
    wanted.push(row);
  }
  for (const row of old.values()) row.remove();
  wanted.forEach((row, i) => {
    if (container.children[i] !== row) container.insertBefore(row, container.children[i] || null);
  });
}

// ---------- formatting ----------

export function isoOf(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString();
}

export function relative(value, now = Date.now()) {
  if (!value) return "never";
  const t = new Date(value).getTime();
  if (Number.isNaN(t)) return String(value);
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  const fmt = (n, unit) => {
    const v = Math.round(n);
    const word = `${v} ${unit}${v === 1 ? "" : "s"}`;
    return s <= 0 ? `${word} ago` : `in ${word}`;
  };
  if (abs < 10) return s <= 0 ? "just now" : "in a few seconds";
  if (abs < 60) return fmt(abs, "second");
  if (abs < 3600) return fmt(abs / 60, "minute");
  if (abs < 86400) return fmt(abs / 3600, "hour");
  if (abs < 86400 * 45) return fmt(abs / 86400, "day");
  return new Date(t).toISOString().slice(0, 10);
}

/** <time> with relative text and the ISO time in its title; refreshed by `refreshTimes`. */
export function timeEl(value, prefix = "") {
  if (!value) return h("span", { class: "muted" }, prefix ? `${prefix}never` : "never");
  const iso = isoOf(value);
  const el = h("time", { datetime: iso, title: iso, dataset: { rel: value, prefix } }, prefix + relative(value));
  return el;
}

export function refreshTimes(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time[data-rel]")) {
    const text = (el.dataset.prefix || "") + relative(el.dataset.rel, now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** $1.23 (at least 2 decimals; up to 4 for values under a dollar). */
export function money(value) {
  const v = Number(value) || 0;
  if (v === 0) return "$0.00";
  if (Math.abs(v) >= 1) return `$${v.toFixed(2)}`;
  let text = v.toFixed(4);
  text = text.replace(/0{1,2}$/, "");
  return `$${text}`;
}

export function count(value) {
  const v = Number(value) || 0;
  return v.toLocaleString("en-US");
}

// ---------- common pieces ----------

export function errorText(err) {
  if (!err) return "";
  const message = err.message || String(err);
  return err.field ? `${message} (field: ${err.field})` : message;
}

export function errorBanner(err, extra) {
  return h("div", { class: "error", role: "alert", testid: "error" },
    h("strong", {}, err && err.code ? `${err.code}: ` : "Error: "),
    h("span", { class: "error-message" }, err && err.message ? err.message : String(err)),
    err && err.field ? h("span", { class: "error-field" }, ` (field: ${err.field})`) : null,
    extra || null);
}

export function pill(text, kind) {
  return h("span", { class: ["pill", kind ? `pill-${String(kind).replace(/[^a-z0-9_-]/gi, "")}` : ""] }, text);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

/** A labelled form field. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control,
    hint ? h("span", { class: "hint" }, hint) : null);
}

export function select(name, options, value, attrs = {}) {
  return h("select", { name, ...attrs }, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h("option", { value: v, selected: v === value }, label);
  }));
}

/** A button that asks first (the browser's confirm dialog), then runs `onYes`. */
export function confirmButton(label, question, onYes, attrs = {}) {
  const button = h("button", { type: "button", class: attrs.class || "ghost", testid: attrs.testid }, label);
  button.addEventListener("click", async () => {
    if (!window.confirm(question)) return;
    button.disabled = true;
    try { await onYes(); } finally { button.disabled = false; }
  });
  return button;
}

/** Disable a form's buttons while `work` runs (fields stay editable). */
export async function busy(form, work) {
  const buttons = Array.from(form.querySelectorAll("button")).filter((b) => !b.disabled);
  const submit = form.querySelector("button[type=submit]");
  if (submit) submit.setAttribute("aria-busy", "true");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    return await work();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    if (submit) submit.removeAttribute("aria-busy");
  }
}

export async function copyText(text, pre) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) { /* fall back to selecting the text */ }
  if (pre) {
    const range = document.createRange();
    range.selectNodeContents(pre);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { if (document.execCommand && document.execCommand("copy")) return true; } catch (_) { /* selected */ }
  }
  return false;
}
