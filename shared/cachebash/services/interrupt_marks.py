"""Interrupts reach their target at once, whatever it is doing.

A task created with action `interrupt` is ordered before every other task of its queue
(`domain.tasks.queue_rank`), wakes its target's waiting get_tasks, claim_next and get_messages
(`TaskQueued.interrupt`, see services/wakeups), and is *marked* on the program document of
each program it is for (the target, or every member of the target group), in the transaction
that creates it. Authentication reads that document on every call anyway (`Caller.marks`),
so a call of a program with nothing pending costs nothing more. A program with marks pays one
batch read of those tasks per call, and every tool result it gets (and its next get_messages)
shows the ones still waiting to be claimed under `interrupts`. A mark is a hint, the task the
truth: the first call that finds its task claimed, finished or expired drops it (one write).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cachebash.domain.programs import HUMAN, MAX_INTERRUPT_MARKS
from cachebash.domain.task_states import Phase, backing_off, expired
from cachebash.ports.store import Transaction
from cachebash.services.directory import program_path
from cachebash.services.runtime import Caller, Runtime, tenant_path

FIELD = "interrupts"
_SHOWN = ("taskId", "title", "source", "target", "priority", "createdAt")


def read_marked(tx: Transaction, tenant_id: str, members: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """The read step of marking (Firestore transactions read before they write): the program
    documents of `members` that exist."""
    paths = [program_path(tenant_id, m) for m in dict.fromkeys(members) if m != HUMAN]
    found = tx.get_all(paths) if paths else []
    return [(path, doc) for path, doc in zip(paths, found, strict=True) if doc is not None]


def write_marks(tx: Transaction, programs: list[tuple[str, dict[str, Any]]], task_id: str) -> None:
    for path, doc in programs:
        marks = [i for i in doc.get(FIELD) or () if i != task_id]
        tx.update(path, {FIELD: [*marks, task_id][-MAX_INTERRUPT_MARKS:]})


def attach(rt: Runtime, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the caller's pending interrupts under `interrupts`, if it has any."""
    if FIELD in body or not caller.marks.interrupts or body.get("success") is not True:
        return body
    shown = pending(rt, caller, caller.marks.interrupts)
    return {**body, FIELD: shown} if shown else body


def for_inbox(rt: Runtime, caller: Caller, fresh: bool) -> list[dict[str, Any]]:
    """get_messages' `interrupts`. A call that may have waited (`fresh`) reads the marks again,
    since one may have arrived after authentication; any other uses what authentication read."""
    marks = caller.marks.interrupts
    if fresh:
        program = rt.store.get(program_path(caller.tenant_id, caller.program_id)) or {}
        marks = tuple(program.get(FIELD) or ())
    return pending(rt, caller, marks) if marks else []


def pending(rt: Runtime, caller: Caller, marks: Sequence[str]) -> list[dict[str, Any]]:
    """The marked interrupts still waiting for the caller to claim, oldest first; drops the
    marks of those that no longer wait (a task in a retry back-off keeps its mark)."""
    paths = [tenant_path(caller.tenant_id, "tasks", task_id) for task_id in marks]
    tasks = rt.store.run_transaction(lambda tx: tx.get_all(paths))
    now = rt.clock.iso()
    shown, stale = [], []
    for task_id, task in zip(marks, tasks, strict=True):
        if (task is None or task.get("phase") != Phase.QUEUED.value or expired(task, now)
                or task.get("target") not in caller.addresses):
            stale.append(task_id)
        elif not backing_off(task, now):
            shown.append({k: task[k] for k in _SHOWN if task.get(k) is not None})
    if stale:
        _drop(rt, caller, set(stale))
    return sorted(shown, key=lambda t: str(t.get("createdAt")))


def _drop(rt: Runtime, caller: Caller, stale: set[str]) -> None:
    path = program_path(caller.tenant_id, caller.program_id)

    def write(tx: Transaction) -> None:
        program = tx.get(path)
        if program is not None:
            tx.update(path, {FIELD: [i for i in program.get(FIELD) or () if i not in stale]})

    rt.store.run_transaction(write)
    rt.key_cache.forget_program(caller.tenant_id, caller.program_id)


def forget_marked(rt: Runtime, tenant_id: str, members: Sequence[str]) -> None:
    """After a commit that marked `members`: what the key cache holds of their program documents
    is stale, so their next call reads the marks (at once in this process; elsewhere within the
    key cache's TTL)."""
    for member in dict.fromkeys(members):
        rt.key_cache.forget_program(tenant_id, member)
