// Send: a message (DIRECTIVE or STATUS) to a program or group, or a new task.

import { live, post } from "../api.js";
import { busy, errorBanner, field, h, select } from "../dom.js";

const PRIORITIES = ["normal", "high", "low"];

export function mount(root, { signal }) {
  const datalist = h("datalist", { id: "send-targets" });
  const status = h("div", { class: "status-slot" });

  // ---- message ----
  const mTarget = h("input", { name: "target", list: "send-targets", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", placeholder: "program or group", testid: "message-target" });
  const mType = select("message_type", [["DIRECTIVE", "DIRECTIVE — do this"], ["STATUS", "STATUS — for your information"]], "DIRECTIVE", { testid: "message-type" });
  const mPriority = select("priority", PRIORITIES, "normal", { testid: "message-priority" });
  const mText = h("textarea", { name: "message", rows: 4, required: true, testid: "message-text", placeholder: "What should they know or do?" });
  const messageForm = h("form", { class: "card form", testid: "send-message-form", novalidate: true },
    h("h2", {}, "Message"),
    field("To", mTarget),
    h("div", { class: "grid2" }, field("Type", mType), field("Priority", mPriority)),
    field("Message", mText),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", testid: "message-send" }, "Send message")));

  // ---- task ----
  const tTitle = h("input", { name: "title", required: true, autocomplete: "off", testid: "task-title", placeholder: "Short title" });
  const tTarget = h("input", { name: "target", list: "send-targets", required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", placeholder: "program or group", testid: "task-target" });
  const tInstructions = h("textarea", { name: "instructions", rows: 5, testid: "task-instructions", placeholder: "What to do, and what done looks like" });
  const tPriority = select("priority", PRIORITIES, "normal", { testid: "task-priority" });
  const tAction = select("action", [["queue", "queue — in turn"], ["interrupt", "interrupt — now"], ["backlog", "backlog — later"], ["parallel", "parallel"], ["sprint", "sprint"]], "queue", { testid: "task-action" });
  const tType = select("type", [["task", "task"], ["question", "question"]], "task", { testid: "task-type" });
  const taskForm = h("form", { class: "card form", testid: "send-task-form", novalidate: true },
    h("h2", {}, "New task"),
    field("Title", tTitle),
    field("For", tTarget),
    field("Instructions", tInstructions),
    h("div", { class: "grid3" }, field("Priority", tPriority), field("Action", tAction), field("Type", tType)),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", testid: "task-send" }, "Create task")));

  root.append(h("div", { class: "page-head" }, h("h1", {}, "Send")), status, datalist,
    h("div", { class: "send-grid" }, messageForm, taskForm));

  const showResult = (form, node) => {
    for (const old of root.querySelectorAll("[data-testid=send-result]")) old.remove();
    const box = h("div", { class: "send-result", testid: "send-result", role: "status" }, node);
    form.append(box);
    box.scrollIntoView({ block: "nearest" });
  };

  messageForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { target: mTarget.value.trim(), message_type: mType.value, priority: mPriority.value, message: mText.value.trim() };
    if (!body.target) return showResult(messageForm, errorBanner({ message: "Say who the message is for.", field: "target" }));
    if (!body.message) return showResult(messageForm, errorBanner({ message: "Write the message.", field: "message" }));
    await busy(messageForm, async () => {
      try {
        const result = await post("/messages", body);
        mText.value = "";
        showResult(messageForm, messageResult(result, body));
      } catch (err) {
        showResult(messageForm, errorBanner(err));
      }
    });
  });

  taskForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { title: tTitle.value.trim(), target: tTarget.value.trim(), priority: tPriority.value, action: tAction.value, type: tType.value };
    const instructions = tInstructions.value.trim();
    if (instructions) body.instructions = instructions;
    if (!body.title) return showResult(taskForm, errorBanner({ message: "Give the task a title.", field: "title" }));
    if (!body.target) return showResult(taskForm, errorBanner({ message: "Say who the task is for.", field: "target" }));
    await busy(taskForm, async () => {
      try {
        const result = await post("/tasks", body);
        tTitle.value = "";
        tInstructions.value = "";
        showResult(taskForm, taskResult(result));
      } catch (err) {
        showResult(taskForm, errorBanner(err));
      }
    });
  });

  live("/agents", {
    signal,
    onData(body) {
      status.replaceChildren();
      const names = new Map();
      for (const a of body.agents || []) names.set(a.programId, "program");
      for (const g of body.groups || []) if (!names.has(g.name)) names.set(g.name, `group: ${(g.members || []).join(", ")}`);
      datalist.replaceChildren(...Array.from(names, ([name, label]) => h("option", { value: name, label })));
    },
    onError(err) { status.replaceChildren(errorBanner(err)); },
  });
}

function warnings(result) {
  const list = [];
  if (result.warning) list.push(result.warning);
  if (Array.isArray(result.warnings)) list.push(...result.warnings);
  return list.length ? h("ul", { class: "warnings" }, list.map((w) => h("li", {}, typeof w === "string" ? w : JSON.stringify(w)))) : null;
}

function messageResult(result, sent) {
  const messages = Array.isArray(result.messages) ? result.messages : [];
  const recipients = Array.isArray(result.recipients) ? result.recipients
    : messages.map((m) => m.target).filter(Boolean);
  const ids = messages.map((m) => m.messageId).filter(Boolean);
  if (result.messageId && !ids.includes(result.messageId)) ids.unshift(result.messageId);
  return h("div", { class: "ok" },
    h("strong", {}, `Sent to ${recipients.length || result.count || 0} recipient${(recipients.length || result.count) === 1 ? "" : "s"}`),
    h("dl", { class: "kv" },
      h("dt", {}, "Target"), h("dd", {}, sent.target),
      h("dt", {}, "Recipients"), h("dd", { testid: "send-recipients" }, recipients.join(", ") || "nobody yet"),
      h("dt", {}, ids.length === 1 ? "Message id" : "Message ids"), h("dd", { class: "mono", testid: "send-ids" }, ids.join(", ") || "—")),
    warnings(result));
}

function taskResult(result) {
  return h("div", { class: "ok" },
    h("strong", {}, "Task created"),
    h("dl", { class: "kv" },
      h("dt", {}, "Task id"), h("dd", { class: "mono", testid: "send-ids" },
        h("a", { href: `#/tasks/${encodeURIComponent(result.taskId)}` }, result.taskId)),
      h("dt", {}, "For"), h("dd", { testid: "send-recipients" }, result.target || ""),
      h("dt", {}, "Status"), h("dd", {}, result.status || "")),
    warnings(result));
}
