"""The task lifecycle, as one table.

Every status change of a task goes through `transition()`, so the rules live here and
nowhere else. New behaviour (leases, retries, dead letters) is added as rows of
`TRANSITIONS`, not as `if` chains in the services.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cachebash.domain.errors import Code, Conflict


class TaskStatus(StrEnum):
    CREATED = "created"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    DEAD = "dead"


class TaskEvent(StrEnum):
    CLAIM = "claim"
    PROGRESS = "progress"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    RENEW = "renew"
    RELEASE = "release"
    # A lost attempt: the lease ran out, or the work failed with a transient error.
    # The retry policy chooses between these two.
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    EXPIRE = "expire"  # its ttl ran out before anyone claimed it
    # The person stops work at any point before it ends (the console's Cancel). A finished task
    # is never reopened: a retry by the person is a new task (`retryOf`).
    ABORT = "abort"


class Phase(StrEnum):
    """Coarse grouping stored on each task so one equality filter serves `get_tasks(status=...)`."""

    QUEUED = "queued"
    ACTIVE = "active"
    DONE = "done"
    DEAD = "dead"


S, E = TaskStatus, TaskEvent

TRANSITIONS: dict[tuple[TaskStatus, TaskEvent], TaskStatus] = {
    (S.CREATED, E.CLAIM): S.CLAIMED,
    (S.CLAIMED, E.PROGRESS): S.IN_PROGRESS,
    (S.IN_PROGRESS, E.PROGRESS): S.IN_PROGRESS,
    (S.CLAIMED, E.SUCCESS): S.COMPLETED,
    (S.IN_PROGRESS, E.SUCCESS): S.COMPLETED,
    (S.CLAIMED, E.FAILED): S.FAILED,
    (S.IN_PROGRESS, E.FAILED): S.FAILED,
    # Skipping or cancelling is allowed until work has started.
    (S.CREATED, E.SKIPPED): S.SKIPPED,
    (S.CLAIMED, E.SKIPPED): S.SKIPPED,
    (S.CREATED, E.CANCELLED): S.CANCELLED,
    (S.CLAIMED, E.CANCELLED): S.CANCELLED,
    # A claim is a lease: renewed by its holder, handed back, or lost.
    (S.CLAIMED, E.RENEW): S.CLAIMED,
    (S.IN_PROGRESS, E.RENEW): S.IN_PROGRESS,
    (S.CLAIMED, E.RELEASE): S.CREATED,
    (S.IN_PROGRESS, E.RELEASE): S.CREATED,
    (S.CLAIMED, E.RETRY): S.CREATED,
    (S.IN_PROGRESS, E.RETRY): S.CREATED,
    (S.CLAIMED, E.DEAD_LETTER): S.DEAD,
    (S.IN_PROGRESS, E.DEAD_LETTER): S.DEAD,
    (S.CREATED, E.EXPIRE): S.EXPIRED,
    (S.CREATED, E.ABORT): S.CANCELLED,
    (S.CLAIMED, E.ABORT): S.CANCELLED,
    (S.IN_PROGRESS, E.ABORT): S.CANCELLED,
}

PHASES: dict[TaskStatus, Phase] = {
    S.CREATED: Phase.QUEUED,
    S.CLAIMED: Phase.ACTIVE,
    S.IN_PROGRESS: Phase.ACTIVE,
    S.COMPLETED: Phase.DONE,
    S.FAILED: Phase.DONE,
    S.CANCELLED: Phase.DONE,
    S.SKIPPED: Phase.DONE,
    S.EXPIRED: Phase.DONE,
    S.DEAD: Phase.DEAD,
}

# Why a refused move was refused, in words an agent can act on.
_HINTS: dict[tuple[TaskStatus, TaskEvent], str] = {
    (S.CREATED, E.SUCCESS): "claim it with claim_task before completing it",
    (S.CREATED, E.FAILED): "claim it with claim_task before reporting a failure",
    (S.CREATED, E.PROGRESS): "claim it with claim_task before reporting progress",
    (S.CREATED, E.RENEW): "it is not claimed; claim it with claim_task",
    (S.CREATED, E.RELEASE): "it is not claimed",
    (S.IN_PROGRESS, E.CANCELLED): "work has started; complete it with FAILED instead",
    (S.IN_PROGRESS, E.SKIPPED): "work has started; complete it with SUCCESS or FAILED instead",
    (S.CLAIMED, E.CLAIM): "it is already claimed",
    (S.IN_PROGRESS, E.CLAIM): "it is already claimed and in progress",
}

HISTORY_LIMIT = 50


def is_terminal(status: TaskStatus) -> bool:
    return PHASES[status] in (Phase.DONE, Phase.DEAD)


def allowed_events(status: TaskStatus) -> list[TaskEvent]:
    return [event for (source, event) in TRANSITIONS if source is status]


def transition(task_id: str, current: TaskStatus, event: TaskEvent) -> TaskStatus:
    """Return the status `event` leads to, or raise `Conflict` saying why it cannot happen."""
    target = TRANSITIONS.get((current, event))
    if target is not None:
        return target
    if is_terminal(current):
        raise Conflict(
            f"task {task_id} is already {current.value}; a finished task cannot be changed again",
            code=Code.TASK_FINISHED,
            status=current.value,
        )
    hint = _HINTS.get((current, event))
    allowed = ", ".join(e.value for e in allowed_events(current))
    reason = f": {hint}" if hint else f" (allowed now: {allowed})"
    raise Conflict(
        f"task {task_id} is '{current.value}', so '{event.value}' is not allowed{reason}",
        code=Code.INVALID_TRANSITION,
        status=current.value,
    )


@dataclass(frozen=True)
class HistoryEntry:
    at: str
    event: str
    by: str
    from_status: str | None
    to_status: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = {"at": self.at, "event": self.event, "by": self.by, "from": self.from_status, "to": self.to_status}
        if self.note:
            entry["note"] = self.note
        return entry


def with_history(history: list[dict[str, Any]], entry: HistoryEntry) -> list[dict[str, Any]]:
    """Append to a task's audit trail, keeping it bounded so a task document never grows without end."""
    return [*history, entry.to_dict()][-HISTORY_LIMIT:]


# --- whether a queued task may be offered now ------------------------------------------------------

def expired(task: dict[str, Any], now: str) -> bool:
    expires = task.get("expiresAt")
    return isinstance(expires, str) and task.get("phase") == Phase.QUEUED.value and expires <= now


def backing_off(task: dict[str, Any], now: str) -> bool:
    available = task.get("availableAt")
    return isinstance(available, str) and task.get("phase") == Phase.QUEUED.value and available > now


def offerable(task: dict[str, Any], now: str) -> bool:
    """Whether a task may be listed: not past its ttl, not waiting out a retry back-off."""
    return not expired(task, now) and not backing_off(task, now)
