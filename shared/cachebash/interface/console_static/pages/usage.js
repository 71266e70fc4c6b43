// Usage: the plan and its quota, this month's totals, the server-made charts, and tables by program,
// model, provider. The quota is the counter that admits tasks (services.quota), so "left" is what the
// next create_task meets.

import { live, withQuery } from "../api.js";
import { count, empty, errorBanner, h, money, select, trustedSvg, fill } from "../dom.js";

const CHARTS = [
  ["costByDay", "Cost by day"],
  ["tokensByDay", "Tokens by day"],
  ["tasksByDay", "Tasks by day"],
  ["costByProgram", "Cost by program"],
  ["costByModel", "Cost by model"],
];

let days = "30";

export function mount(root, { signal }) {
  const status = h("div", { class: "status-slot" });
  const range = select("days", [["7", "Last 7 days"], ["30", "Last 30 days"], ["90", "Last 90 days"], ["366", "Last year"]], days, { testid: "usage-days", "aria-label": "Window" });
  const plan = h("section", { class: "card plan-card", testid: "usage-plan" });
  const month = h("section", { class: "totals", testid: "usage-month" });
  const charts = h("section", { class: "charts", testid: "usage-charts" });
  const tables = h("section", { class: "usage-tables" });
  const daysBox = h("section", { class: "card" });
  const note = h("p", { class: "muted small" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Usage"), range), status,
    plan, h("h2", { class: "section-title" }, "This month"), month, charts, tables, daysBox, note);

  let loopAbort = null;
  const start = () => {
    if (loopAbort) loopAbort.abort();
    loopAbort = new AbortController();
    signal.addEventListener("abort", () => loopAbort.abort(), { once: true });
    live(withQuery("/usage", { days }), {
      signal: loopAbort.signal,
      onData(body) {
        status.replaceChildren();
        renderPlan(plan, body.plan || {}, body.quota || {});
        renderMonth(month, body.month || {});
        renderCharts(charts, body.charts || {});
        fill(tables,
          groupTable("By program", "Program", body.byProgram, "usage-by-program"),
          groupTable("By model", "Model", body.byModel, "usage-by-model"),
          groupTable("By provider", "Provider", body.byProvider, "usage-by-provider"));
        daysBox.replaceChildren(h("h2", {}, `Last ${days} days`), daysTable(body.days || []));
        note.textContent = body.truncated ? `Only part of the window was read (from ${body.oldestRead || "?"}); the oldest days may be incomplete.` : "";
      },
      onError(err) { status.replaceChildren(errorBanner(err)); },
    });
  };
  range.addEventListener("change", () => { days = range.value; start(); });
  start();
}

function stat(label, value, testid) {
  return h("div", { class: "stat card" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value", testid }, value));
}

/** "12 of 500 tasks this month · 488 left · resets 1 Jan", a bar when there is a limit, open tasks. */
function renderPlan(el, plan, q) {
  const used = Number(q.used) || 0;
  const limited = q.limit !== null && q.limit !== undefined;
  const resets = q.resetsAt ? new Date(q.resetsAt).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }) : "";
  const line = limited
    ? `${count(used)} of ${count(q.limit)} tasks this month · ${count(q.remaining)} left · resets ${resets}`
    : `${count(used)} ${used === 1 ? "task" : "tasks"} this month · no monthly limit`;
  const parts = [
    h("div", { class: "plan-head" }, h("h2", {}, "Plan"), h("span", { class: "pill", testid: "usage-plan-name" }, plan.name || "unknown")),
    h("p", { testid: "usage-quota" }, line),
  ];
  if (limited) {
    const share = q.limit > 0 ? Math.min(100, Math.round((100 * used) / q.limit)) : 100;
    const bar = h("div", { class: ["bar", share >= 90 ? "bar-warn" : ""], role: "progressbar", testid: "usage-quota-bar",
      "aria-label": "Monthly tasks used", "aria-valuemin": "0", "aria-valuemax": String(q.limit), "aria-valuenow": String(used) },
      h("div", { class: "bar-fill" }));
    bar.firstChild.style.width = `${share}%`;
    parts.push(bar);
  }
  const open = q.openLimit === null || q.openLimit === undefined
    ? `${count(q.openTasks)} open tasks`
    : `${count(q.openTasks)} of ${count(q.openLimit)} open tasks allowed`;
  parts.push(h("p", { class: "muted small", testid: "usage-open" }, open));
  el.replaceChildren(...parts);
}

function renderMonth(el, m) {
  el.replaceChildren(
    stat("Cost", money(m.costUsd), "usage-month-cost"),
    stat("Tokens in", count(m.tokensIn), "usage-month-tokens-in"),
    stat("Tokens out", count(m.tokensOut), "usage-month-tokens-out"),
    stat("Completed", count(m.completed), "usage-month-completed"),
    stat("Failed", count(m.failed), "usage-month-failed"));
}

function renderCharts(el, charts) {
  const known = new Set(CHARTS.map(([k]) => k));
  const list = [...CHARTS, ...Object.keys(charts).filter((k) => !known.has(k)).map((k) => [k, k])];
  el.replaceChildren(...list.filter(([key]) => charts[key]).map(([key, title]) =>
    h("figure", { class: "card chart", testid: `chart-${key}`, "aria-label": title },
      trustedSvg(h("div", { class: "chart-svg" }), charts[key]))));
  if (!el.childElementCount) el.append(empty("No charts."));
}

function groupTable(title, keyLabel, rows, testid) {
  rows = rows || [];
  return h("div", { class: "card" }, h("h2", {}, title),
    rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "data", testid },
      h("thead", {}, h("tr", {}, [keyLabel, "Tasks", "Tokens in", "Tokens out", "Cost"].map((t, i) => h("th", { scope: "col", class: i ? "num" : "" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {},
        h("td", { "data-label": keyLabel, class: "mono" }, r.key ?? "unknown"),
        h("td", { "data-label": "Tasks", class: "num" }, count(r.tasks)),
        h("td", { "data-label": "Tokens in", class: "num" }, count(r.tokensIn)),
        h("td", { "data-label": "Tokens out", class: "num" }, count(r.tokensOut)),
        h("td", { "data-label": "Cost", class: "num" }, money(r.costUsd)))))))
      : empty("Nothing finished in this window."));
}

function daysTable(rows) {
  const shown = rows.filter((r) => r.tokensIn || r.tokensOut || r.costUsd || r.completed || r.failed).slice().reverse();
  if (!shown.length) return empty("No finished work in this window.");
  return h("div", { class: "table-wrap" }, h("table", { class: "data", testid: "usage-days-table" },
    h("thead", {}, h("tr", {}, ["Day", "Completed", "Failed", "Tokens in", "Tokens out", "Cost"].map((t, i) => h("th", { scope: "col", class: i ? "num" : "" }, t)))),
    h("tbody", {}, shown.map((r) => h("tr", {},
      h("td", { "data-label": "Day", class: "mono" }, r.day),
      h("td", { "data-label": "Completed", class: "num" }, count(r.completed)),
      h("td", { "data-label": "Failed", class: "num" }, count(r.failed)),
      h("td", { "data-label": "Tokens in", class: "num" }, count(r.tokensIn)),
      h("td", { "data-label": "Tokens out", class: "num" }, count(r.tokensOut)),
      h("td", { "data-label": "Cost", class: "num" }, money(r.costUsd)))))));
}
