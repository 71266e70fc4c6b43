"""A tenant's plan: read it (cached briefly, since every call's rate limit needs it) and change it.

The plan document is `tenants/{t}/settings/plan`: `{"name": preset, "overrides": {field: n},
"updatedAt", "updatedBy"}`. A tenant without one has the runtime's default plan
(`Runtime.default_plan`: `self-hosted` embedded, `free` in the cloud).

Reads outside a transaction are cached in the process for `CACHE_SECONDS`: a change made here
applies at once in this process (the cache entry is replaced), and in other instances within
that long. The quota check reads the document inside its own transaction (`plan_in`), so it is
exact whatever the cache holds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cachebash.domain import plans
from cachebash.domain.plans import Plan
from cachebash.ports.store import Transaction
from cachebash.services.runtime import Runtime, tenant_path

CACHE_SECONDS = 5.0
_lock = threading.Lock()


def plan_path(tenant_id: str) -> str:
    return tenant_path(tenant_id, "settings", "plan")


def plan_of(rt: Runtime, tenant_id: str) -> Plan:
    now = time.monotonic()
    with _lock:
        hit = rt.plan_cache.get(tenant_id)
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[no-any-return]
    plan = plans.resolve(rt.store.get(plan_path(tenant_id)), rt.default_plan)
    with _lock:
        rt.plan_cache[tenant_id] = (now + CACHE_SECONDS, plan)
    return plan


def plan_in(tx: Transaction, rt: Runtime, tenant_id: str) -> Plan:
    """The plan as the transaction sees it (exact: for checks that must hold across instances)."""
    return plans.resolve(tx.get(plan_path(tenant_id)), rt.default_plan)


def set_plan(rt: Runtime, tenant_id: str, *, name: str | None = None, overrides: dict[str, Any] | None = None,
             clear: bool = False, by: str = "owner") -> dict[str, Any]:
    """Change the tenant's plan: a new preset `name` (keeping overrides unless `clear`) and/or
    `overrides` (a field set to None is unlimited; `clear` drops every earlier override)."""
    if name is not None:
        plans.preset(name)
    checked = plans.check_overrides(overrides or {})
    path = plan_path(tenant_id)

    def write(tx: Transaction) -> dict[str, Any]:
        stored = tx.get(path) or {}
        doc = {
            "name": name or stored.get("name") or rt.default_plan,
            "overrides": {**({} if clear else dict(stored.get("overrides") or {})), **checked},
            "updatedAt": rt.clock.iso(),
            "updatedBy": by,
        }
        tx.set(path, doc)
        return doc

    doc = rt.store.run_transaction(write)
    plan = plans.resolve(doc, rt.default_plan)
    with _lock:
        rt.plan_cache[tenant_id] = (time.monotonic() + CACHE_SECONDS, plan)
    return {"success": True, "tenantId": tenant_id, "plan": plan.to_dict(), "overrides": doc["overrides"]}
