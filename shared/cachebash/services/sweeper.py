"""Periodic housekeeping: take back expired leases, close expired tasks, deliver again the
events whose delivery failed (the outbox), apply the phone's answers whose trigger failed,
bring sprints in line with their tasks, close expired messages, send the "N more waiting"
pushes, and delete what nobody can use any more (delivered messages, spent group records,
idempotency records, old push logs and counters), so storage does not grow for ever.

Embedded, a timer in the server process calls `sweep`; in the cloud the scheduled
`sweeper` function does. Each step is its own small transaction that re-checks the
document, so overlapping sweeps (two instances, a retried trigger) never act twice. Every
step is bounded: at most `BATCH` documents per query, and the deleting steps at most
`BATCHES` queries per tenant and sweep; what is left waits for the next sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from cachebash.domain.messages import DELIVERED_RETENTION_SECONDS
from cachebash.domain.task_states import Phase
from cachebash.ports.store import Query, Transaction
from cachebash.services import app_answers, claims, idempotency, interrupts, outbox, relay, sprint_flow, usage
from cachebash.services.runtime import Runtime, tenant_path

BATCH = 200
BATCHES = 5


@dataclass(frozen=True)
class Purge:
    """One kind of dead document: deleted once `age` seconds past the time its query ranges over."""

    count: str  # its key in the sweep's counts
    age: float
    query: Callable[[str, str], Query]  # (tenant, cutoff) -> the due documents, ordered by the range field
    due: Callable[[dict[str, Any], str], bool]  # (document, cutoff) -> still due, re-checked before deleting


PURGES: tuple[Purge, ...] = (
    Purge("messagesForgotten", DELIVERED_RETENTION_SECONDS, relay.forgettable_query, relay.forgettable),
    Purge("multicastsForgotten", 0, relay.spent_multicasts_query, relay.spent_multicast),
    Purge("idempotencyPurged", 0, idempotency.expired_query, idempotency.expired),
    Purge("pushLogForgotten", interrupts.PUSH_LOG_RETENTION_SECONDS, interrupts.old_log_query, interrupts.old_log),
    Purge("pushUsageForgotten", interrupts.USAGE_RETENTION_SECONDS, interrupts.old_usage_query,
          interrupts.old_usage),
)


def tenant_ids(rt: Runtime) -> list[str]:
    return [doc.id for doc in rt.store.query(Query("tenants"))]


def sweep(rt: Runtime) -> dict[str, int]:
    counts = {"leasesExpired": 0, "deadLettered": 0, "tasksExpired": 0, "eventsRedelivered": 0,
              "answersApplied": 0, "sprintsRepaired": 0, "messagesExpired": 0, "pushSummaries": 0, "usageFolded": 0,
              **{purge.count: 0 for purge in PURGES}}
    for tenant_id in tenant_ids(rt):
        _tasks(rt, tenant_id, counts)
        counts["eventsRedelivered"] += outbox.redeliver(rt, tenant_id)
        counts["answersApplied"] += app_answers.apply_pending(rt, tenant_id)
        counts["sprintsRepaired"] += sprint_flow.repair(rt, tenant_id)
        counts["messagesExpired"] += _batches(partial(relay.close_expired, rt, tenant_id, BATCH))
        counts["pushSummaries"] += interrupts.summarize(rt, tenant_id)
        counts["usageFolded"] += usage.compact(rt, tenant_id)
        for purge in PURGES:
            counts[purge.count] += _batches(partial(_purge, rt, tenant_id, purge))
    return counts


def _tasks(rt: Runtime, tenant_id: str, counts: dict[str, int]) -> None:
    now = rt.clock.iso()
    tasks = Query(tenant_path(tenant_id, "tasks"))
    lapsed = tasks.where("phase", "==", Phase.ACTIVE.value).where("leaseExpiresAt", "<=", now)
    for doc in rt.store.query(lapsed.order("leaseExpiresAt").take(BATCH)):
        status = claims.expire_lease(rt, tenant_id, doc.id)
        if status == "dead":
            counts["deadLettered"] += 1
        elif status:
            counts["leasesExpired"] += 1
    stale = tasks.where("phase", "==", Phase.QUEUED.value).where("expiresAt", "<=", now)
    for doc in rt.store.query(stale.order("expiresAt").take(BATCH)):
        counts["tasksExpired"] += claims.expire_unclaimed(rt, tenant_id, doc.id)


def _batches(step: Callable[[], int]) -> int:
    """Run a step that handles up to BATCH documents until it handles fewer, at most BATCHES times."""
    total = 0
    for _ in range(BATCHES):
        done = step()
        total += done
        if done < BATCH:
            break
    return total


def _purge(rt: Runtime, tenant_id: str, purge: Purge) -> int:
    """Delete one batch of due documents, re-checking each in the deleting transaction."""
    cutoff = rt.clock.iso(-purge.age)
    paths = [doc.path for doc in rt.store.query(purge.query(tenant_id, cutoff).take(BATCH))]
    if not paths:
        return 0

    def delete(tx: Transaction) -> int:
        due = [p for p, d in zip(paths, tx.get_all(paths), strict=True) if d is not None and purge.due(d, cutoff)]
        for path in due:
            tx.delete(path)
        return len(due)

    return rt.store.run_transaction(delete)
