"""The person's view of the fleet: every program with its groups, keys, the work it holds now,
when it was last seen (its keys' throttled `lastUsedAt`) and its program state."""

from __future__ import annotations

from typing import Any

from cachebash.domain.task_states import Phase
from cachebash.ports.store import Query
from cachebash.services import keys
from cachebash.services.directory import all_programs, group_members, known_groups
from cachebash.services.runtime import Runtime, tenant_path

HOLDING_LIMIT = 500


def _holding(rt: Runtime, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    query = Query(tenant_path(tenant_id, "tasks")).where("phase", "==", Phase.ACTIVE.value).take(HOLDING_LIMIT)
    held: dict[str, list[dict[str, Any]]] = {}
    for doc in rt.store.query(query):
        task = doc.data
        held.setdefault(task.get("claimedBy") or "", []).append(
            {"taskId": task["taskId"], "title": task.get("title"), "status": task["status"],
             "progress": task.get("progress"), "leaseExpiresAt": task.get("leaseExpiresAt")})
    return held


def _states(rt: Runtime, tenant_id: str) -> dict[str, dict[str, Any]]:
    docs = rt.store.query(Query(tenant_path(tenant_id, "program_state")))
    return {d.id: d.data for d in docs}


def agents(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    programs = all_programs(rt, tenant_id)
    tenant_keys = keys.list_tenant_keys(rt, tenant_id)["keys"]
    held, states = _holding(rt, tenant_id), _states(rt, tenant_id)
    rows = []
    for program in sorted(programs, key=lambda p: p["programId"]):
        pid = program["programId"]
        mine = [{k: key.get(k) for k in ("keyId", "label", "admin", "active", "createdAt", "lastUsedAt")}
                for key in tenant_keys if key["programId"] == pid]
        seen = max((k["lastUsedAt"] for k in mine if k.get("lastUsedAt")), default=None)
        state = states.get(pid)
        rows.append({"programId": pid, "groups": program.get("groups", []), "keys": mine,
                     "holding": held.get(pid, []), "lastSeenAt": seen,
                     "state": state.get("contextSummary") if state else None,
                     "stateUpdatedAt": state.get("updatedAt") if state else None})
    groups = [{"name": g, "members": group_members(programs, g)} for g in sorted(known_groups(programs))]
    return {"success": True, "agents": rows, "groups": groups}
