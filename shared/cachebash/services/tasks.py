"""Dispatch, the queue side: create tasks, list a queue, read one task.

What happens to a task once claimed (leases, completion, retries) is in `claims`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cachebash.domain.errors import InvalidInput, NotFound
from cachebash.domain.programs import HUMAN
from cachebash.domain.task_states import PHASES, HistoryEntry, Phase, TaskStatus, offerable, with_history
from cachebash.domain.tasks import Action, ClaimNext, CreateTask, GetTasks, StatusFilter, TaskRef, queue_rank
from cachebash.ports.store import MAX_IN_VALUES, Doc, Query
from cachebash.services import activity, cursors, interrupt_marks, interrupts, limits, presence, quota, usage
from cachebash.services.directory import all_programs, members_among
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
    "leaseExpiresAt", "availableAt", "lastError", "sprintId", "storyId", "answer", "answeredAt", "fallbackReason",
)


def public(task: dict[str, Any], *, history: bool = False) -> dict[str, Any]:
    view = {k: task[k] for k in _PUBLIC_FIELDS if task.get(k) is not None}
    if history:
        view["history"] = task.get("history", [])
    return view


def create_task(rt: Runtime, caller: Caller, cmd: CreateTask) -> dict[str, Any]:
    caller.check_source(cmd.source)
    limits.check_size(rt, caller.tenant_id, "instructions", cmd.instructions)
    route = _route(rt, caller, cmd.target, cmd.fallback)
    target = route.target
    interrupt = cmd.action is Action.INTERRUPT
    now = rt.clock.iso()
    task_id = new_id()
    status = TaskStatus.CREATED
    task: dict[str, Any] = {
        "taskId": task_id,
        "title": cmd.title,
        "instructions": cmd.instructions,
        "type": cmd.type.value,
        "priority": cmd.priority.value,
        "priorityRank": queue_rank(cmd.priority, cmd.action),
        "action": cmd.action.value,
        "status": status.value,
        "phase": PHASES[status].value,
        "target": target,
        "originalTarget": route.original,
        "fallbackReason": route.reason,
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
    if route.original:
        result.update(originalTarget=route.original, fallbackReason=route.reason)
    if route.warning:
        result["warning"] = route.warning

    def write(tx: Changes) -> dict[str, Any]:
        marked = interrupt_marks.read_marked(tx, caller.tenant_id, route.members) if interrupt else []
        quota.admit(tx, rt, caller.tenant_id, [task])
        tx.create(path, task)
        usage.count(tx, rt, caller.tenant_id, None, task)
        interrupt_marks.write_marks(tx, marked, task_id)
        tx.emit(TaskQueued(caller.tenant_id, task_id=task_id, target=target, interrupt=interrupt))
        if push := interrupts.task_push(caller.tenant_id, task):
            tx.emit(push)
        return result

    created = run_once(rt, caller, "create_task", cmd, write)[0]
    if interrupt:
        interrupt_marks.forget_marked(rt, caller.tenant_id, route.members)
    return activity.task_created(caller, created)


@dataclass(frozen=True)
class _Route:
    target: str
    members: list[str] = field(default_factory=list)
    original: str | None = None  # the target asked for, when the fallback got the task
    reason: str | None = None  # why the fallback got it
    warning: str | None = None


def _route(rt: Runtime, caller: Caller, target: str, fallback: str | None) -> _Route:
    """The fallback gets the task when nobody answers to `target`, or when nobody of `target`
    is available (services/presence) and somebody of the fallback is."""
    programs = all_programs(rt, caller.tenant_id)
    members = members_among(programs, target)
    if not fallback:
        return _Route(target, members, warning=None if members else _unknown(target))
    backup = members_among(programs, fallback)
    if not members:
        if backup:
            return _Route(fallback, backup, target, f"no program or group named '{target}' exists")
        return _Route(target, warning=_unknown(target))
    by_id = {p["programId"]: p for p in programs}
    mine = [by_id[m] for m in members if m in by_id]
    if target == HUMAN or any(presence.available(rt, p) for p in mine):
        return _Route(target, members)
    reason = presence.unavailable_reason(rt, target, mine)
    if fallback == HUMAN or any(presence.available(rt, by_id[m]) for m in backup if m in by_id):
        return _Route(fallback, backup, target, reason)
    return _Route(target, members, warning=f"{reason}, and the fallback '{fallback}' is unavailable too; the task "
                                            f"waits for '{target}'")


def _unknown(target: str) -> str:
    return (f"no program or group member named '{target}' exists yet; the task waits until a program "
            f"with that id (or in that group) calls get_tasks")


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
    result = {"success": True, "hasTasks": bool(tasks), "count": len(tasks), "tasks": tasks, "nextCursor": next_cursor}
    asked_one_type = cmd.type != "all" and cmd.status is StatusFilter.CREATED and cmd.cursor is None
    if not tasks and asked_one_type and (note := _other_types_waiting(rt, caller, cmd, now)):
        result["note"] = note
    return result


#: An empty get_tasks looks this far into the unfiltered queue for tasks of other types.
OTHER_TYPES_SCAN = 50


def _other_types_waiting(rt: Runtime, caller: Caller, cmd: GetTasks, now: str) -> str | None:
    """When a type filter found nothing: what of other types waits (one more query, only on an
    empty first page), e.g. sprint stories a worker would miss with the default type 'task'."""
    docs = rt.store.query(queue_query(caller, cmd.model_copy(update={"type": "all"})).take(OTHER_TYPES_SCAN))
    waiting = [d.data for d in docs if offerable(d.data, now)]
    if not waiting:
        return None
    kinds = Counter(str(t.get("type")) for t in waiting)
    listed = ("at least " if len(docs) == OTHER_TYPES_SCAN else "") + " and ".join(
        f"{n} {kind}" for kind, n in sorted(kinds.items()))
    whom = "you" if all(t.get("target") == caller.program_id for t in waiting) else "you or your groups"
    if cmd.target:
        whom = f"'{cmd.target}'"
    passes = ", ".join(f"'{kind}'" for kind in sorted(kinds))
    return (f"no '{cmd.type}' tasks, but {listed} task(s) wait for {whom}; pass type {passes} or 'all' "
            "(claim_next takes any type by default)")


def get_task(rt: Runtime, caller: Caller, cmd: TaskRef) -> dict[str, Any]:
    task = rt.store.get(tenant_path(caller.tenant_id, "tasks", cmd.taskId))
    if task is None:
        raise NotFound(f"no task {cmd.taskId}", field="taskId")
    return {"success": True, "task": public(task, history=True)}
