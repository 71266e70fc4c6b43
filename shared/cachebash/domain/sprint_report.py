"""What a sprint looks like to an agent: stories by wave, progress, what blocks the rest, and
the summary written when it ends. Pure functions of the stored documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cachebash.domain.sprint_tasks import ACTIVE_TASK
from cachebash.domain.sprints import FINISHED, OPEN, StoryState, StoryStatus, current_wave, describe_waits, waiting_for

_STORY_FIELDS = (
    "storyId", "title", "wave", "status", "dependencies", "target", "taskId", "run", "claimedBy", "progress",
    "currentAction", "unlockedAt", "startedAt", "completedAt", "lastError", "heldReason", "maxRetries", "autoRetries",
)


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def story_progress(story: Mapping[str, Any]) -> int:
    if story["status"] in FINISHED:
        return 100
    return int(story.get("progress") or 0)


def story_view(story: Mapping[str, Any], task: Mapping[str, Any] | None,
               states: Mapping[str, StoryState]) -> dict[str, Any]:
    """The stored story, with the live state of its task laid over it while the story is open.

    Only a task's outcome is copied onto the story (that is what the lock rule needs); who
    holds it, whether work started and how far it got are read from the task here, so claims
    and progress reports cost no extra write."""
    view = {k: story[k] for k in _STORY_FIELDS if story.get(k) is not None}
    if story["status"] not in OPEN:
        view.pop("heldReason", None)  # held by the plan once; decided by hand since
    if task is not None:
        view["taskStatus"] = task.get("status")
    if task is not None and story["status"] in OPEN:
        working = task.get("status") in ACTIVE_TASK
        if working:
            view["claimedBy"] = task.get("claimedBy")
            view.setdefault("startedAt", task.get("claimedAt"))
        if working or story["status"] == StoryStatus.ACTIVE.value:
            view["status"] = StoryStatus.ACTIVE.value
        for mine, theirs in (("progress", "progress"), ("currentAction", "progressNote")):
            if story.get(mine) is None and task.get(theirs) is not None:
                view[mine] = task[theirs]
    waits = waiting_for(states[story["storyId"]], states)
    view["locked"] = bool(waits) and story["status"] not in FINISHED
    if view["locked"]:
        view["waitingFor"] = [w.to_dict() for w in waits]
    duration = seconds_between(story.get("startedAt"), story.get("completedAt"))
    if duration is not None:
        view["durationSeconds"] = duration
    return view


def counts(stories: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    tally = {status.value: 0 for status in StoryStatus}
    for story in stories:
        tally[story["status"]] += 1
    return {**tally, "total": len(stories)}


def percent(stories: Sequence[Mapping[str, Any]]) -> int:
    return round(sum(story_progress(s) for s in stories) / len(stories)) if stories else 0


def sprint_view(sprint: Mapping[str, Any], stories: Sequence[Mapping[str, Any]],
                tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The body of get_sprint. Counts and progress are of the live views."""
    states = {s["storyId"]: StoryState.of(s) for s in stories}
    views = [story_view(s, tasks.get(s.get("taskId") or ""), states) for s in _ordered(stories)]
    current = current_wave(states.values())
    waves = []
    for wave in sorted({v["wave"] for v in views}):
        members = [v for v in views if v["wave"] == wave]
        state = "done" if all(v["status"] in FINISHED for v in members) else (
            "locked" if all(v["locked"] for v in members if v["status"] not in FINISHED) else "open")
        waves.append({"wave": wave, "state": state, "progress": percent(members), "counts": counts(members),
                      "stories": members})
    blocked = [{"storyId": v["storyId"], "waitingFor": v["waitingFor"]} for v in views if v.get("locked")]
    shown = {v["storyId"]: v["status"] for v in views}
    return {
        "success": True, "sprint": public_sprint(sprint), "progress": percent(views), "counts": counts(views),
        "currentWave": current, "waves": waves, "blocked": blocked, "next": _next_step(sprint, states, shown, current),
    }


def _ordered(stories: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(stories, key=lambda s: (s["wave"], s.get("position", 0), s["storyId"]))


def _next_step(sprint: Mapping[str, Any], states: Mapping[str, StoryState], shown: Mapping[str, str],
               current: int | None) -> str:
    """One sentence on what has to happen for the sprint to move on."""
    if sprint["status"] != "active":
        return f"The sprint is {sprint['status']}."
    if current is None:
        return "Every story is complete or skipped; the sprint completes itself."
    later = sorted({s.wave for s in states.values() if s.wave > current})
    holding = sorted((s for s in states.values() if s.wave == current and s.status not in FINISHED),
                     key=lambda s: s.id)
    failed = [s.id for s in holding if s.status is StoryStatus.FAILED]
    listed = ", ".join(f"{s.id} ({shown[s.id]})" for s in holding)
    step = (f"Wave {later[0]} unlocks when {listed} are complete or skipped." if later
            else f"The sprint completes when {listed} are complete or skipped.")
    if failed:
        step += f" Failed stories block it: retry them (update_sprint_story status 'queued') or skip them: " \
                f"{', '.join(failed)}."
    locked_here = [s for s in holding if waiting_for(s, states)]
    if locked_here:
        step += " " + "; ".join(describe_waits(s.id, waiting_for(s, states)) for s in locked_here) + "."
    return step


_SPRINT_FIELDS = (
    "sprintId", "projectName", "branch", "target", "priority", "maxRetries", "status", "createdBy", "createdAt",
    "completedAt", "closedBy", "reason", "summary",
)


def public_sprint(sprint: Mapping[str, Any]) -> dict[str, Any]:
    return {k: sprint[k] for k in _SPRINT_FIELDS if sprint.get(k) is not None}


def summarize(sprint: Mapping[str, Any], stories: Sequence[Mapping[str, Any]], now: str) -> dict[str, Any]:
    """Counts and durations, frozen onto the sprint when it ends."""
    durations = {s["storyId"]: d for s in stories
                 if (d := seconds_between(s.get("startedAt"), s.get("completedAt"))) is not None}
    longest = max(durations.items(), key=lambda item: item[1], default=None)
    waves = []
    for wave in sorted({int(s["wave"]) for s in stories}):
        members = [s for s in stories if s["wave"] == wave]
        opened = min((s["unlockedAt"] for s in members if s.get("unlockedAt")), default=None)
        closed = max((s["completedAt"] for s in members if s.get("completedAt")), default=None)
        waves.append({"wave": wave, "stories": len(members), "durationSeconds": seconds_between(opened, closed)})
    tally = counts(stories)
    return {
        "total": tally["total"], "complete": tally["complete"], "skipped": tally["skipped"],
        "failed": tally["failed"], "open": tally["queued"] + tally["active"],
        "retries": sum(int(s.get("run", 1)) - 1 for s in stories),
        "durationSeconds": seconds_between(sprint["createdAt"], now),
        "storyDurationSeconds": {
            "average": round(sum(durations.values()) / len(durations), 3) if durations else None,
            "longest": {"storyId": longest[0], "seconds": longest[1]} if longest else None,
        },
        "waves": waves,
    }
