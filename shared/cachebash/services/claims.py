"""Dispatch, the claim side: a claim is a lease.

Claiming grants a lease; heartbeats (`renew_claim`, `report_task_progress`) extend it; the
holder may hand the task back (`release_task`) or finish it (`complete_task`). A lease that
runs out, or a TRANSIENT failure, loses the attempt: the task goes back to the queue after
a back-off, or to the dead-letter state once its attempts are used up. A lease runs out at
its `leaseExpiresAt`, not when the sweeper notices: every call reads the task as it stands
then (`settle`), so a claim takes over a lapsed task and the stale holder is fenced out
before the sweeper has run. Every claim bumps the task's `claimToken`, which fences a stale
holder: its late calls are refused instead of overwriting a newer attempt. Every status
change goes through the state table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cachebash.domain.errors import Code, Conflict, Forbidden, InvalidInput, NotFound
from cachebash.domain.retry import RetryPolicy
from cachebash.domain.task_states import (
    PHASES,
    HistoryEntry,
    Phase,
    TaskEvent,
    TaskStatus,
    expired,
    offerable,
    transition,
    with_history,
)
from cachebash.domain.tasks import (
    ClaimNext,
    ClaimTask,
    CompleteTask,
    ErrorClass,
    HeldTaskRef,
    ReleaseTask,
    RenewClaim,
    ReportProgress,
)
from cachebash.ports.bus import Event
from cachebash.ports.clock import to_iso
from cachebash.ports.store import Transaction
from cachebash.services import activity, quota, relay, usage
from cachebash.services.events import MessagesDelivered, TaskFinished, TaskQueued
from cachebash.services.idempotency import run_once
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Caller, Runtime, tenant_path
from cachebash.services.tasks import queue_query

SYSTEM = "cachebash"
#: claim_next reads the queue in pages of CLAIM_PAGE, best first, and gives up (claimed: false)
#: after CLAIM_SCAN_LIMIT tasks none of which could be claimed (all backing off or past their ttl).
CLAIM_PAGE = 25
CLAIM_SCAN_LIMIT = 500
_LOST_EVENTS = (TaskEvent.RETRY.value, TaskEvent.DEAD_LETTER.value, TaskEvent.RELEASE.value)


def load(tx: Transaction, caller: Caller, task_id: str) -> tuple[str, dict[str, Any]]:
    path = tenant_path(caller.tenant_id, "tasks", task_id)
    task = tx.get(path)
    if task is None:
        raise NotFound(f"no task {task_id}", field="taskId")
    return path, task


def lease_lapsed(task: dict[str, Any], now: str) -> bool:
    """Whether the task is held on a lease that ran out at or before `now`."""
    expires = task.get("leaseExpiresAt")
    return _active(task) and isinstance(expires, str) and expires <= now


def settle(rt: Runtime, tenant_id: str, task: dict[str, Any],
           now: str) -> tuple[dict[str, Any], dict[str, Any], tuple[str, dict[str, Any]] | None]:
    """The task as it stands at `now`: a lease that ran out lost its attempt the moment it ran
    out (retried after the back-off counted from then, or dead-lettered), whether or not the
    sweeper has recorded that yet. The one place for the rule: the sweeper records it with
    this, and every call on a task acts on what this returns.

    Returns the task as of now, the changes that record the lapse (empty if there was none)
    and, for a dead letter, the RESULT message to its creator."""
    if not lease_lapsed(task, now):
        return task, {}, None
    reason = f"lease expired at {task['leaseExpiresAt']} while held by '{task['claimedBy']}'"
    changes, notice = lose_attempt(rt, tenant_id, task, SYSTEM, now, reason, since=task["leaseExpiresAt"])
    return {**task, **changes}, changes, notice


def load_settled(rt: Runtime, tx: Transaction, caller: Caller, task_id: str,
                 now: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """`load`, then `settle`: the task as it stands now and the changes to write with any change
    made to it. (A lapse that dead-letters the task leaves it finished, so every change is
    refused and the dead letter is the sweeper's to record.)"""
    path, task = load(tx, caller, task_id)
    task, lapse, _ = settle(rt, caller.tenant_id, task, now)
    return path, task, lapse


def move(task: dict[str, Any], event: TaskEvent, by: str, now: str, note: str | None = None) -> dict[str, Any]:
    """The status fields (and audit entry) for applying `event`; the state table decides."""
    current = TaskStatus(task["status"])
    target = transition(task["taskId"], current, event)
    changes: dict[str, Any] = {"status": target.value, "phase": PHASES[target].value, "updatedAt": now}
    if target is not current or event in (TaskEvent.RELEASE, TaskEvent.RETRY):
        entry = HistoryEntry(now, event.value, by, current.value, target.value, note)
        changes["history"] = with_history(task.get("history", []), entry)
    return changes


def _active(task: dict[str, Any]) -> bool:
    return task.get("phase") == Phase.ACTIVE.value


def _finished(task: dict[str, Any]) -> bool:
    return task.get("phase") in (Phase.DONE.value, Phase.DEAD.value)


def _held_before(task: dict[str, Any], program: str) -> bool:
    return any(h.get("event") == "claim" and h.get("by") == program for h in task.get("history", []))


def _claim_lost(task: dict[str, Any], caller: Caller, passed: int | None = None) -> Conflict:
    """CLAIM_LOST, saying who holds the task now and, for a claim_token that does not match,
    both tokens, so the agent knows whether to pass the current one or to let the task go."""
    mine = _active(task) and task.get("claimedBy") == caller.program_id
    if _active(task):
        holder = f"you ('{caller.program_id}')" if mine else f"'{task['claimedBy']}'"
        now_held = (f"it is now held by {holder}: the current token is {task.get('claimToken')} (attempt "
                    f"{task.get('attempt', 1)})")
    else:
        now_held = f"it is now '{task['status']}'" + (
            " and back in the queue: claim it again with claim_task" if task["status"] == "created" else "")
    if passed is not None and mine:
        message = (f"claim_token does not match task {task['taskId']}: you passed {passed}; {now_held}. If this "
                   f"session made that claim, pass claim_token {task.get('claimToken')} (the claimToken claim_task "
                   "returned); if another session of yours did, leave the task to it")
    else:
        why = task.get("lastError") or "the claim was handed back or lost"
        passed_token = "" if passed is None else f"you passed claim_token {passed}; "
        message = f"your claim on task {task['taskId']} is no longer valid ({why}); {passed_token}{now_held}"
    return Conflict(message, code=Code.CLAIM_LOST, field="claim_token" if passed is not None and mine else "taskId",
                    claimedBy=task.get("claimedBy"), claimToken=task.get("claimToken"), status=task["status"])


def check_holder(task: dict[str, Any], caller: Caller, claim_token: int | None) -> None:
    """Fencing: only the current holder of the current claim may act as the holder."""
    if _finished(task):
        return  # the state table refuses any change to a finished task, with a clearer message
    if claim_token is not None and (claim_token != task.get("claimToken") or not _active(task)):
        raise _claim_lost(task, caller, claim_token)
    if _active(task) and task.get("claimedBy") == caller.program_id:
        return
    if _held_before(task, caller.program_id):
        raise _claim_lost(task, caller)
    if _active(task):
        raise Forbidden(f"only the claimer ('{task.get('claimedBy')}') may do this on task {task['taskId']}",
                        field="taskId")
    # Not active and never held by the caller: let the state table explain (e.g. "claim it first").


def _lease(rt: Runtime, task: dict[str, Any], requested: int | None, now_offset: float = 0) -> dict[str, Any]:
    seconds = rt.policy.lease_for(requested or task.get("leaseSeconds"))
    return {"leaseSeconds": seconds, "leaseExpiresAt": rt.clock.iso(seconds + now_offset)}


def claim_changes(rt: Runtime, task: dict[str, Any], caller: Caller, session: str | None,
                   lease_seconds: int | None, now: str) -> dict[str, Any]:
    if task["target"] not in caller.addresses:
        raise Forbidden(
            f"task {task['taskId']} is for '{task['target']}', and you ('{caller.program_id}') are not it "
            "or in that group",
            field="taskId",
        )
    if _active(task):
        raise Conflict(
            f"task {task['taskId']} is already claimed by '{task['claimedBy']}' (since {task.get('claimedAt')})",
            code=Code.ALREADY_CLAIMED, claimedBy=task["claimedBy"], status=task["status"],
        )
    if expired(task, now):
        raise Conflict(f"task {task['taskId']} expired at {task['expiresAt']}", code=Code.TASK_EXPIRED)
    if not offerable(task, now):
        raise Conflict(f"task {task['taskId']} is waiting out a retry back-off until {task['availableAt']}",
                       code=Code.NOT_AVAILABLE_YET, availableAt=task["availableAt"])
    token = int(task.get("claimToken", 0)) + 1
    changes = move(task, TaskEvent.CLAIM, caller.program_id, now, f"claimToken {token}")
    changes.update(claimedBy=caller.program_id, claimedAt=now, sessionId=session, claimToken=token,
                   availableAt=None, **_lease(rt, task, lease_seconds))
    return changes


def claimed_view(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "success": True, "taskId": task["taskId"], "title": task["title"], "status": task["status"],
        "claimedBy": task["claimedBy"], "claimToken": task["claimToken"], "attempt": task.get("attempt", 1),
        "leaseExpiresAt": task["leaseExpiresAt"], "instructions": task.get("instructions"),
        "priority": task.get("priority"), "type": task.get("type"), "source": task.get("source"),
    }


def claim_task(rt: Runtime, caller: Caller, cmd: ClaimTask) -> dict[str, Any]:
    now = rt.clock.iso()

    def claim(tx: Transaction) -> dict[str, Any]:
        path, task, lapse = load_settled(rt, tx, caller, cmd.taskId, now)
        changes = {**lapse, **claim_changes(rt, task, caller, cmd.sessionId, cmd.lease_seconds, now)}
        tx.update(path, changes)
        usage.count(tx, rt, caller.tenant_id, task, changes)
        return claimed_view({**task, **changes})

    result, _ = run_once(rt, caller, "claim_task", cmd, claim)
    return activity.task_claimed(caller, result)


def claim_next(rt: Runtime, caller: Caller, cmd: ClaimNext) -> dict[str, Any]:
    """Take the best available task in one step, so two workers never race between list and claim.

    Reads the queue best first, page by page, past tasks that cannot be claimed yet (retry
    back-off, ttl passed), and claims the first claimable one in its own transaction, which
    reads it again: a task another worker took in between is passed over, never claimed twice."""
    if cmd.target and cmd.target not in caller.addresses:
        raise Forbidden(f"you ('{caller.program_id}') may only take tasks addressed to you or your groups",
                        field="target")
    query = queue_query(caller, cmd)
    after: tuple[Any, ...] | None = None
    for _ in range(CLAIM_SCAN_LIMIT // CLAIM_PAGE):
        page = rt.store.query(query.after(after).take(CLAIM_PAGE))
        now = rt.clock.iso()
        for doc in page:
            if offerable(doc.data, now) and (claimed := _claim_if_free(rt, caller, cmd, doc.path)):
                return activity.task_claimed(caller, {"success": True, "claimed": True, "taskId": claimed["taskId"],
                                                      "task": claimed})
        if len(page) < CLAIM_PAGE:
            return {"success": True, "claimed": False, "task": None}
        after = page[-1].cursor(query)
    return {"success": True, "claimed": False, "task": None,
            "note": f"none of the first {CLAIM_SCAN_LIMIT} tasks in the queue can be claimed now (each is waiting "
                    "out a retry back-off or past its ttl); call again later"}


def _claim_if_free(rt: Runtime, caller: Caller, cmd: ClaimNext, path: str) -> dict[str, Any] | None:
    """Claim the queued task at `path` if it still is claimable, else None (taken since it was listed)."""
    now = rt.clock.iso()

    def claim(tx: Transaction) -> dict[str, Any] | None:
        task = tx.get(path)
        if task is None or task.get("phase") != Phase.QUEUED.value or not offerable(task, now):
            return None
        changes = claim_changes(rt, task, caller, cmd.sessionId, cmd.lease_seconds, now)
        tx.update(path, changes)
        usage.count(tx, rt, caller.tenant_id, task, changes)
        return claimed_view({**task, **changes})

    return rt.store.run_transaction(claim)


def _as_holder(rt: Runtime, caller: Caller, cmd: HeldTaskRef, event: TaskEvent, note: str | None,
               extra: Callable[[dict[str, Any], str], dict[str, Any]],
               emits: Callable[[dict[str, Any]], list[Event]] = lambda _: []) -> tuple[dict[str, Any], dict[str, Any]]:
    """A change only the current holder may make: fenced, through the state table, plus `extra`
    fields and the events `emits` names for the task."""
    now = rt.clock.iso()

    def apply(tx: Changes) -> tuple[dict[str, Any], dict[str, Any]]:
        path, task, lapse = load_settled(rt, tx, caller, cmd.taskId, now)
        check_holder(task, caller, cmd.claim_token)
        changes = {**lapse, **move(task, event, caller.program_id, now, note)}
        changes.update(extra(task, now))
        tx.update(path, changes)
        for emitted in emits(task):
            tx.emit(emitted)
        return task, changes

    return transact(rt, apply)


def renew_claim(rt: Runtime, caller: Caller, cmd: RenewClaim) -> dict[str, Any]:
    task, changes = _as_holder(rt, caller, cmd, TaskEvent.RENEW, None,
                               lambda task, _: _lease(rt, task, cmd.lease_seconds))
    return {"success": True, "taskId": cmd.taskId, "status": changes["status"], "claimToken": task["claimToken"],
            "leaseExpiresAt": changes["leaseExpiresAt"]}


def _progress_fields(rt: Runtime, task: dict[str, Any], progress: int | None, note: str | None,
                     now: str) -> dict[str, Any]:
    """Progress is also a heartbeat: it extends the lease."""
    fields = _lease(rt, task, None)
    if task["status"] == TaskStatus.CLAIMED.value:
        fields["startedAt"] = now
    if progress is not None:
        fields["progress"] = progress
    if note is not None:
        fields["progressNote"] = note
    return fields


def progress_changes(rt: Runtime, task: dict[str, Any], by: str, progress: int | None, note: str | None,
                     now: str) -> dict[str, Any]:
    """A holder's progress report as task changes, for a holder already checked (a builder's
    update_sprint_story on the story whose task it holds)."""
    return {**move(task, TaskEvent.PROGRESS, by, now, note), **_progress_fields(rt, task, progress, note, now)}


def report_progress(rt: Runtime, caller: Caller, cmd: ReportProgress) -> dict[str, Any]:
    def extra(task: dict[str, Any], now: str) -> dict[str, Any]:
        return _progress_fields(rt, task, cmd.progress, cmd.note, now)

    task, changes = _as_holder(rt, caller, cmd, TaskEvent.PROGRESS, cmd.note, extra)
    return {"success": True, "taskId": cmd.taskId, "status": changes["status"],
            "progress": changes.get("progress", task.get("progress")), "leaseExpiresAt": changes["leaseExpiresAt"]}


def release_task(rt: Runtime, caller: Caller, cmd: ReleaseTask) -> dict[str, Any]:
    task, changes = _as_holder(rt, caller, cmd, TaskEvent.RELEASE, cmd.reason, lambda _, __: {
        "claimedBy": None, "leaseExpiresAt": None, "sessionId": None,
        "lastError": f"released by '{caller.program_id}': {cmd.reason}",
    }, lambda task: [TaskQueued(caller.tenant_id, task_id=cmd.taskId, target=task["target"])])
    return {"success": True, "taskId": cmd.taskId, "status": changes["status"]}


def complete_task(rt: Runtime, caller: Caller, cmd: CompleteTask) -> dict[str, Any]:
    now = rt.clock.iso()
    event = TaskEvent(cmd.completed_status.value)
    if cmd.error_class and event is not TaskEvent.FAILED:
        raise InvalidInput("error_class: only meaningful with completed_status FAILED", field="error_class")

    def complete(tx: Changes) -> dict[str, Any]:
        path, task, lapse = load_settled(rt, tx, caller, cmd.taskId, now)
        _check_completer(task, caller, cmd.claim_token)
        fields = dict(
            result=cmd.result, tokensIn=cmd.tokens_in, tokensOut=cmd.tokens_out, costUsd=cmd.cost_usd,
            model=cmd.model, provider=cmd.provider, errorCode=cmd.error_code,
            errorClass=cmd.error_class.value if cmd.error_class else None,
        )
        notice = None
        if event is TaskEvent.FAILED and cmd.error_class is ErrorClass.TRANSIENT and _active(task):
            changes, notice = lose_attempt(rt, caller.tenant_id, task, caller.program_id, now,
                                           f"TRANSIENT failure: {cmd.error_code or 'no error_code'}")
        else:
            changes = move(task, event, caller.program_id, now, cmd.error_code)
            changes.update(completedStatus=cmd.completed_status.value, completedAt=now, completedBy=caller.program_id,
                           leaseExpiresAt=None)
        changes = {**lapse, **changes, **fields}
        quota.closing(tx, caller.tenant_id, [(task, {**task, **changes})])
        tx.update(path, changes)
        usage.count(tx, rt, caller.tenant_id, task, changes)
        if notice:
            tx.set(*notice)
        _announce(tx, caller.tenant_id, {**task, **changes})
        return _completion_view({**task, **changes})

    return activity.task_finished(caller, run_once(rt, caller, "complete_task", cmd, complete)[0])


def _check_completer(task: dict[str, Any], caller: Caller, claim_token: int | None) -> None:
    """The holder, the task's creator or an admin may finish a task; a stale holder may not."""
    if claim_token is not None:
        check_holder(task, caller, claim_token)
        return
    if caller.program_id == task.get("source") or caller.admin or _finished(task):
        return
    if _active(task) and task.get("claimedBy") == caller.program_id:
        return
    if _held_before(task, caller.program_id):
        raise _claim_lost(task, caller)
    who = " or ".join(f"'{p}'" for p in (task.get("claimedBy"), task.get("source")) if p)
    raise Forbidden(f"only the claimer or creator of task {task['taskId']} ({who}) or an admin key may complete it",
                    field="taskId")


def _completion_view(task: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {"success": True, "taskId": task["taskId"], "status": task["status"]}
    if task["status"] == TaskStatus.CREATED.value:
        view.update(message=f"Transient failure recorded; the task will be retried (attempt {task['attempt']} "
                            f"of {task['maxAttempts']}) after {task['availableAt']}",
                    attempt=task["attempt"], availableAt=task["availableAt"])
    elif task["status"] == TaskStatus.DEAD.value:
        view.update(message=f"Attempts exhausted ({task.get('attempt')}); the task is dead-lettered and its "
                            "creator was told", attempt=task.get("attempt"))
    else:
        # The seeds' words for every outcome; status and completedStatus say which one it was.
        view.update(completedStatus=task["completedStatus"], message="Task marked as done")
    return view


def _announce(tx: Changes, tenant_id: str, task: dict[str, Any]) -> None:
    """A requeued task wakes its workers; a finished one tells listeners (a dead one, its creator too)."""
    task_id, status, creator = task["taskId"], task["status"], task.get("source")
    if status == TaskStatus.CREATED.value:
        tx.emit(TaskQueued(tenant_id, task_id=task_id, target=task["target"]))
        return
    tx.emit(TaskFinished(tenant_id, task_id=task_id, status=status))
    if status == TaskStatus.DEAD.value and creator:
        tx.emit(MessagesDelivered(tenant_id, targets=[creator]))


def lose_attempt(rt: Runtime, tenant_id: str, task: dict[str, Any], by: str, now: str, reason: str,
                 since: str | None = None) -> tuple[dict[str, Any], tuple[str, dict[str, Any]] | None]:
    """A lease ran out or the work failed transiently: retry after a back-off, or dead-letter.
    The back-off counts from `since`, when the attempt was lost (default: now).

    Returns the task's changes and, for a dead letter, the RESULT message to its creator
    (with a deterministic id, so a re-run writes the same message, not a second one)."""
    policy: RetryPolicy = rt.policy
    attempt = int(task.get("attempt", 1))
    event = policy.after_lost_attempt(attempt, int(task.get("maxAttempts", policy.max_attempts)))
    changes = move(task, event, by, now, reason)
    changes.update(claimedBy=None, leaseExpiresAt=None, sessionId=None, lastError=reason)
    if event is TaskEvent.RETRY:
        changes.update(attempt=attempt + 1, availableAt=_after(since or now, policy.backoff(attempt)))
        return changes, None
    changes.update(completedAt=now, completedStatus="DEAD_LETTER")
    text = (f"Task '{task['title']}' ({task['taskId']}) was dead-lettered after {attempt} attempt(s). "
            f"Last error: {reason}. Inspect it with get_task and create a new task if it still matters.")
    notice = relay.system_message(rt, tenant_id, f"dead-{task['taskId']}", task.get("source") or "", text,
                                  thread=task.get("threadId"))
    return changes, notice


def expire_lease(rt: Runtime, tenant_id: str, task_id: str) -> str | None:
    """Take back a task whose lease ran out. Returns its new status, or None if nothing was due
    (renewed, finished, or already taken back by another sweeper run)."""
    now = rt.clock.iso()
    path = tenant_path(tenant_id, "tasks", task_id)

    def expire(tx: Changes) -> str | None:
        task = tx.get(path)
        if task is None or not lease_lapsed(task, now):
            return None
        settled, changes, notice = settle(rt, tenant_id, task, now)
        quota.closing(tx, tenant_id, [(task, settled)])
        tx.update(path, changes)
        usage.count(tx, rt, tenant_id, task, changes)
        if notice:
            tx.set(*notice)
        _announce(tx, tenant_id, settled)
        return str(changes["status"])

    return activity.lease_lost(tenant_id, task_id, transact(rt, expire))


def _after(moment: str, seconds: float) -> str:
    return to_iso(datetime.fromisoformat(moment) + timedelta(seconds=seconds))


def expire_unclaimed(rt: Runtime, tenant_id: str, task_id: str) -> bool:
    """Close a queued task whose ttl ran out, so it stops occupying the head of the queue."""
    now = rt.clock.iso()
    path = tenant_path(tenant_id, "tasks", task_id)

    def close(tx: Changes) -> bool:
        task = tx.get(path)
        if task is None or not expired(task, now):
            return False
        changes = move(task, TaskEvent.EXPIRE, SYSTEM, now, f"ttl ran out at {task['expiresAt']}")
        changes.update(completedAt=now, completedStatus="EXPIRED")
        quota.closing(tx, tenant_id, [(task, {**task, **changes})])
        tx.update(path, changes)
        usage.count(tx, rt, tenant_id, task, changes)
        tx.emit(TaskFinished(tenant_id, task_id=task_id, status=changes["status"]))
        return True

    return transact(rt, close)
