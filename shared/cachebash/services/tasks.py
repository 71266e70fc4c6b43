"""Dispatch: create, list, claim, progress and complete tasks.

Each mutation is one store transaction that reads the task, asks the state table
(`domain.task_states`) for the next status and writes it, so concurrent claimers are
serialised by the store and exactly one wins.
"""

from __future__ import annotations

from typing import Any

from cachebash.domain.errors import Conflict, Forbidden, NotFound
from cachebash.domain.task_states import PHASES, HistoryEntry, Phase, TaskEvent, TaskStatus, transition, with_history
from cachebash.domain.tasks import (
    PRIORITY_RANK,
    ClaimTask,
    CompleteTask,
    CreateTask,
    GetTasks,
    ReportProgress,
    StatusFilter,
    TaskRef,
)
from cachebash.ports.bus import Event
from cachebash.ports.store import Doc, Query, Transaction
from cachebash.services import cursors
from cachebash.services.directory import resolve_target
from cachebash.services.runtime import Caller, Runtime, new_id, tenant_path

_STATUS_PHASE = {StatusFilter.CREATED: Phase.QUEUED, StatusFilter.ACTIVE: Phase.ACTIVE, StatusFilter.DONE: Phase.DONE}

# Fields returned to agents for every task; internal bookkeeping (phase, rank) stays hidden.
_PUBLIC_FIELDS = (
    "taskId", "title", "status", "priority", "type", "action", "target", "source", "instructions",
    "projectId", "threadId", "replyTo", "provenance", "originalTarget", "createdAt", "updatedAt",
    "expiresAt", "claimedBy", "claimedAt", "sessionId", "startedAt", "progress", "progressNote",
    "completedStatus", "completedAt", "completedBy", "result", "errorCode", "errorClass",
    "tokensIn", "tokensOut", "costUsd", "model", "provider",
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
        "expiresAt": rt.clock.iso(cmd.ttl) if cmd.ttl else None,
        "createdAt": now,
        "updatedAt": now,
        "history": with_history([], HistoryEntry(now, "create", caller.program_id, None, status.value)),
    }
    path = tenant_path(caller.tenant_id, "tasks", task_id)
    rt.store.run_transaction(lambda tx: tx.create(path, task))
    rt.bus.publish(Event("task.created", caller.tenant_id, {"taskId": task_id}))
    result: dict[str, Any] = {
        "success": True, "taskId": task_id, "title": cmd.title, "status": status.value, "target": target,
    }
    if warning:
        result["warning"] = warning
    return result


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


def _queue_query(caller: Caller, cmd: GetTasks) -> Query:
    addresses = [cmd.target] if cmd.target else list(caller.addresses)
    query = Query(tenant_path(caller.tenant_id, "tasks"))
    query = query.where("target", "==", addresses[0]) if len(addresses) == 1 else query.where("target", "in", addresses)
    if cmd.status is not StatusFilter.ALL:
        query = query.where("phase", "==", _STATUS_PHASE[cmd.status].value)
    if cmd.type != "all":
        query = query.where("type", "==", str(cmd.type))
    return query.order("priorityRank").order("createdAt")


_MAX_SCAN_PAGES = 20


def get_tasks(rt: Runtime, caller: Caller, cmd: GetTasks) -> dict[str, Any]:
    base = _queue_query(caller, cmd)
    after = cursors.decode(cmd.cursor, base)
    now = rt.clock.iso()
    found: list[Doc] = []
    next_cursor: str | None = None
    for _ in range(_MAX_SCAN_PAGES):
        page = rt.store.query(base.after(after).take(cmd.limit + 1))
        for doc in page:
            if _expired(doc.data, now):  # expired tasks are never offered; page past them
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


def _expired(task: dict[str, Any], now: str) -> bool:
    expires = task.get("expiresAt")
    return isinstance(expires, str) and task.get("phase") == Phase.QUEUED.value and expires <= now


def get_task(rt: Runtime, caller: Caller, cmd: TaskRef) -> dict[str, Any]:
    task = rt.store.get(tenant_path(caller.tenant_id, "tasks", cmd.taskId))
    if task is None:
        raise NotFound(f"no task {cmd.taskId}", field="taskId")
    return {"success": True, "task": public(task, history=True)}


def _load(tx: Transaction, caller: Caller, task_id: str) -> tuple[str, dict[str, Any]]:
    path = tenant_path(caller.tenant_id, "tasks", task_id)
    task = tx.get(path)
    if task is None:
        raise NotFound(f"no task {task_id}", field="taskId")
    return path, task


def _move(task: dict[str, Any], event: TaskEvent, by: str, now: str, note: str | None = None) -> dict[str, Any]:
    """The status fields (and audit entry) for applying `event`; the state table decides."""
    current = TaskStatus(task["status"])
    target = transition(task["taskId"], current, event)
    changes: dict[str, Any] = {"status": target.value, "phase": PHASES[target].value, "updatedAt": now}
    if target is not current:
        entry = HistoryEntry(now, event.value, by, current.value, target.value, note)
        changes["history"] = with_history(task.get("history", []), entry)
    return changes


def claim_task(rt: Runtime, caller: Caller, cmd: ClaimTask) -> dict[str, Any]:
    now = rt.clock.iso()

    def claim(tx: Transaction) -> dict[str, Any]:
        path, task = _load(tx, caller, cmd.taskId)
        if task["target"] not in caller.addresses:
            raise Forbidden(
                f"task {cmd.taskId} is for '{task['target']}', and you ('{caller.program_id}') are not it "
                "or in that group",
                field="taskId",
            )
        if task["status"] != TaskStatus.CREATED.value and task.get("claimedBy"):
            raise Conflict(
                f"task {cmd.taskId} is already claimed by '{task['claimedBy']}' (since {task.get('claimedAt')})",
                code="ALREADY_CLAIMED", claimedBy=task["claimedBy"], status=task["status"],
            )
        if _expired(task, now):
            raise Conflict(f"task {cmd.taskId} expired at {task['expiresAt']}", code="TASK_EXPIRED")
        changes = _move(task, TaskEvent.CLAIM, caller.program_id, now)
        changes.update(claimedBy=caller.program_id, claimedAt=now, sessionId=cmd.sessionId)
        tx.update(path, changes)
        return {**task, **changes}

    task = rt.store.run_transaction(claim)
    return {
        "success": True, "taskId": task["taskId"], "title": task["title"], "status": task["status"],
        "claimedBy": task["claimedBy"], "instructions": task.get("instructions"),
    }


def report_progress(rt: Runtime, caller: Caller, cmd: ReportProgress) -> dict[str, Any]:
    now = rt.clock.iso()

    def progress(tx: Transaction) -> dict[str, Any]:
        path, task = _load(tx, caller, cmd.taskId)
        changes = _move(task, TaskEvent.PROGRESS, caller.program_id, now, cmd.note)
        if task.get("claimedBy") != caller.program_id:
            raise Forbidden(
                f"only the claimer ('{task.get('claimedBy')}') may report progress on task {cmd.taskId}",
                field="taskId",
            )
        if task["status"] == TaskStatus.CLAIMED.value:
            changes["startedAt"] = now
        if cmd.progress is not None:
            changes["progress"] = cmd.progress
        if cmd.note is not None:
            changes["progressNote"] = cmd.note
        tx.update(path, changes)
        return {**task, **changes}

    task = rt.store.run_transaction(progress)
    return {"success": True, "taskId": task["taskId"], "status": task["status"], "progress": task.get("progress")}


def complete_task(rt: Runtime, caller: Caller, cmd: CompleteTask) -> dict[str, Any]:
    now = rt.clock.iso()
    event = TaskEvent(cmd.completed_status.value)

    def complete(tx: Transaction) -> dict[str, Any]:
        path, task = _load(tx, caller, cmd.taskId)
        changes = _move(task, event, caller.program_id, now, cmd.error_code)
        allowed = {task.get("claimedBy"), task.get("source")}
        if caller.program_id not in allowed and not caller.admin:
            who = " or ".join(f"'{p}'" for p in (task.get("claimedBy"), task.get("source")) if p)
            raise Forbidden(
                f"only the claimer or creator of task {cmd.taskId} ({who}) or an admin key may complete it",
                field="taskId",
            )
        changes.update(
            completedStatus=cmd.completed_status.value, completedAt=now, completedBy=caller.program_id,
            result=cmd.result, tokensIn=cmd.tokens_in, tokensOut=cmd.tokens_out, costUsd=cmd.cost_usd,
            model=cmd.model, provider=cmd.provider, errorCode=cmd.error_code,
            errorClass=cmd.error_class.value if cmd.error_class else None,
        )
        tx.update(path, changes)
        return {**task, **changes}

    task = rt.store.run_transaction(complete)
    rt.bus.publish(Event("task.completed", caller.tenant_id, {"taskId": task["taskId"]}))
    return {
        "success": True, "taskId": task["taskId"], "status": task["status"],
        "completedStatus": task["completedStatus"], "message": f"Task marked as {task['status']}",
    }
