"""Dispatch, the queue side: create tasks, list a queue, read one task.

What happens to a task once claimed (leases, completion, retries) is in `claims`.
"""

from __future__ import annotations

from typing import Any

from cachebash.domain.errors import InvalidInput, NotFound
from cachebash.domain.task_states import PHASES, HistoryEntry, Phase, TaskStatus, with_history
from cachebash.domain.tasks import PRIORITY_RANK, ClaimNext, CreateTask, GetTasks, StatusFilter, TaskRef
from cachebash.ports.store import MAX_IN_VALUES, Doc, Query
from cachebash.services import activity, cursors, interrupts
from cachebash.services.directory import resolve_target
from cachebash.services.events import TaskQueued
from cachebash.services.idempotency import run_once
from cachebash.services.outbox import Changes
from cachebash.services.runtime import Caller, Runtime, new_id, tenant_path

_STATUS_PHASE = {
    StatusFilter.CREATED: Phase.QUEUED,
    StatusFilter.ACTIVE: Phase.ACTIVE,
    StatusFilter.DONE: Phase.DONE,
    StatusFilter.DEAD: Phase.DEAD,
}
# Fields returned to agents for every task; internal bookkeeping (phase, rank) stays hidden.
_PUBLIC_FIELDS = (
    "taskId", "title", "status", "priority", "type", "action", "target", "source", "instructions",
    "projectId", "threadId", "replyTo", "provenance", "originalTarget", "createdAt", "updatedAt",
    "expiresAt", "claimedBy", "claimedAt", "sessionId", "startedAt", "progress", "progressNote",
    "completedStatus", "completedAt", "completedBy", "result", "errorCode", "errorClass",
    "tokensIn", "tokensOut", "costUsd", "model", "provider", "attempt", "maxAttempts", "claimToken",
    "leaseExpiresAt", "availableAt", "lastError", "sprintId", "storyId", "answer", "answeredAt",
)


def public(task: dict[str, Any], *, history: bool = False) -> dict[str, Any]:
    view = {k: task[k] for k in _PUBLIC_FIELDS if task.get(k) is not None}
    if history:
        view["history"] = task.get("history", [])
    return view


def create_task(rt: Runtime, caller: Caller, cmd: CreateTask) -> dict[str, Any]:
    caller.check_source(cmd.source)
    target, original, warning = _route(rt, caller, cmd.target, cmd.fallback)
    now = rt.clock.iso()
    task_id = new_id()
    status = TaskStatus.CREATED
    task: dict[str, Any] = {
        "taskId": task_id,
        "title": cmd.title,
        "instructions": cmd.instructions,
        "type": cmd.type.value,
        "priority": cmd.priority.value,
        "priorityRank": PRIORITY_RANK[cmd.priority],
        "action": cmd.action.value,
        "status": status.value,
        "phase": PHASES[status].value,
        "target": target,
        "originalTarget": original,
        "source": caller.program_id,
        "projectId": cmd.projectId,
        "threadId": cmd.threadId,
        "replyTo": cmd.replyTo,
        "provenance": cmd.provenance,
        "fallback": cmd.fallback,
        "attempt": 1,
        "maxAttempts": cmd.max_attempts or rt.policy.max_attempts,
        "claimToken": 0,
        "expiresAt": rt.clock.iso(cmd.ttl) if cmd.ttl else None,
        "createdAt": now,
        "updatedAt": now,
        "history": with_history([], HistoryEntry(now, "create", caller.program_id, None, status.value)),
    }
    path = tenant_path(caller.tenant_id, "tasks", task_id)
    result: dict[str, Any] = {
        "success": True, "taskId": task_id, "title": cmd.title, "status": status.value, "target": target,
    }
    if warning:
        result["warning"] = warning

    def write(tx: Changes) -> dict[str, Any]:
        tx.create(path, task)
        tx.emit(TaskQueued(caller.tenant_id, task_id=task_id, target=target))
        if push := interrupts.task_push(caller.tenant_id, task):
            tx.emit(push)
        return result

    return activity.task_created(caller, run_once(rt, caller, "create_task", cmd, write)[0])


def _route(rt: Runtime, caller: Caller, target: str, fallback: str | None) -> tuple[str, str | None, str | None]:
    """Deliver to the fallback only when nobody answers to `target`."""
    _, _, members = resolve_target(rt, caller, target)
    if members:
        return target, None, None
    if fallback:
        _, _, fallback_members = resolve_target(rt, caller, fallback)
        if fallback_members:
            return fallback, target, None
    return target, None, (
        f"no program or group member named '{target}' exists yet; the task waits until a program "
        f"with that id (or in that group) calls get_tasks"
    )


def queue_query(caller: Caller, cmd: GetTasks | ClaimNext) -> Query:
    """The caller's queue (or the named one), best first: priority, then age."""
    addresses = [cmd.target] if cmd.target else list(dict.fromkeys(caller.addresses))
    if len(addresses) > MAX_IN_VALUES:  # only a program registered before groups were capped
        raise InvalidInput(
            f"target: you ('{caller.program_id}') are in {len(addresses) - 2} groups, more than one query can "
            f"read at once ({MAX_IN_VALUES - 2}); pass target to read one queue (yours or a group's) at a time",
            field="target")
    query = Query(tenant_path(caller.tenant_id, "tasks"))
    query = query.where("target", "==", addresses[0]) if len(addresses) == 1 else query.where("target", "in", addresses)
    status = cmd.status if isinstance(cmd, GetTasks) else StatusFilter.CREATED
    if status is not StatusFilter.ALL:
        query = query.where("phase", "==", _STATUS_PHASE[status].value)
    if cmd.type != "all":
        query = query.where("type", "==", str(cmd.type))
    return query.order("priorityRank").order("createdAt")


_MAX_SCAN_PAGES = 20


def get_tasks(rt: Runtime, caller: Caller, cmd: GetTasks) -> dict[str, Any]:
    base = queue_query(caller, cmd)
    after = cursors.decode(cmd.cursor, base)
    now = rt.clock.iso()
    found: list[Doc] = []
    next_cursor: str | None = None
    for _ in range(_MAX_SCAN_PAGES):
        page = rt.store.query(base.after(after).take(cmd.limit + 1))
        for doc in page:
            if not offerable(doc.data, now):  # expired or backing off: never offered; page past them
                continue
            if len(found) == cmd.limit:
                next_cursor = cursors.encode(found[-1], base)
                break
            found.append(doc)
        if next_cursor or len(page) <= cmd.limit:
            break
        after = page[-1].cursor(base)
    else:
        next_cursor = cursors.encode(page[-1], base)
    tasks = [public(doc.data) for doc in found]
    return {"success": True, "hasTasks": bool(tasks), "count": len(tasks), "tasks": tasks, "nextCursor": next_cursor}


def expired(task: dict[str, Any], now: str) -> bool:
    expires = task.get("expiresAt")
    return isinstance(expires, str) and task.get("phase") == Phase.QUEUED.value and expires <= now


def backing_off(task: dict[str, Any], now: str) -> bool:
    available = task.get("availableAt")
    return isinstance(available, str) and task.get("phase") == Phase.QUEUED.value and available > now


def offerable(task: dict[str, Any], now: str) -> bool:
    """Whether a task may be listed: not past its ttl, not waiting out a retry back-off."""
    return not expired(task, now) and not backing_off(task, now)


def get_task(rt: Runtime, caller: Caller, cmd: TaskRef) -> dict[str, Any]:
    task = rt.store.get(tenant_path(caller.tenant_id, "tasks", cmd.taskId))
    if task is None:
        raise NotFound(f"no task {cmd.taskId}", field="taskId")
    return {"success": True, "task": public(task, history=True)}
