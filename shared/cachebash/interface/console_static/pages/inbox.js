// Inbox: what agents asked the person, newest first, with an answer box on each open item.

import { live, post } from "../api.js";
import { busy, empty, errorBanner, h, keyedList, pill, refreshTimes, timeEl } from "../dom.js";

export function mount(root, { signal }) {
  const status = h("div", { class: "status-slot" });
  const summary = h("p", { class: "muted summary" }, "Loading…");
  const filterOpen = h("input", { type: "checkbox", name: "openOnly", testid: "inbox-open-only" });
  const list = h("div", { class: "inbox-list", testid: "inbox-list" });
  let last = null;

  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Inbox"),
      h("label", { class: "check" }, filterOpen, " Open only")),
    status, summary, list);

  const render = () => {
    if (!last) return;
    const items = filterOpen.checked ? last.items.filter((i) => i.open) : last.items;
    const open = last.openCount ?? last.items.filter((i) => i.open).length;
    summary.textContent = last.items.length
      ? `${open} open question${open === 1 ? "" : "s"} · ${last.items.length} item${last.items.length === 1 ? "" : "s"}`
      : "";
    keyedList(list, items, (i) => i.id, (item) => makeItem(item, refresh), (row, item) => updateItem(row, item, refresh));
    if (!items.length) {
      if (!list.querySelector(".empty")) list.append(empty(filterOpen.checked ? "No open questions." : "Nothing yet: when an agent asks you something, it shows up here."));
    } else {
      const e = list.querySelector(".empty");
      if (e) e.remove();
    }
  };
  filterOpen.addEventListener("change", render);

  const loop = live("/inbox", {
    signal,
    onData(body) { status.replaceChildren(); last = body; render(); },
    onError(err) { status.replaceChildren(errorBanner(err)); },
    onTick() { refreshTimes(root); },
  });
  const refresh = () => loop.refresh();
}

function kindLabel(item) {
  if (item.kind === "question") return "question";
  return (item.messageType || "message").toLowerCase();
}

function stateOf(item) {
  if (item.open) return pill("open", "open");
  if (item.answer != null || item.answeredAt) return pill("answered", "done");
  if (item.kind === "question" && item.status) return pill(item.status.replace(/_/g, " "), "muted");
  return pill("info", "muted");
}

function content(item) {
  const parts = [];
  parts.push(h("div", { class: "item-head" },
    h("strong", { class: "from" }, item.from || "?"),
    pill(kindLabel(item), item.kind === "question" ? "question" : "message"),
    item.priority && item.priority !== "normal" ? pill(item.priority, `prio-${item.priority}`) : null,
    stateOf(item),
    h("span", { class: "spacer" }),
    timeEl(item.createdAt)));
  if (item.thread && item.thread.length) {
    parts.push(h("details", { class: "thread", open: item.thread.length <= 3 },
      h("summary", {}, `Earlier in the thread (${item.thread.length})`),
      h("ol", {}, item.thread.map((m) => h("li", {},
        h("div", { class: "thread-meta" }, h("strong", {}, m.from || "?"),
          m.messageType ? ` · ${m.messageType}` : "", " · ", timeEl(m.createdAt)),
        h("div", { class: "text" }, m.text || ""))))));
  }
  if (item.title && item.title !== item.text) parts.push(h("h3", { class: "item-title" }, item.title));
  parts.push(h("div", { class: "text" }, item.text || ""));
  const meta = [];
  if (item.taskId) meta.push(h("a", { href: `#/tasks/${encodeURIComponent(item.taskId)}`, class: "task-link", testid: "inbox-task-link" }, `Task ${item.taskId}`));
  if (item.threadId && item.threadId !== item.taskId) meta.push(h("span", { class: "muted mono" }, `thread ${item.threadId}`));
  if (meta.length) parts.push(h("div", { class: "item-meta" }, meta));
  return parts;
}

function answered(item) {
  return h("div", { class: "answer-shown", testid: "answered" },
    h("div", { class: "answer-head" }, h("strong", {}, "Your answer"), item.answeredAt ? [" · ", timeEl(item.answeredAt)] : null),
    h("div", { class: "text" }, item.answer ?? "(answered)"));
}

function answerForm(item, refresh) {
  const input = h("textarea", {
    name: "answer", rows: 3, required: true, testid: "answer-input", placeholder: "Your answer…",
    "aria-label": `Answer to ${item.from}`,
  });
  const send = h("button", { type: "submit", class: "primary", testid: "answer-send" }, "Send answer");
  const result = h("div", { class: "form-result" });
  const form = h("form", { class: "answer-form" }, input, h("div", { class: "row gap" }, send, h("span", { class: "hint" }, "Ctrl+Enter sends")), result);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) { result.replaceChildren(errorBanner({ message: "Write an answer first.", field: "message" })); return; }
    result.replaceChildren();
    await busy(form, async () => {
      try {
        await post("/replies", { replyTo: item.id, message });
        input.value = "";
        result.replaceChildren(h("p", { class: "ok", role: "status" }, "Sent."));
        refresh();
      } catch (err) {
        result.replaceChildren(errorBanner(err));
      }
    });
  });
  return form;
}

function tail(item, refresh) {
  if (item.open) return answerForm(item, refresh);
  if (item.answer != null || item.answeredAt) return answered(item);
  return null;
}

function makeItem(item, refresh) {
  const body = h("div", { class: "item-body" }, content(item));
  const slot = h("div", { class: "item-tail" });
  const t = tail(item, refresh);
  if (t) slot.append(t);
  const row = h("article", { class: ["card", "inbox-item", item.open ? "is-open" : "is-closed"], testid: "inbox-item", dataset: { id: item.id, open: String(!!item.open) } }, body, slot);
  row._open = !!item.open;
  return row;
}

function updateItem(row, item, refresh) {
  // Replace what is shown, but keep the answer box (and what is typed in it) while the item stays open.
  const before = row.querySelector(".item-body details.thread");
  row.querySelector(".item-body").replaceChildren(...content(item));
  const after = row.querySelector(".item-body details.thread");
  if (before && after) after.open = before.open;
  row.className = ["card", "inbox-item", item.open ? "is-open" : "is-closed"].join(" ");
  row.dataset.open = String(!!item.open);
  if (row._open !== !!item.open || !item.open) {
    const slot = row.querySelector(".item-tail");
    const t = tail(item, refresh);
    slot.replaceChildren(...(t ? [t] : []));
  }
  row._open = !!item.open;
}
