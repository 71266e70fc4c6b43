// Agents: every program with its groups, keys, the work it holds, when it was last seen, and
// its program state (contextSummary), collapsible.

import { live } from "../api.js";
import { empty, errorBanner, h, keyedList, pill, refreshTimes, timeEl, fill } from "../dom.js";

export function mount(root, { signal }) {
  const status = h("div", { class: "status-slot" });
  const list = h("div", { class: "agent-list" });
  const groups = h("section", { class: "card groups", testid: "agent-groups" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Agents"), h("a", { href: "#/keys", class: "button ghost small" }, "Add an agent")),
    status, list, groups);

  live("/agents", {
    signal,
    onData(body) {
      status.replaceChildren();
      const agents = body.agents || [];
      keyedList(list, agents, (a) => a.programId, agentRow, (row, a) => {
        const fresh = agentRow(a);
        const d = fresh.querySelector("details.state");
        if (d && row.querySelector("details.state[open]")) d.open = true;
        return fresh;
      });
      const e = list.querySelector(".empty");
      if (!agents.length && !e) list.append(empty("No programs yet. Create a key for one on the Keys page."));
      else if (agents.length && e) e.remove();
      const g = body.groups || [];
      fill(groups, h("h2", {}, "Groups"),
        g.length ? h("ul", { class: "plain" }, g.map((x) => h("li", {}, h("strong", {}, x.name), ": ", (x.members || []).join(", ") || "nobody")))
          : empty("No groups."));
    },
    onError(err) { status.replaceChildren(errorBanner(err)); },
    onTick() { refreshTimes(root); },
  });
}

function stateView(state) {
  if (state === null || state === undefined) return null;
  if (typeof state === "object" && !Object.keys(state).length) return null;
  return h("pre", { class: "state-json" }, typeof state === "string" ? state : JSON.stringify(state, null, 2));
}

function agentRow(a) {
  const keys = a.keys || [];
  const holding = a.holding || [];
  const state = stateView(a.state);
  return h("article", { class: "card agent-row", testid: "agent-row", dataset: { id: a.programId } },
    h("div", { class: "row-head" },
      h("h2", { class: "card-title mono" }, a.programId),
      (a.groups || []).map((g) => pill(g, "group"))),
    h("div", { class: "small muted" }, "last seen ", timeEl(a.lastSeenAt)),
    h("div", { class: "agent-grid" },
      h("div", {},
        h("h3", {}, "Holding now"),
        holding.length ? h("ul", { class: "plain" }, holding.map((t) => h("li", {},
          h("a", { href: `#/tasks/${encodeURIComponent(t.taskId)}` }, t.title || t.taskId), " ",
          pill(String(t.status).replace(/_/g, " "), `status-${t.status}`),
          t.progress != null ? h("span", { class: "small muted" }, ` ${t.progress}%`) : null)))
          : h("p", { class: "muted small" }, "Nothing.")),
      h("div", {},
        h("h3", {}, "Keys"),
        keys.length ? h("ul", { class: "plain" }, keys.map((k) => h("li", {},
          h("span", {}, k.label || k.keyId), " ",
          k.active === false ? pill("revoked", "dead") : pill("active", "done"),
          k.admin ? pill("admin", "prio-high") : null,
          h("span", { class: "small muted" }, " · used "), timeEl(k.lastUsedAt))))
          : h("p", { class: "muted small" }, "No keys."))),
    state ? h("details", { class: "state" }, h("summary", {}, "Program state", a.stateUpdatedAt ? [" · ", timeEl(a.stateUpdatedAt)] : null), state)
      : h("p", { class: "muted small" }, "No program state saved."));
}
