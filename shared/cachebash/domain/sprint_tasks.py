"""How a story and its task stay in step.

A story is worked through a task of type `sprint-story`, created only once the story unlocks.
Each run of a story (the first, then one per retry) has its own task whose id is derived
from (sprint, story, run): a handler that runs twice computes the same id and finds the
task already there, and an event about an old run's task is recognised and ignored.

The task is the truth about work in flight; the story copies its task's outcome (what the
lock rule needs) when the task finishes, while who holds it and how far it got are read
live from the task by get_sprint. The mapping is a function of the task's *state*, not of
the event that announced it, so duplicate or reordered events converge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cachebash.domain.sprints import FINISHED, OPEN, StoryStatus
from cachebash.domain.task_states import HistoryEntry, with_history

TASK_TYPE = "sprint-story"
SYSTEM = "cachebash"

# Task status -> story status. Unknown task statuses leave the story alone.
TASK_TO_STORY: dict[str, StoryStatus] = {
    "created": StoryStatus.QUEUED,
    "claimed": StoryStatus.ACTIVE,
    "in_progress": StoryStatus.ACTIVE,
    "completed": StoryStatus.COMPLETE,
    "skipped": StoryStatus.SKIPPED,
    "cancelled": StoryStatus.SKIPPED,
    "failed": StoryStatus.FAILED,
    "dead": StoryStatus.FAILED,
    "expired": StoryStatus.FAILED,
}
ACTIVE_TASK = frozenset({"claimed", "in_progress"})
OPEN_TASK = frozenset({"created", *ACTIVE_TASK})


def story_task_id(sprint_id: str, story_id: str, run: int) -> str:
    # ':' never occurs in generated ids or story ids, so the parts can be read back.
    return f"{sprint_id}:{story_id}:{run}"


def parse_story_task_id(task_id: str) -> tuple[str, str, int] | None:
    """(sprintId, storyId, run) for a story task's id, None for any other task."""
    parts = task_id.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def released(story: Mapping[str, Any]) -> bool:
    """Whether the story's current run already has its task."""
    return story.get("taskId") == story_task_id(story["sprintId"], story["storyId"], int(story["run"]))


def story_changes_for_task(story: Mapping[str, Any], task: Mapping[str, Any], now: str) -> dict[str, Any]:
    """What the story becomes, given the state of its current run's task; {} if nothing changes."""
    current = StoryStatus(story["status"])
    target = TASK_TO_STORY.get(str(task.get("status")))
    if current not in OPEN or target is None:
        return {}  # finished and failed stories change only by an explicit decision
    if target is StoryStatus.FAILED and _may_retry(story, task):
        note = failure_note(task)
        changes = {"status": StoryStatus.QUEUED.value, "run": int(story["run"]) + 1,
                   "autoRetries": int(story.get("autoRetries", 0)) + 1, "lastError": note,
                   "claimedBy": None, "progress": None, "currentAction": None,
                   "startedAt": story.get("startedAt") or task.get("claimedAt")}
        return with_story_history(story, changes, now, "retry", note=note)
    changes = _fields_for(target, story, task, now)
    changes = {k: v for k, v in changes.items() if story.get(k) != v}
    if not changes:
        return {}
    return with_story_history(story, changes, now, f"task {task.get('status')}", by=_actor(task))


def _fields_for(target: StoryStatus, story: Mapping[str, Any], task: Mapping[str, Any], now: str) -> dict[str, Any]:
    changes: dict[str, Any] = {"status": target.value}
    started = story.get("startedAt") or task.get("claimedAt")
    if target is StoryStatus.ACTIVE:
        changes.update(startedAt=started or now, claimedBy=task.get("claimedBy"))
        if task.get("progress") is not None:
            changes["progress"] = task["progress"]
        if task.get("progressNote") is not None:
            changes["currentAction"] = task["progressNote"]
    elif target is StoryStatus.QUEUED:
        changes.update(claimedBy=None, lastError=task.get("lastError") or story.get("lastError"))
    elif target in FINISHED:
        changes.update(completedAt=task.get("completedAt") or now, startedAt=started,
                       claimedBy=task.get("claimedBy") or story.get("claimedBy"),
                       progress=100 if target is StoryStatus.COMPLETE else story.get("progress"))
    else:
        changes.update(lastError=failure_note(task), startedAt=started,
                       claimedBy=task.get("claimedBy") or story.get("claimedBy"))
    return changes


def _may_retry(story: Mapping[str, Any], task: Mapping[str, Any]) -> bool:
    """The story's retry policy: a bounded number of fresh runs, never after a PERMANENT failure."""
    return task.get("errorClass") != "PERMANENT" and int(story.get("autoRetries", 0)) < int(story.get("maxRetries", 0))


def failure_note(task: Mapping[str, Any]) -> str:
    label = " ".join(str(p) for p in (task.get("errorClass"), task.get("errorCode")) if p) or "FAILED"
    detail = task.get("lastError") or task.get("result")
    return f"{label}: {str(detail)[:300]}" if detail else label


def _actor(task: Mapping[str, Any]) -> str:
    return str(task.get("completedBy") or task.get("claimedBy") or SYSTEM)


def with_story_history(story: Mapping[str, Any], changes: dict[str, Any], now: str, event: str, *,
                       by: str = SYSTEM, note: str | None = None) -> dict[str, Any]:
    """Add `updatedAt` and, when the status moves, an audit entry (bounded, as on tasks)."""
    changes = {**changes, "updatedAt": now}
    if changes.get("status", story["status"]) != story["status"] or "run" in changes:
        entry = HistoryEntry(now, event, by, story["status"], changes.get("status", story["status"]), note)
        changes["history"] = with_history(list(story.get("history", [])), entry)
    return changes
