"""Presence: when each program, and each session of it, was last seen, and so whether it is
available.

Where it lives: the program's own document (`tenants/{t}/programs/{p}`), which authentication
reads on every call anyway (for the groups). So deciding whether a write is due costs no read;
the write itself happens at most once a minute per program (with the key's `lastUsedAt`, in the
same transaction) and per session. A session is what an agent names in `sessionId` (claim_task,
claim_next, get_messages); the document keeps the `MAX_SESSIONS` most recently seen.

The rule (one place, used by routing and by list_programs): a program is *available* when it,
or any of its sessions, was seen within `Runtime.away_seconds` (default 10 min). A program that
was never seen counts from when it was registered, so a key made a minute ago is not yet away.
A group is available when any member is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cachebash.domain.programs import MAX_SESSIONS, SEEN_EVERY_SECONDS
from cachebash.ports.store import Transaction
from cachebash.services import interrupt_marks
from cachebash.services.directory import program_path
from cachebash.services.runtime import Caller, Runtime


def due(last: str | None, rt: Runtime) -> bool:
    """Whether a presence time stored as `last` is old enough to be written again."""
    return not (isinstance(last, str) and last > rt.clock.iso(-SEEN_EVERY_SECONDS))


def last_seen(program: Mapping[str, Any]) -> str | None:
    """The latest of the program's own time and its sessions' (a session is seen by its program too)."""
    times = [t for t in (program.get("lastSeenAt"), *(s.get("seenAt") for s in _sessions(program))) if t]
    return max(times, default=None)


def live_sessions(rt: Runtime, program: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    cutoff = away_cutoff(rt)
    return [s for s in _sessions(program) if str(s.get("seenAt", "")) > cutoff]


def away_cutoff(rt: Runtime) -> str:
    return rt.clock.iso(-rt.away_seconds)


def available(rt: Runtime, program: Mapping[str, Any]) -> bool:
    seen = last_seen(program) or program.get("createdAt")
    return isinstance(seen, str) and seen > away_cutoff(rt)


def unavailable_reason(rt: Runtime, name: str, programs: Sequence[Mapping[str, Any]]) -> str:
    """Why `name` (a program, or a group of `programs`) counts as unavailable, for the creator."""
    seen = max((last_seen(p) or "" for p in programs), default="") or None
    single = len(programs) == 1 and programs[0].get("programId") == name
    who = f"'{name}' was not" if single else f"no member of '{name}' was"
    return (f"{who} seen in the last {rt.away_seconds:.0f} s ({f'last seen {seen}' if seen else 'never seen'}) "
            "and no session of it is live")


def _sessions(program: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in program.get("sessions") or () if isinstance(s, Mapping) and s.get("sessionId")]


def note_key_and_program(rt: Runtime, key_path: str, key: Mapping[str, Any], program_id_path: str | None,
                         program: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """At authentication: the key's `lastUsedAt` and the program's `lastSeenAt`, each if due, in
    one transaction (blind updates: nothing is read). What it wrote to each (the caller updates
    what the key cache holds of them), or None."""
    key_due = due(key.get("lastUsedAt"), rt)
    program_due = program_id_path is not None and due(program.get("lastSeenAt"), rt)
    if not (key_due or program_due):
        return None
    now = rt.clock.iso()

    def write(tx: Transaction) -> None:
        if key_due:
            tx.update(key_path, {"lastUsedAt": now})
        if program_due and program_id_path is not None:
            tx.update(program_id_path, {"lastSeenAt": now})

    rt.store.run_transaction(write)
    return ({"lastUsedAt": now} if key_due else {}), ({"lastSeenAt": now} if program_due else {})


def note_session(rt: Runtime, caller: Caller, session_id: str | None) -> None:
    """A tool call naming `sessionId`: remember the session as seen, if due."""
    if not session_id or not due(dict(caller.marks.sessions).get(session_id), rt):
        return
    now, path = rt.clock.iso(), program_path(caller.tenant_id, caller.program_id)

    def write(tx: Transaction) -> None:
        program = tx.get(path)
        if program is None:
            return
        others = [s for s in _sessions(program) if s["sessionId"] != session_id]
        sessions = sorted([{"sessionId": session_id, "seenAt": now}, *others], key=lambda s: s["seenAt"],
                          reverse=True)[:MAX_SESSIONS]
        tx.update(path, {"sessions": sessions, "lastSeenAt": now})

    rt.store.run_transaction(write)
    rt.key_cache.forget_program(caller.tenant_id, caller.program_id)


def after_call(rt: Runtime, caller: Caller, cmd: Any, body: dict[str, Any]) -> dict[str, Any]:
    """What every successful tool call does besides its own work: note the session it names, and
    show the caller's pending interrupts (both free unless something is due or pending)."""
    note_session(rt, caller, getattr(cmd, "sessionId", None))
    return interrupt_marks.attach(rt, caller, body)
