"""Who exists in a tenant: programs, the groups they belong to, and target resolution."""

from __future__ import annotations

from typing import Any

from cachebash.domain.errors import InvalidInput
from cachebash.domain.programs import ALL_GROUP, BUILTIN_GROUPS, HUMAN, MAX_GROUPS_PER_PROGRAM, RESERVED_NAMES
from cachebash.ports.store import Query, Transaction
from cachebash.services.runtime import Caller, Runtime, tenant_path


def program_path(tenant_id: str, program_id: str) -> str:
    return tenant_path(tenant_id, "programs", program_id)


def programs_query(tenant_id: str) -> Query:
    return Query(tenant_path(tenant_id, "programs"))


def all_programs(rt: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    return [doc.data for doc in rt.store.query(programs_query(tenant_id))]


def group_members(programs: list[dict[str, Any]], group: str) -> list[str]:
    if group == ALL_GROUP:
        return sorted(p["programId"] for p in programs)
    return sorted(p["programId"] for p in programs if group in p.get("groups", []))


def known_groups(programs: list[dict[str, Any]]) -> set[str]:
    return {*BUILTIN_GROUPS, ALL_GROUP, *(g for p in programs for g in p.get("groups", []))}


def resolve_target(rt: Runtime, caller: Caller, target: str) -> tuple[str, bool, list[str]]:
    """Classify a target: (name, is_group, members). Members is empty for an unknown name.

    Most sends name a program: a count and a read, not the whole directory, and a name found
    to be a program and no group is remembered (`Runtime.direct_targets`) for
    `key_cache.TTL_SECONDS`, so a conversation's later sends read nothing. Only that is
    remembered: a group's members and an unknown name are read at every send, so no member
    misses a group message and a new program is found at once. A name that becomes a group in
    another process is seen here as late as a key's new groups are (README, Limits)."""
    if target == HUMAN:
        return target, False, [HUMAN]
    if target not in BUILTIN_GROUPS and target != ALL_GROUP:
        key, now = (caller.tenant_id, target), rt.clock.now()
        if rt.direct_targets.get(key, now):
            return target, False, [target]
        generation = rt.direct_targets.generation
        in_group = programs_query(caller.tenant_id).where("groups", "array_contains", target).take(1)
        if not rt.store.count(in_group):
            exists = rt.store.get(program_path(caller.tenant_id, target)) is not None
            if exists:
                rt.direct_targets.put(key, True, now, generation)
            return target, False, [target] if exists else []
    programs = all_programs(rt, caller.tenant_id)
    return target, target in known_groups(programs), members_among(programs, target)


def members_among(programs: list[dict[str, Any]], target: str) -> list[str]:
    """Who `target` (a program, a group, `human`) reaches among `programs`; empty for an unknown name."""
    if target == HUMAN:
        return [HUMAN]
    if target in known_groups(programs):
        return group_members(programs, target)
    return [target] if any(p["programId"] == target for p in programs) else []


def list_groups(rt: Runtime, caller: Caller) -> dict[str, Any]:
    programs = all_programs(rt, caller.tenant_id)
    groups = [
        {
            "name": name,
            "builtin": name in BUILTIN_GROUPS or name == ALL_GROUP,
            "members": group_members(programs, name),
        }
        for name in sorted(known_groups(programs), key=lambda g: (g == ALL_GROUP, g not in BUILTIN_GROUPS, g))
    ]
    return {"success": True, "count": len(groups), "groups": groups}


def groups_changed(rt: Runtime, tenant_id: str) -> None:
    """After a commit that may have added groups in the tenant: a name remembered as a program
    only may now be a group too (groups win, `resolve_target`)."""
    rt.direct_targets.forget(lambda key: key[0] == tenant_id)


def register_program(
    tx: Transaction, tenant_id: str, program_id: str, groups: list[str], now: str
) -> tuple[str, dict[str, Any]]:
    """Read step of adding a program (and its groups); returns the write for the caller to make.

    Split this way because Firestore transactions must read everything before writing."""
    if program_id in RESERVED_NAMES:
        raise InvalidInput(f"programId: '{program_id}' is a reserved group name", field="programId")
    for group in groups:
        if group == ALL_GROUP:
            raise InvalidInput("groups: every program is in 'all' already", field="groups")
    path = program_path(tenant_id, program_id)
    existing = tx.get(path)
    before = set((existing or {}).get("groups", []))
    merged = sorted({*before, *groups})
    if len(merged) > MAX_GROUPS_PER_PROGRAM:
        raise InvalidInput(
            f"groups: a program is in at most {MAX_GROUPS_PER_PROGRAM} groups (its queue is read in one query over "
            f"itself, its groups and 'all'); '{program_id}' is in {len(before)} and this would add "
            f"{len(merged) - len(before)} more", field="groups", limit=MAX_GROUPS_PER_PROGRAM)
    # Kept as they are: presence and interrupt marks (services/presence, interrupt_marks).
    doc = {**(existing or {}), "programId": program_id, "groups": merged,
           "createdAt": (existing or {}).get("createdAt", now)}
    return path, doc
