"""The fleet: every program with its groups, the work it holds now, when it was last seen
(services/presence) and its program state; for agents (list_programs) and the console."""

from __future__ import annotations

from typing import Any

from cachebash.domain.task_states import Phase
from cachebash.ports.store import Query
from cachebash.services import keys, presence
from cachebash.services.directory import all_programs, group_members, known_groups
from cachebash.services.runtime import Caller, Runtime, tenant_path

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


def programs(rt: Runtime, tenant_id: str, found: list[dict[str, Any]] | None = None,
             states: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every program of the tenant: groups, presence (services/presence), what it holds now and
    its program state's lastTask. What an agent sees (list_programs) and the console builds on
    (passing what it has read already)."""
    held = _holding(rt, tenant_id)
    states = _states(rt, tenant_id) if states is None else states
    rows = []
    for program in sorted(all_programs(rt, tenant_id) if found is None else found, key=lambda p: p["programId"]):
        pid = program["programId"]
        summary = (states.get(pid) or {}).get("contextSummary") or {}
        rows.append({"programId": pid, "groups": program.get("groups", []),
                     "lastSeenAt": presence.last_seen(program), "available": presence.available(rt, program),
                     "liveSessions": presence.live_sessions(rt, program), "holding": held.get(pid, []),
                     "lastTask": summary.get("lastTask")})
    return rows


def list_programs(rt: Runtime, caller: Caller) -> dict[str, Any]:
    rows = programs(rt, caller.tenant_id)
    return {"success": True, "count": len(rows), "programs": rows, "awaySeconds": rt.away_seconds}


def agents(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    """The console's fleet: `programs`, plus each program's keys and whole program state."""
    tenant_keys = keys.list_tenant_keys(rt, tenant_id)["keys"]
    found, states = all_programs(rt, tenant_id), _states(rt, tenant_id)
    rows = []
    for row in programs(rt, tenant_id, found, states):
        pid = row["programId"]
        mine = [{k: key.get(k) for k in ("keyId", "label", "admin", "active", "createdAt", "lastUsedAt")}
                for key in tenant_keys if key["programId"] == pid]
        state = states.get(pid)
        rows.append({**row, "keys": mine, "state": state.get("contextSummary") if state else None,
                     "stateUpdatedAt": state.get("updatedAt") if state else None})
    groups = [{"name": g, "members": group_members(found, g)} for g in sorted(known_groups(found))]
    return {"success": True, "agents": rows, "groups": groups}
