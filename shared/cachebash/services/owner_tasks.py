"""The person's view of the work: the task board, one task in full, and the moves an agent
cannot make (cancel running work, retry what failed, hand a task to someone else).

The person acts as the reserved program `human` with admin rights (`owner_caller`), so every
rule of the task services applies to the console exactly as to an agent; the moves here are
the ones no agent tool offers, each one transaction through the state table.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cachebash.domain.errors import Code, Conflict, InvalidInput
from cachebash.domain.inputs import Input, Name, ShortText
from cachebash.domain.programs import HUMAN
from cachebash.domain.task_states import PHASES, TRANSITIONS, HistoryEntry, Phase, TaskEvent, TaskStatus, with_history
from cachebash.domain.tasks import Priority, TaskType
from cachebash.ports.store import Query
from cachebash.services import quota, usage
from cachebash.services.claims import load, move
from cachebash.services.events import TaskFinished, TaskQueued
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Caller, Runtime, new_id, tenant_path
from cachebash.services.tasks import public

BOARD_LIMIT = 200  # newest tasks per column; older ones are reached through filters
BOARD_STATES = ("queued", "active", "done", "dead")


def owner_caller(tenant_id: str) -> Caller:
    """The tenant's owner, as the services see them: the program `human`, with admin rights."""
    return Caller(tenant_id=tenant_id, program_id=HUMAN, admin=True)


class BoardFilter(Input):
    state: str = Field("all", pattern="^(queued|active|done|dead|all)$",
                       description="queued, active, done, dead or all.")
    target: Name | None = None
    program: Name | None = Field(None, description="Created or claimed by this program.")
    type: TaskType | None = None
    priority: Priority | None = None
    q: ShortText | None = Field(None, description="Text in the title or instructions.")


class CancelTask(Input):
    reason: ShortText | None = None


class Reassign(Input):
    target: Name = Field(description="The program or group that should take the task instead.")


def board_query(tenant_id: str, phase: str, target: str | None) -> Query:
    query = Query(tenant_path(tenant_id, "tasks"))
    if target:
        query = query.where("target", "==", target)
    return query.where("phase", "==", phase).order("createdAt", descending=True).take(BOARD_LIMIT)


def _matches(task: dict[str, Any], f: BoardFilter) -> bool:
    if f.program and f.program not in (task.get("source"), task.get("claimedBy"), task.get("completedBy")):
        return False
    if f.type and task.get("type") != f.type.value:
        return False
    if f.priority and task.get("priority") != f.priority.value:
        return False
    text = f.q.lower() if f.q else None
    return not text or text in f"{task.get('title', '')}\n{task.get('instructions') or ''}".lower()


def board(rt: Runtime, tenant_id: str, f: BoardFilter) -> dict[str, Any]:
    """Each column is the newest `BOARD_LIMIT` tasks of its phase (of one target when filtered by
    target, which the index serves); the other filters narrow those in memory."""
    states = BOARD_STATES if f.state == "all" else (f.state,)
    tasks: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for state in states:
        found = [t for t in (d.data for d in rt.store.query(board_query(tenant_id, state, f.target)))
                 if _matches(t, f)]
        counts[state] = len(found)
        tasks.extend(public(t) for t in found)
    return {"success": True, "tasks": tasks, "counts": counts, "limit": BOARD_LIMIT}


def actions(task: dict[str, Any]) -> list[str]:
    """What the person may do to this task now."""
    status = TaskStatus(task["status"])
    allowed = []
    if (status, TaskEvent.ABORT) in TRANSITIONS:
        allowed.append("cancel")
    if status in (TaskStatus.FAILED, TaskStatus.DEAD, TaskStatus.EXPIRED) and not task.get("retriedAs") \
            and task.get("type") != TaskType.SPRINT_STORY.value:
        allowed.append("retry")
    if PHASES[status] in (Phase.QUEUED, Phase.ACTIVE) and task.get("target") != HUMAN:
        allowed.append("reassign")
    return allowed


def detail(rt: Runtime, tenant_id: str, task_id: str) -> dict[str, Any]:
    task = rt.store.run_transaction(lambda tx: load(tx, owner_caller(tenant_id), task_id)[1])
    view = public(task, history=True)
    for name in ("retryOf", "retriedAs"):
        if task.get(name):
            view[name] = task[name]
    return {"success": True, "task": view, "actions": actions(task)}


def _refuse(task: dict[str, Any], action: str) -> None:
    if action not in actions(task):
        hint = "; sprint stories are retried from their sprint" if task.get("type") == "sprint-story" else ""
        raise Conflict(f"task {task['taskId']} is '{task['status']}': '{action}' is not possible now{hint} "
                       f"(possible: {', '.join(actions(task)) or 'nothing'})", code=Code.INVALID_TRANSITION,
                       status=task["status"])


def cancel(rt: Runtime, tenant_id: str, task_id: str, cmd: CancelTask) -> dict[str, Any]:
    """Stop a task wherever it is; a holder still working gets CLAIM_LOST/TASK_FINISHED on its next call."""
    now = rt.clock.iso()

    def apply(tx: Changes) -> dict[str, Any]:
        path, task = load(tx, owner_caller(tenant_id), task_id)
        _refuse(task, "cancel")
        changes = move(task, TaskEvent.ABORT, HUMAN, now, cmd.reason or "cancelled by the owner")
        changes.update(completedStatus="CANCELLED", completedAt=now, completedBy=HUMAN, leaseExpiresAt=None,
                       lastError=f"cancelled by the owner{': ' + cmd.reason if cmd.reason else ''}")
        quota.closing(tx, tenant_id, [(task, {**task, **changes})])
        tx.update(path, changes)
        usage.count(tx, rt, tenant_id, task, changes)
        tx.emit(TaskFinished(tenant_id, task_id=task_id, status=changes["status"]))
        return {**task, **changes}

    task = transact(rt, apply)
    return {"success": True, "taskId": task_id, "status": task["status"]}


_FRESH_FIELDS = ("title", "instructions", "type", "priority", "priorityRank", "action", "target", "source",
                 "projectId", "threadId", "replyTo", "provenance", "fallback", "maxAttempts")


def retry(rt: Runtime, tenant_id: str, task_id: str) -> dict[str, Any]:
    """A fresh attempt is a new task (`retryOf`) with the old one's work order; the finished task
    keeps its history unchanged but for a `retriedAs` link, so nothing finished is ever reopened."""
    now = rt.clock.iso()
    new_task_id = new_id()

    def apply(tx: Changes) -> dict[str, Any]:
        path, task = load(tx, owner_caller(tenant_id), task_id)
        _refuse(task, "retry")
        fresh = {k: task.get(k) for k in _FRESH_FIELDS}
        status = TaskStatus.CREATED
        fresh.update(taskId=new_task_id, status=status.value, phase=PHASES[status].value, attempt=1, claimToken=0,
                     expiresAt=None, createdAt=now, updatedAt=now, retryOf=task_id, originalTarget=None,
                     history=with_history([], HistoryEntry(now, "create", HUMAN, None, status.value,
                                                           f"retry of {task_id}")))
        quota.admit(tx, rt, tenant_id, [fresh])
        tx.create(tenant_path(tenant_id, "tasks", new_task_id), fresh)
        usage.count(tx, rt, tenant_id, None, fresh)
        tx.update(path, {"retriedAs": new_task_id, "updatedAt": now})
        tx.emit(TaskQueued(tenant_id, task_id=new_task_id, target=task["target"]))
        return fresh

    fresh = transact(rt, apply)
    return {"success": True, "taskId": new_task_id, "retryOf": task_id, "status": fresh["status"],
            "target": fresh["target"]}


def reassign(rt: Runtime, tenant_id: str, task_id: str, cmd: Reassign) -> dict[str, Any]:
    """A new target for a queued or running task. A running one goes back to the queue for its
    new target; its old holder is fenced out (CLAIM_LOST) like after any lost claim."""
    now = rt.clock.iso()

    def apply(tx: Changes) -> dict[str, Any]:
        path, task = load(tx, owner_caller(tenant_id), task_id)
        _refuse(task, "reassign")
        if cmd.target == task["target"]:
            raise InvalidInput(f"target: the task is already for '{cmd.target}'", field="target")
        note = f"reassigned by the owner from '{task['target']}' to '{cmd.target}'"
        if task["phase"] == Phase.ACTIVE.value:
            changes = move(task, TaskEvent.RELEASE, HUMAN, now, note)
            changes.update(claimedBy=None, leaseExpiresAt=None, sessionId=None, lastError=note)
        else:
            entry = HistoryEntry(now, "reassign", HUMAN, task["status"], task["status"], note)
            changes = {"updatedAt": now, "history": with_history(task.get("history", []), entry)}
        changes.update(target=cmd.target, originalTarget=task["target"])
        tx.update(path, changes)
        tx.emit(TaskQueued(tenant_id, task_id=task_id, target=cmd.target))
        return {**task, **changes}

    task = transact(rt, apply)
    return {"success": True, "taskId": task_id, "status": task["status"], "target": cmd.target}
