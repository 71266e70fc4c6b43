// Keys: the tenant's API keys (revoke, rotate) and a form to create one. A new key is shown
// once, with ready-to-paste client configs and a QR code, until "Done — I saved it".

import { del, live, post } from "../api.js";
import {
  busy, confirmButton, copyText, empty, errorBanner, field, h, keyedList, pill, refreshTimes, timeEl, trustedSvg,
} from "../dom.js";

export function mount(root, { signal }) {
  const status = h("div", { class: "status-slot" });
  const panelSlot = h("div", { class: "new-key-slot" });
  const actionResult = h("div", { class: "form-result" });
  const list = h("div", { class: "key-list", testid: "key-list" });

  const programId = h("input", { name: "programId", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", placeholder: "e.g. builder", testid: "key-program" });
  const label = h("input", { name: "label", autocomplete: "off", placeholder: "e.g. laptop", testid: "key-label" });
  const groups = h("input", { name: "groups", autocomplete: "off", autocapitalize: "off", placeholder: "e.g. builders, reviewers", testid: "key-groups" });
  const admin = h("input", { type: "checkbox", name: "admin", testid: "key-admin" });
  const createResult = h("div", { class: "form-result" });
  const form = h("form", { class: "card form", testid: "key-create-form", novalidate: true },
    h("h2", {}, "New key"),
    h("p", { class: "muted small" }, "One key per agent. The program id is who the agent is; groups let you address several at once."),
    h("div", { class: "grid2" }, field("Program id", programId), field("Label", label)),
    field("Groups", groups, "comma-separated"),
    h("label", { class: "check" }, admin, " Admin (may manage other programs' work)"),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", testid: "key-create" }, "Create key")),
    createResult);

  const toForm = h("button", { type: "button", class: "ghost small", testid: "key-new" }, "New key");
  toForm.addEventListener("click", () => { form.scrollIntoView({ behavior: "smooth", block: "start" }); programId.focus({ preventScroll: true }); });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Keys"), toForm), status, panelSlot,
    h("div", { class: "keys-layout" }, h("section", { class: "keys-main" }, h("h2", { class: "section-title" }, "All keys"), actionResult, list), form));

  const showKey = (created, heading) => {
    panelSlot.replaceChildren(newKeyPanel(created, heading, () => panelSlot.replaceChildren()));
    panelSlot.scrollIntoView({ behavior: "smooth", block: "start" });
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    createResult.replaceChildren();
    const body = { programId: programId.value.trim() };
    if (!body.programId) { createResult.replaceChildren(errorBanner({ message: "Give the program id.", field: "programId" })); return; }
    if (label.value.trim()) body.label = label.value.trim();
    const g = groups.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (g.length) body.groups = g;
    body.admin = admin.checked;
    await busy(form, async () => {
      try {
        const created = await post("/keys", body);
        form.reset();
        showKey(created, `New key for ${created.programId || body.programId}`);
        loop.refresh();
      } catch (err) {
        createResult.replaceChildren(errorBanner(err));
      }
    });
  });

  const actions = {
    async revoke(k) {
      actionResult.replaceChildren();
      try {
        await del(`/keys/${encodeURIComponent(k.keyId)}`);
        actionResult.replaceChildren(h("p", { class: "ok", role: "status" }, `Revoked ${k.label || k.keyId}.`));
      } catch (err) { actionResult.replaceChildren(errorBanner(err)); }
      loop.refresh();
    },
    async rotate(k) {
      actionResult.replaceChildren();
      try {
        const created = await post(`/keys/${encodeURIComponent(k.keyId)}/rotate`, {});
        showKey(created, `New key for ${created.programId || k.programId} (the old one is revoked)`);
      } catch (err) { actionResult.replaceChildren(errorBanner(err)); }
      loop.refresh();
    },
  };

  const loop = live("/keys", {
    signal,
    onData(body) {
      status.replaceChildren();
      const keys = (body.keys || []).slice().sort((a, b) =>
        (b.active === false ? 0 : 1) - (a.active === false ? 0 : 1) || String(a.programId).localeCompare(String(b.programId))
        || String(b.createdAt || "").localeCompare(String(a.createdAt || "")));
      keyedList(list, keys, (k) => k.keyId, (k) => keyRow(k, actions));
      const e = list.querySelector(".empty");
      if (!keys.length && !e) list.append(empty("No keys yet."));
      else if (keys.length && e) e.remove();
    },
    onError(err) { status.replaceChildren(errorBanner(err)); },
    onTick() { refreshTimes(root); },
  });
}

function keyRow(k, actions) {
  const active = k.active !== false && !k.revokedAt;
  return h("article", { class: ["card", "key-row", active ? "" : "is-revoked"], testid: "key-row", dataset: { id: k.keyId, active: String(active) } },
    h("div", { class: "row-head" },
      h("strong", { class: "mono" }, k.programId),
      k.label ? h("span", {}, k.label) : null,
      active ? pill("active", "done") : pill("revoked", "dead"),
      k.admin ? pill("admin", "prio-high") : null),
    h("dl", { class: "kv compact" },
      h("dt", {}, "Key id"), h("dd", { class: "mono" }, k.keyId),
      h("dt", {}, "Created"), h("dd", {}, timeEl(k.createdAt)),
      h("dt", {}, "Last used"), h("dd", {}, timeEl(k.lastUsedAt)),
      k.revokedAt ? [h("dt", {}, "Revoked"), h("dd", {}, timeEl(k.revokedAt))] : null),
    active ? h("div", { class: "row gap actions" },
      confirmButton("Rotate", `Make a new key for ${k.programId} and revoke this one?`, () => actions.rotate(k), { class: "ghost small", testid: "key-rotate" }),
      confirmButton("Revoke", `Revoke this key of ${k.programId}? Its agent loses access at once.`, () => actions.revoke(k), { class: "danger small", testid: "key-revoke" }))
      : null);
}

function copyBlock(title, text) {
  const pre = h("pre", { class: "copyable" }, text);
  const note = h("span", { class: "small muted copy-note", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "ghost small", testid: "copy-button" }, "Copy");
  button.addEventListener("click", async () => {
    const ok = await copyText(text, pre);
    note.textContent = ok ? "Copied." : "Selected: press Ctrl+C / ⌘C to copy.";
  });
  return h("div", { class: "config-block" },
    h("div", { class: "row-head" }, h("h3", {}, title), h("span", { class: "spacer" }), note, button), pre);
}

function newKeyPanel(created, heading, onDone) {
  const keyValue = h("code", { class: "key-value", testid: "new-key-value" }, created.apiKey || "");
  const keyPre = h("pre", { class: "copyable key-pre" }, keyValue);
  const keyNote = h("span", { class: "small muted copy-note", "aria-live": "polite" });
  const keyCopy = h("button", { type: "button", class: "primary small", testid: "copy-button" }, "Copy key");
  keyCopy.addEventListener("click", async () => {
    const ok = await copyText(created.apiKey || "", keyPre);
    keyNote.textContent = ok ? "Copied." : "Selected: press Ctrl+C / ⌘C to copy.";
  });
  const done = h("button", { type: "button", class: "primary", testid: "new-key-done" }, "Done — I saved it");
  done.addEventListener("click", onDone);
  const qr = created.qrSvg ? trustedSvg(h("div", { class: "qr", testid: "qr", role: "img", "aria-label": "QR code of the .mcp.json config" }), created.qrSvg) : null;
  return h("section", { class: "card new-key", testid: "new-key", role: "region", "aria-label": "New key" },
    h("h2", {}, heading),
    h("p", { class: "warn" }, "This key is shown only now. Copy it (or a config below) before you leave this page."),
    h("div", { class: "row-head" }, h("h3", {}, "API key"), h("span", { class: "spacer" }), keyNote, keyCopy),
    keyPre,
    h("dl", { class: "kv compact" },
      created.keyId ? [h("dt", {}, "Key id"), h("dd", { class: "mono" }, created.keyId)] : null,
      created.programId ? [h("dt", {}, "Program"), h("dd", { class: "mono" }, created.programId)] : null,
      created.groups && created.groups.length ? [h("dt", {}, "Groups"), h("dd", {}, created.groups.join(", "))] : null,
      created.mcpUrl ? [h("dt", {}, "MCP URL"), h("dd", { class: "mono" }, created.mcpUrl)] : null),
    h("div", { class: "new-key-grid" },
      h("div", { class: "configs" }, (created.configs || []).map((c) => copyBlock(c.client, c.text))),
      qr ? h("div", { class: "qr-wrap" }, h("h3", {}, "Scan (.mcp.json)"), qr) : null),
    h("div", { class: "row" }, done));
}
