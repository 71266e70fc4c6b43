// Tasks: the board (queued / active / done / dead, filtered through the query string of
// GET /tasks) and one task in full, with the moves the API allows now.

import { get, live, post, withQuery } from "../api.js";
import {
  busy, confirmButton, count, empty, errorBanner, field, fill, h, keyedList, money, pill, refreshTimes, select, timeEl,
} from "../dom.js";

const COLUMNS = [
  ["queued", "Queued"],
  ["active", "Active"],
  ["done", "Done"],
  ["dead", "Dead"],
];
const PHASE = {
  created: "queued",
  claimed: "active", in_progress: "active",
  completed: "done", failed: "done", cancelled: "done", skipped: "done", expired: "done",
  dead: "dead",
};
const TYPES = ["", "task", "question", "dream", "sprint", "sprint-story"];
const PRIORITIES = ["", "high", "normal", "low"];

// Filters survive a visit to a task page and back.
const filters = { target: "", program: "", type: "", priority: "", q: "" };

export function phaseOf(status) { return PHASE[status] || "queued"; }

function progressBar(value, label) {
  const v = Math.max(0, Math.min(100, Number(value) || 0));
  const fill = h("div", { class: "bar-fill" });
  fill.style.setProperty("width", `${v}%`);
  return h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": v, "aria-label": label || "progress" }, fill);
}

export { progressBar };

// ---------- board ----------

export function mountBoard(root, { signal, query }) {
  for (const key of Object.keys(filters)) if (query && query.has(key)) filters[key] = query.get(key) || "";
  const status = h("div", { class: "status-slot" });
  const targets = h("datalist", { id: "task-targets" });
  const fTarget = h("input", { name: "target", list: "task-targets", value: filters.target, placeholder: "any", autocomplete: "off", autocapitalize: "off", testid: "filter-target" });
  const fProgram = h("input", { name: "program", list: "task-targets", value: filters.program, placeholder: "any", autocomplete: "off", autocapitalize: "off", testid: "filter-program" });
  const fType = select("type", TYPES.map((t) => [t, t || "any"]), filters.type, { testid: "filter-type" });
  const fPriority = select("priority", PRIORITIES.map((p) => [p, p || "any"]), filters.priority, { testid: "filter-priority" });
  const fQ = h("input", { name: "q", type: "search", value: filters.q, placeholder: "text in title or instructions", testid: "filter-q" });
  const clear = h("button", { type: "button", class: "ghost small", testid: "filter-clear" }, "Clear");
  const form = h("form", { class: "filters", role: "search", testid: "task-filters" },
    field("Target", fTarget), field("Program", fProgram), field("Type", fType), field("Priority", fPriority),
    h("div", { class: "field grow" }, h("span", { class: "field-label" }, "Search"), fQ),
    h("div", { class: "field end" }, clear));

  const activeCount = h("span", { class: "filter-count" });
  const box = h("details", { class: "filters-box", open: window.matchMedia("(min-width: 900px)").matches || Object.values(filters).some(Boolean) },
    h("summary", {}, "Filters", activeCount), form);
  const showCount = () => {
    const n = Object.values(filters).filter(Boolean).length;
    activeCount.textContent = n ? ` (${n} on)` : "";
  };
  showCount();
  const jump = h("div", { class: "column-jump", role: "navigation", "aria-label": "Columns" });
  const columns = {};
  const board = h("div", { class: "board" });
  for (const [key, label] of COLUMNS) {
    const countEl = h("span", { class: "col-count", testid: `task-count-${key}` }, "0");
    const list = h("div", { class: "col-list" });
    const section = h("section", { class: ["column", `column-${key}`], testid: `task-column-${key}`, "aria-label": label },
      h("h2", { class: "col-head" }, label, countEl), list);
    columns[key] = { section, list, countEl, label };
    board.append(section);
    const jumpCount = h("span", { class: "jump-count" }, "0");
    columns[key].jumpCount = jumpCount;
    const button = h("button", { type: "button", class: "chip" }, label, " ", jumpCount);
    button.addEventListener("click", () => section.scrollIntoView({ behavior: "smooth", block: "start" }));
    jump.append(button);
  }
  const limitNote = h("p", { class: "muted small" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Tasks"), h("a", { href: "#/send", class: "button ghost small" }, "New task")),
    box, targets, status, jump, board, limitNote);

  let loopAbort = null;
  const start = () => {
    if (loopAbort) loopAbort.abort();
    loopAbort = new AbortController();
    signal.addEventListener("abort", () => loopAbort.abort(), { once: true });
    const path = withQuery("/tasks", { state: "all", ...filters });
    live(path, {
      signal: loopAbort.signal,
      onData(body) {
        status.replaceChildren();
        const by = { queued: [], active: [], done: [], dead: [] };
        for (const task of body.tasks || []) by[phaseOf(task.status)].push(task);
        for (const [key] of COLUMNS) {
          const c = columns[key];
          const n = body.counts && body.counts[key] !== undefined ? body.counts[key] : by[key].length;
          c.countEl.textContent = String(n);
          c.jumpCount.textContent = String(n);
          keyedList(c.list, by[key], (t) => t.taskId, taskCard);
          const e = c.list.querySelector(".empty");
          if (!by[key].length && !e) c.list.append(empty("None"));
          else if (by[key].length && e) e.remove();
        }
        const full = body.limit && Object.values(body.counts || {}).some((n) => n >= body.limit);
        limitNote.textContent = full ? `A column shows at most the newest ${body.limit}; narrow with the filters to find older ones.` : "";
      },
      onError(err) { status.replaceChildren(errorBanner(err)); },
      onTick() { refreshTimes(root); },
    });
  };

  let timer = null;
  const apply = (debounce) => {
    const next = { target: fTarget.value.trim(), program: fProgram.value.trim(), type: fType.value, priority: fPriority.value, q: fQ.value.trim() };
    if (JSON.stringify(next) === JSON.stringify(filters)) return;
    clearTimeout(timer);
    timer = setTimeout(() => { Object.assign(filters, next); showCount(); start(); }, debounce ? 350 : 0);
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(false); });
  for (const input of [fTarget, fProgram, fQ]) input.addEventListener("input", () => apply(true));
  for (const input of [fType, fPriority]) input.addEventListener("change", () => apply(false));
  clear.addEventListener("click", () => {
    fTarget.value = ""; fProgram.value = ""; fType.value = ""; fPriority.value = ""; fQ.value = "";
    apply(false);
  });
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });

  start();
  fillTargets(targets, signal);
}

async function fillTargets(datalist, signal) {
  try {
    const body = await get("/agents", { signal });
    const names = new Set([...(body.agents || []).map((a) => a.programId), ...(body.groups || []).map((g) => g.name)]);
    datalist.replaceChildren(...Array.from(names, (n) => h("option", { value: n })));
  } catch (_) { /* suggestions only */ }
}

function taskCard(task) {
  const progress = task.progress != null ? progressBar(task.progress, `progress of ${task.title}`) : null;
  return h("a", { class: ["card", "task-card", `prio-${task.priority || "normal"}`], href: `#/tasks/${encodeURIComponent(task.taskId)}`, testid: "task-card", dataset: { id: task.taskId, status: task.status } },
    h("div", { class: "card-title" }, task.title || task.taskId),
    h("div", { class: "card-meta" },
      pill(task.status.replace(/_/g, " "), `status-${task.status}`),
      task.priority && task.priority !== "normal" ? pill(task.priority, `prio-${task.priority}`) : null,
      task.type && task.type !== "task" ? pill(task.type, "muted") : null),
    h("div", { class: "card-line" }, h("span", { class: "muted" }, "for "), h("strong", {}, task.target || "?"),
      task.claimedBy ? [h("span", { class: "muted" }, phaseOf(task.status) === "active" ? " · held by " : " · worked on by "),
      h("strong", { testid: "task-claimed-by" }, task.claimedBy)] : null),
    progress ? h("div", { class: "card-progress" }, progress, h("span", { class: "small muted" }, `${task.progress}%${task.progressNote ? ` · ${task.progressNote}` : ""}`)) : null,
    h("div", { class: "card-line small muted" }, timeEl(task.updatedAt || task.createdAt, "updated ")));
}

// ---------- one task ----------

const SHOWN = [
  ["taskId", "Task id"], ["status", "Status"], ["type", "Type"], ["priority", "Priority"], ["action", "Action"],
  ["target", "For"], ["originalTarget", "Originally for"], ["source", "Created by"], ["claimedBy", "Held by"],
  ["claimedAt", "Claimed"], ["leaseExpiresAt", "Lease expires"], ["attempt", "Attempts"], ["progress", "Progress"],
  ["progressNote", "Progress note"], ["createdAt", "Created"], ["updatedAt", "Updated"], ["startedAt", "Started"],
  ["completedAt", "Finished"], ["completedStatus", "Outcome"], ["completedBy", "Finished by"],
  ["tokensIn", "Tokens in"], ["tokensOut", "Tokens out"], ["costUsd", "Cost"], ["model", "Model"], ["provider", "Provider"],
  ["errorCode", "Error code"], ["errorClass", "Error class"], ["lastError", "Last error"], ["sprintId", "Sprint"],
  ["storyId", "Story"], ["threadId", "Thread"], ["replyTo", "Reply to"], ["projectId", "Project"],
  ["expiresAt", "Expires"], ["availableAt", "Available from"], ["retryOf", "Retry of"], ["retriedAs", "Retried as"],
  ["answer", "Answer"], ["answeredAt", "Answered"],
];
const TIMES = new Set(["claimedAt", "leaseExpiresAt", "createdAt", "updatedAt", "startedAt", "completedAt", "expiresAt", "availableAt", "answeredAt"]);
const HIDDEN = new Set(["title", "instructions", "result", "history", "maxAttempts", "claimToken", "sessionId", "provenance"]);

function value(task, key) {
  const v = task[key];
  if (TIMES.has(key)) return timeEl(v);
  if (key === "attempt") return `${v ?? 0}/${task.maxAttempts ?? "?"}`;
  if (key === "costUsd") return money(v);
  if (key === "tokensIn" || key === "tokensOut") return count(v);
  if (key === "progress") return h("div", { class: "inline-progress" }, progressBar(v), ` ${v}%`);
  if (key === "retryOf" || key === "retriedAs") return h("a", { href: `#/tasks/${encodeURIComponent(v)}`, class: "mono" }, v);
  if (key === "sprintId") return h("a", { href: `#/sprints/${encodeURIComponent(v)}`, class: "mono" }, v);
  if (key === "status") return pill(String(v).replace(/_/g, " "), `status-${v}`);
  if (typeof v === "object") return h("pre", {}, JSON.stringify(v, null, 2));
  return String(v);
}

function fields(task) {
  const rows = [];
  const seen = new Set();
  for (const [key, label] of SHOWN) {
    seen.add(key);
    if (task[key] === undefined || task[key] === null) continue;
    rows.push(h("dt", {}, label), h("dd", { dataset: { field: key } }, value(task, key)));
  }
  if (task.attempt === undefined && task.maxAttempts !== undefined) rows.push(h("dt", {}, "Attempts"), h("dd", { dataset: { field: "attempt" } }, `0/${task.maxAttempts}`));
  for (const key of Object.keys(task).sort()) {
    if (seen.has(key) || HIDDEN.has(key) || task[key] == null) continue;
    rows.push(h("dt", {}, key), h("dd", { dataset: { field: key } }, value(task, key)));
  }
  if (task.provenance) rows.push(h("dt", {}, "Provenance"), h("dd", {}, h("pre", {}, JSON.stringify(task.provenance, null, 2))));
  return h("dl", { class: "kv fields" }, rows);
}

function history(entries) {
  if (!entries || !entries.length) return empty("No history.");
  return h("div", { class: "table-wrap" }, h("table", { class: "history", testid: "task-history" },
    h("thead", {}, h("tr", {}, ["When", "Event", "By", "From → to", "Note"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, entries.slice().reverse().map((e) => h("tr", {},
      h("td", { "data-label": "When" }, timeEl(e.at)),
      h("td", { "data-label": "Event" }, e.event || ""),
      h("td", { "data-label": "By" }, e.by || ""),
      h("td", { "data-label": "From → to" }, `${e.from || "—"} → ${e.to || "—"}`),
      h("td", { "data-label": "Note" }, e.note || ""))))));
}

export function mountDetail(root, { signal, params }) {
  const taskId = params[0];
  const status = h("div", { class: "status-slot" });
  const head = h("div", { class: "detail-head" }, h("h1", {}, "Task"));
  const actions = h("div", { class: "actions", testid: "task-actions" });
  const actionResult = h("div", { class: "form-result" });
  const body = h("div", { class: "detail-body" });
  const detail = h("article", { class: "task-detail", testid: "task-detail", dataset: { id: taskId } }, head, actions, actionResult, body);
  root.append(h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "← Tasks")), status, detail);

  let shownActions = null;
  const loop = live(`/tasks/${encodeURIComponent(taskId)}`, {
    signal,
    onData(data) {
      status.replaceChildren();
      const task = data.task || {};
      detail.dataset.status = task.status || "";
      fill(head,
        h("h1", {}, task.title || taskId),
        h("div", { class: "card-meta" }, pill(String(task.status || "?").replace(/_/g, " "), `status-${task.status}`),
          task.priority ? pill(task.priority, `prio-${task.priority}`) : null,
          task.type ? pill(task.type, "muted") : null));
      const sig = JSON.stringify(data.actions || []);
      if (sig !== shownActions) {
        shownActions = sig;
        actions.replaceChildren(...actionButtons(taskId, data.actions || [], actionResult, () => loop.refresh()));
      }
      fill(body,
        task.instructions ? h("section", { class: "card" }, h("h2", {}, "Instructions"), h("div", { class: "text" }, task.instructions)) : null,
        task.result != null ? h("section", { class: "card", testid: "task-result" }, h("h2", {}, "Result"),
          typeof task.result === "string" ? h("div", { class: "text" }, task.result) : h("pre", {}, JSON.stringify(task.result, null, 2))) : null,
        h("section", { class: "card" }, h("h2", {}, "Details"), fields(task)),
        h("section", { class: "card" }, h("h2", {}, "History"), history(task.history)));
    },
    onError(err) { status.replaceChildren(errorBanner(err)); },
    onTick() { refreshTimes(root); },
  });
}

function actionButtons(taskId, allowed, result, refresh) {
  const base = `/tasks/${encodeURIComponent(taskId)}`;
  const done = (node) => result.replaceChildren(node);
  const run = async (work) => {
    result.replaceChildren();
    try { await work(); } catch (err) { done(errorBanner(err)); }
    refresh();
  };
  const out = [];
  if (allowed.includes("cancel")) {
    out.push(confirmButton("Cancel task", "Cancel this task? An agent working on it is stopped.", () => run(async () => {
      const r = await post(`${base}/cancel`, { reason: "cancelled from the console" });
      done(h("p", { class: "ok", role: "status" }, `Cancelled (now ${r.status || "cancelled"}).`));
    }), { class: "danger", testid: "task-action-cancel" }));
  }
  if (allowed.includes("retry")) {
    const retry = h("button", { type: "button", class: "primary", testid: "task-action-retry" }, "Retry (fresh attempt)");
    retry.addEventListener("click", () => { retry.disabled = true; run(async () => {
      const r = await post(`${base}/retry`, {});
      const fresh = r.taskId && r.taskId !== taskId;
      done(h("p", { class: "ok", role: "status", testid: "retry-result" }, "Queued again",
        fresh ? [" as ", h("a", { href: `#/tasks/${encodeURIComponent(r.taskId)}`, class: "mono" }, r.taskId)] : null, "."));
    }).finally(() => { retry.disabled = false; }); });
    out.push(retry);
  }
  if (allowed.includes("reassign")) {
    const open = h("button", { type: "button", class: "ghost", testid: "task-action-reassign" }, "Reassign…");
    const input = h("input", { name: "target", required: true, autocomplete: "off", autocapitalize: "off", placeholder: "new program or group", list: "reassign-targets", testid: "reassign-target" });
    const list = h("datalist", { id: "reassign-targets" });
    const form = h("form", { class: "inline-form", hidden: true, testid: "reassign-form" },
      h("label", { class: "field" }, h("span", { class: "field-label" }, "New target"), input), list,
      h("div", { class: "row gap" }, h("button", { type: "submit", class: "primary small", testid: "reassign-submit" }, "Reassign"),
        h("button", { type: "button", class: "ghost small", testid: "reassign-cancel" }, "Never mind")));
    open.addEventListener("click", () => {
      form.hidden = false; open.hidden = true; input.focus();
      fillTargetsInto(list);
    });
    form.querySelector("[data-testid=reassign-cancel]").addEventListener("click", () => { form.hidden = true; open.hidden = false; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const target = input.value.trim();
      if (!target) { done(errorBanner({ message: "Name the new target.", field: "target" })); return; }
      await busy(form, () => run(async () => {
        const r = await post(`${base}/reassign`, { target });
        done(h("p", { class: "ok", role: "status" }, `Reassigned to ${r.target || target}.`));
        form.hidden = true; open.hidden = false; input.value = "";
      }));
    });
    out.push(h("span", { class: "reassign" }, open, form));
  }
  if (!out.length) out.push(h("span", { class: "muted small" }, "No actions possible now."));
  return out;
}

async function fillTargetsInto(datalist) {
  if (datalist.childElementCount) return;
  try {
    const body = await get("/agents");
    const names = new Set([...(body.agents || []).map((a) => a.programId), ...(body.groups || []).map((g) => g.name)]);
    datalist.replaceChildren(...Array.from(names, (n) => h("option", { value: n })));
  } catch (_) { /* suggestions only */ }
}
