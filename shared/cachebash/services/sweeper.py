"""Periodic housekeeping: take back expired leases, close expired tasks, deliver again the
events whose delivery failed (the outbox), bring sprints in line with their tasks, forget old
idempotency records.

Embedded, a timer in the server process calls `sweep`; in the cloud the scheduled
`sweeper` function does. Each step is its own small transaction that re-checks the
document, so overlapping sweeps (two instances, a retried trigger) never act twice.
"""

from __future__ import annotations

from functools import partial

from cachebash.domain.task_states import Phase
from cachebash.ports.store import Query
from cachebash.services import claims, outbox, sprint_flow
from cachebash.services.idempotency import COLLECTION as IDEMPOTENCY
from cachebash.services.runtime import Runtime, tenant_path

BATCH = 200


def tenant_ids(rt: Runtime) -> list[str]:
    return [doc.id for doc in rt.store.query(Query("tenants"))]


def sweep(rt: Runtime) -> dict[str, int]:
    counts = {"leasesExpired": 0, "deadLettered": 0, "tasksExpired": 0, "eventsRedelivered": 0,
              "idempotencyPurged": 0, "sprintsRepaired": 0}
    for tenant_id in tenant_ids(rt):
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
        counts["eventsRedelivered"] += outbox.redeliver(rt, tenant_id)
        counts["sprintsRepaired"] += sprint_flow.repair(rt, tenant_id)
        old = Query(tenant_path(tenant_id, IDEMPOTENCY)).where("expiresAt", "<=", now).take(BATCH)
        paths = [doc.path for doc in rt.store.query(old)]
        if paths:
            rt.store.run_transaction(partial(outbox.delete_all, paths=paths))
            counts["idempotencyPurged"] += len(paths)
    return counts
