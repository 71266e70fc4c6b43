"""Idempotency keys: a retried call (after a timeout, a dropped connection) returns the first
call's result and writes nothing new, yet delivers the first call's events if they are still
undelivered (its publish failed: the retry is what the agent does next).

The record is read and written inside the same transaction as the operation itself, so two
concurrent calls with one key cannot both act: one commits, the other sees its record.

A record is kept `RETENTION_SECONDS` after its call, whatever became of what the call made (a
task that expired, a message deleted since), then the sweeper deletes it (`expired_query`,
re-checked by `expired` in the deleting transaction, so a record a retry just wrote again stays).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cachebash.domain.errors import Code, Conflict
from cachebash.domain.inputs import Input
from cachebash.ports.store import AlreadyExists, Query
from cachebash.services.outbox import Changes, Pending, replayed_events, run, transact
from cachebash.services.runtime import Caller, Runtime, tenant_path

RETENTION_SECONDS = 24 * 3600
COLLECTION = "idempotency"

Body = Callable[[Changes], dict[str, Any]]


def record_path(caller: Caller, tool: str, key: str) -> str:
    digest = hashlib.sha256(f"{caller.program_id}\x00{tool}\x00{key}".encode()).hexdigest()[:40]
    return tenant_path(caller.tenant_id, COLLECTION, digest)


def _fingerprint(cmd: Input) -> str:
    return hashlib.sha256(cmd.model_dump_json(exclude={"idempotency_key"}).encode()).hexdigest()


def run_once(rt: Runtime, caller: Caller, tool: str, cmd: Input, body: Body) -> tuple[dict[str, Any], bool]:
    """Run `body` in a transaction, at most once per (program, tool, idempotency_key), and
    dispatch the events it emitted.

    Returns (result, replayed). `body` must do its reads before its writes, as always."""
    key: str | None = getattr(cmd, "idempotency_key", None)
    if key is None:
        return transact(rt, body), False
    path = record_path(caller, tool, key)
    fingerprint = _fingerprint(cmd)
    now = rt.clock.iso()

    def once(tx: Changes) -> tuple[dict[str, Any], bool, list[Pending]]:
        prior = tx.get(path)
        if prior is not None and prior["expiresAt"] > now:
            if prior["fingerprint"] != fingerprint:
                raise Conflict(
                    f"idempotency_key '{key}' was already used for a different {tool} call; use a new key",
                    field="idempotency_key", code=Code.IDEMPOTENCY_KEY_REUSED,
                )
            return dict(prior["result"]), True, replayed_events(tx, rt, prior.get("events") or [])
        result = body(tx)
        tx.set(path, {"tool": tool, "programId": caller.program_id, "fingerprint": fingerprint, "result": result,
                      "events": [p.path for p in tx.pending if p.path], "createdAt": now,
                      "expiresAt": rt.clock.iso(RETENTION_SECONDS)})
        return result, False, []

    try:
        (result, replayed, undelivered), pending = run(rt, once)
    except AlreadyExists:
        # A concurrent call with the same key won the race to create; run again to read its record.
        (result, replayed, undelivered), pending = run(rt, once)
    rt.dispatcher.dispatch([*pending, *undelivered])
    return result, replayed


def expired_query(tenant_id: str, cutoff: str) -> Query:
    """Records whose retention ran out by `cutoff` (the sweeper passes now)."""
    return Query(tenant_path(tenant_id, COLLECTION)).where("expiresAt", "<=", cutoff).order("expiresAt")


def expired(record: dict[str, Any], cutoff: str) -> bool:
    expires = record.get("expiresAt")
    return isinstance(expires, str) and expires <= cutoff
