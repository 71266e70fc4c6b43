// Sprints: the list with progress, and one sprint wave by wave with per-story Skip / Retry.

import { live, post } from "../api.js";
import { empty, errorBanner, h, keyedList, pill, refreshTimes, timeEl, fill } from "../dom.js";
import { progressBar } from "./tasks.js";

const FINISHED = new Set(["complete", "skipped"]);

export function mountList(root, { signal }) {
  const status = h("div", { class: "status-slot" });
  const list = h("div", { class: "sprint-list" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Sprints")), status, list);
  live("/sprints", {
    signal,
    onData(body) {
      status.replaceChildren();
      const sprints = body.sprints || [];
      keyedList(list, sprints, (s) => s.sprintId, sprintRow);
      const e = list.querySelector(".empty");
      if (!sprints.length && !e) list.append(empty("No sprints yet. An agent starts one with create_sprint."));
      else if (sprints.length && e) e.remove();
    },
    onError(err) { status.replaceChildren(errorBanner(err)); },
    onTick() { refreshTimes(root); },
  });
}

function countsLine(counts) {
  if (!counts) return null;
  const parts = ["complete", "active", "queued", "failed", "skipped"]
    .filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`);
  return h("span", { class: "small muted" }, `${parts.join(" · ") || "no stories"}${counts.total != null ? ` · ${counts.total} total` : ""}`);
}

function sprintRow(s) {
  return h("a", { class: "card sprint-row", href: `#/sprints/${encodeURIComponent(s.sprintId)}`, testid: "sprint-row", dataset: { id: s.sprintId } },
    h("div", { class: "row-head" },
      h("strong", { class: "card-title" }, s.projectName || s.sprintId),
      pill(s.status || "?", `status-${s.status}`),
      h("span", { class: "spacer" }),
      timeEl(s.createdAt)),
    h("div", { class: "card-progress" }, progressBar(s.progress, `progress of ${s.projectName || s.sprintId}`), h("span", { class: "small" }, `${s.progress ?? 0}%`)),
    h("div", { class: "card-line" }, countsLine(s.counts),
      s.branch ? h("span", { class: "small muted mono" }, ` · ${s.branch}`) : null,
      s.createdBy ? h("span", { class: "small muted" }, ` · by ${s.createdBy}`) : null));
}

export function mountDetail(root, { signal, params }) {
  const sprintId = params[0];
  const status = h("div", { class: "status-slot" });
  const head = h("div", { class: "detail-head" }, h("h1", {}, "Sprint"));
  const next = h("p", { class: "next callout", testid: "sprint-next" });
  const actionResult = h("div", { class: "form-result" });
  const waves = h("div", { class: "waves" });
  root.append(h("p", { class: "crumbs" }, h("a", { href: "#/sprints" }, "← Sprints")), status, head, next, actionResult, waves);

  const loop = live(`/sprints/${encodeURIComponent(sprintId)}`, {
    signal,
    onData(body) {
      status.replaceChildren();
      const sprint = body.sprint || {};
      fill(head,
        h("h1", {}, sprint.projectName || sprintId),
        h("div", { class: "card-meta" }, pill(sprint.status || "?", `status-${sprint.status}`),
          sprint.branch ? h("span", { class: "mono small" }, sprint.branch) : null,
          sprint.createdBy ? h("span", { class: "small muted" }, `by ${sprint.createdBy}`) : null,
          sprint.createdAt ? timeEl(sprint.createdAt, "started ") : null),
        h("div", { class: "card-progress" }, progressBar(body.progress, "sprint progress"), h("span", {}, `${body.progress ?? 0}%`), countsLine(body.counts)),
        sprint.summary ? h("details", { class: "summary" }, h("summary", {}, "Summary"), h("pre", {}, JSON.stringify(sprint.summary, null, 2))) : null);
      next.textContent = body.next || "";
      next.hidden = !body.next;
      const active = sprint.status === "active";
      keyedList(waves, body.waves || [], (w) => w.wave,
        (w) => waveSection(w, body.currentWave, sprintId, active, actionResult, () => loop.refresh()));
    },
    onError(err) { status.replaceChildren(errorBanner(err)); },
    onTick() { refreshTimes(root); },
  });
}

function waveSection(w, currentWave, sprintId, active, result, refresh) {
  const n = w.wave;
  const fill = h("div", { class: "bar-fill" });
  fill.style.setProperty("width", `${Math.max(0, Math.min(100, Number(w.progress) || 0))}%`);
  const bar = h("div", {
    class: ["bar", "wave-bar", `wave-${w.state}`], role: "progressbar", testid: `wave-bar-${n}`,
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Number(w.progress) || 0, "aria-label": `wave ${n} progress`,
  }, fill);
  const stories = h("div", { class: "stories" }, (w.stories || []).map((s) => storyRow(s, sprintId, active, result, refresh)));
  return h("section", { class: ["card", "wave", `wave-${w.state}`, n === currentWave ? "wave-current" : ""], testid: "wave", dataset: { wave: n, state: w.state } },
    h("div", { class: "row-head" }, h("h2", {}, `Wave ${n}`), pill(w.state, `wave-${w.state}`),
      n === currentWave ? pill("current", "open") : null, h("span", { class: "spacer" }), h("span", { class: "small" }, `${w.progress ?? 0}%`)),
    bar, stories);
}

function storyRow(s, sprintId, active, result, refresh) {
  const base = `/sprints/${encodeURIComponent(sprintId)}/stories/${encodeURIComponent(s.storyId)}`;
  const act = async (button, statusValue, verb) => {
    button.disabled = true;
    result.replaceChildren();
    try {
      await post(base, { status: statusValue });
      result.replaceChildren(h("p", { class: "ok", role: "status" }, `${s.storyId}: ${verb}.`));
    } catch (err) {
      result.replaceChildren(errorBanner(err));
      button.disabled = false;
    }
    refresh();
  };
  const buttons = [];
  if (active && s.status === "failed") {
    const retry = h("button", { type: "button", class: "primary small", testid: "story-retry" }, "Retry");
    retry.addEventListener("click", () => act(retry, "queued", "queued again"));
    buttons.push(retry);
  }
  if (active && !FINISHED.has(s.status)) {
    const skip = h("button", { type: "button", class: "ghost small", testid: "story-skip" }, "Skip");
    skip.addEventListener("click", () => act(skip, "skipped", "skipped"));
    buttons.push(skip);
  }
  const holder = s.holder || s.claimedBy;
  const waits = s.locked && s.waitingFor && s.waitingFor.length
    ? h("ul", { class: "waits", testid: "story-waiting" }, s.waitingFor.map((w) =>
      h("li", {}, "waits for ", h("strong", {}, w.storyId), w.status ? ` (${w.status})` : "", w.why ? ` — ${w.why}` : "")))
    : null;
  return h("div", { class: ["story-row", `story-${s.status}`, s.locked ? "is-locked" : ""], testid: "story-row", dataset: { id: s.storyId, status: s.status } },
    h("div", { class: "row-head" },
      h("strong", {}, s.title || s.storyId),
      pill(s.status, `status-${s.status}`),
      s.locked ? pill("locked", "locked") : null,
      h("span", { class: "spacer" }),
      buttons.length ? h("span", { class: "row gap" }, buttons) : null),
    h("div", { class: "card-line small" },
      h("span", { class: "mono muted" }, s.storyId),
      holder ? [FINISHED.has(s.status) || s.status === "failed" ? " · by " : " · held by ", h("strong", { testid: "story-holder" }, holder)] : null,
      s.target && !holder ? h("span", { class: "muted" }, ` · for ${s.target}`) : null,
      s.run > 1 ? h("span", { class: "muted" }, ` · run ${s.run}`) : null,
      s.taskId ? [" · ", h("a", { href: `#/tasks/${encodeURIComponent(s.taskId)}`, class: "mono" }, "task")] : null),
    s.progress != null && !FINISHED.has(s.status) ? h("div", { class: "card-progress" }, progressBar(s.progress, `progress of ${s.storyId}`), h("span", { class: "small" }, `${s.progress}%`)) : null,
    s.currentAction ? h("div", { class: "small current-action" }, "now: ", s.currentAction) : null,
    s.lastError && s.status === "failed" ? h("div", { class: "small error-text" }, s.lastError) : null,
    waits);
}
