"""API keys: each fixes one program's identity in one tenant.

Only the SHA-256 of a key is stored (as the document id of `keys/{hash}`), so a leaked
database does not leak working keys; the plaintext is shown once, at creation.

What authentication reads is kept for a short while (`services.key_cache`: no store read for a
key seen in the last 30 s); every write here to a key or a program drops what it changed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from cachebash.domain.errors import Code, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from cachebash.domain.inputs import NAME_PATTERN
from cachebash.domain.programs import CreateKey, ProgramMarks, RevokeKey
from cachebash.ports.store import Doc, Query, Transaction
from cachebash.services import activity, directory, presence, revocation
from cachebash.services.directory import groups_changed, register_program
from cachebash.services.runtime import Caller, Runtime

KEY_PREFIX = "cb_"
KEYS = "keys"
DEFAULT_TENANT = "default"
MAX_ACTIVE_KEYS = 25


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_path(key_hash: str) -> str:
    return f"{KEYS}/{key_hash}"


def issue_key(rt: Runtime, tenant_id: str, cmd: CreateKey, created_by: str) -> dict[str, Any]:
    """Create a key (and register its program and groups) in one transaction."""
    if not re.match(NAME_PATTERN, tenant_id):
        raise InvalidInput("tenant: letters, digits, '_', '.', '-' only (max 64)", field="tenant")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key_hash = hash_key(plaintext)
    now = rt.clock.iso()
    record = {
        "keyId": key_hash[:16],
        "tenantId": tenant_id,
        "programId": cmd.programId,
        "label": cmd.label,
        "admin": cmd.admin,
        "active": True,
        "createdAt": now,
        "createdBy": created_by,
        "revokedAt": None,
        "lastUsedAt": None,
    }

    def write(tx: Transaction) -> dict[str, Any]:
        tenant_doc = f"tenants/{tenant_id}"
        new_tenant = tx.get(tenant_doc) is None
        program_path, program = register_program(tx, tenant_id, cmd.programId, list(cmd.groups), now)
        if new_tenant:  # listed by the sweeper, which visits every tenant
            tx.set(tenant_doc, {"tenantId": tenant_id, "createdAt": now})
        tx.create(key_path(key_hash), record)
        tx.set(program_path, program)
        return program

    program = rt.store.run_transaction(write)
    rt.key_cache.forget_key(key_hash)
    rt.key_cache.forget_program(tenant_id, cmd.programId)  # its groups
    groups_changed(rt, tenant_id)
    return activity.key_created({
        "success": True, "apiKey": plaintext, "keyId": record["keyId"], "programId": cmd.programId,
        "tenantId": tenant_id, "groups": program["groups"], "admin": cmd.admin, "label": cmd.label,
        "note": "This is the only time the key is shown. Store it securely.",
    })


def create_owner_key(rt: Runtime, tenant_id: str, cmd: CreateKey) -> dict[str, Any]:
    """A key created by the tenant's owner from the phone, within the tenant's cap on active keys."""
    active = rt.store.query(Query(KEYS).where("tenantId", "==", tenant_id).where("active", "==", True))
    if len(active) >= MAX_ACTIVE_KEYS:
        raise Conflict(f"this account already has {MAX_ACTIVE_KEYS} active keys; revoke one first",
                       code=Code.KEY_LIMIT)
    return issue_key(rt, tenant_id, cmd, "owner")


def create_key(rt: Runtime, caller: Caller, cmd: CreateKey) -> dict[str, Any]:
    _require_admin(caller, "create keys")
    return issue_key(rt, caller.tenant_id, cmd, caller.program_id)


def authenticate(rt: Runtime, plaintext: str | None) -> Caller:
    if not plaintext:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
    key_hash = hash_key(plaintext)
    record, program = _resolve(rt, key_hash)
    if (refused := revocation.refusal(record)) is not None:
        raise refused
    assert record is not None
    program_path = directory.program_path(record["tenantId"], record["programId"])
    # Presence ("last seen"): a write only when the stored time is a minute old, so a busy agent
    # costs one write a minute, not one per call.
    written = presence.note_key_and_program(rt, key_path(key_hash), record, program_path if program else None,
                                            program)
    if written is not None:  # the cached documents as they are now, so the next call reads nothing
        rt.key_cache.refresh(key_hash, record["tenantId"], record["programId"], *written)
    return Caller(
        tenant_id=record["tenantId"],
        program_id=record["programId"],
        admin=bool(record.get("admin")),
        groups=tuple(program.get("groups", ())),
        key_id=record["keyId"],
        marks=ProgramMarks.of(program),
        key_path=key_path(key_hash),
    )


def _resolve(rt: Runtime, key_hash: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The key's document (None: unknown) and, for an active key, its program's ({} if none):
    from the key cache, or read from the store and kept there."""
    now = rt.clock.now()
    if (hit := rt.key_cache.get(key_hash, now)) is not None:
        return hit.key, hit.program
    generation = rt.key_cache.generation
    record = rt.store.get(key_path(key_hash))
    program: dict[str, Any] = {}
    if record is not None and record.get("active"):
        program = rt.store.get(directory.program_path(record["tenantId"], record["programId"])) or {}
    rt.key_cache.put(key_hash, record, program, now, generation)
    return record, program


def _tenant_keys(rt: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    query = Query(KEYS).where("tenantId", "==", tenant_id).order("createdAt")
    return [doc.data for doc in rt.store.query(query)]


def list_keys(rt: Runtime, caller: Caller) -> dict[str, Any]:
    _require_admin(caller, "list keys")
    return list_tenant_keys(rt, caller.tenant_id)


def list_tenant_keys(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    keys = [{k: v for k, v in record.items() if k != "tenantId"} for record in _tenant_keys(rt, tenant_id)]
    return {"success": True, "count": len(keys), "keys": keys}


def revoke_key(rt: Runtime, caller: Caller, cmd: RevokeKey) -> dict[str, Any]:
    _require_admin(caller, "revoke keys")
    return revoke_tenant_key(rt, caller.tenant_id, cmd.keyId)


def _key_query(tenant_id: str, key_id: str) -> Query:
    return Query(KEYS).where("tenantId", "==", tenant_id).where("keyId", "==", key_id)


def _one_key(docs: list[Doc], key_id: str) -> tuple[str, dict[str, Any]]:
    """The key a keyId names in the tenant, or NotFound (another tenant's keys are never found)."""
    if not docs:
        raise NotFound(f"no key {key_id} in this tenant", field="keyId")
    return docs[0].path, docs[0].data


def revoke_tenant_key(rt: Runtime, tenant_id: str, key_id: str) -> dict[str, Any]:
    query = _key_query(tenant_id, key_id)
    now = rt.clock.iso()

    def revoke(tx: Transaction) -> tuple[str, dict[str, Any]]:
        path, record = _one_key(tx.query(query), key_id)
        if record.get("active"):
            tx.update(path, {"active": False, "revokedAt": now})
        return path, record

    path, record = rt.store.run_transaction(revoke)
    rt.key_cache.forget_key(path.removeprefix(f"{KEYS}/"))
    revocation.announce(rt, tenant_id, key_id)
    return activity.key_revoked(tenant_id, {"success": True, "keyId": key_id, "programId": record["programId"],
                                            "active": False})


def rotate_tenant_key(rt: Runtime, tenant_id: str, key_id: str) -> dict[str, Any]:
    """A new key for the same program, groups, label and rights; the old one is revoked only
    after the new one exists, so a failure never leaves the program without a key."""
    query = _key_query(tenant_id, key_id)
    _, old = _one_key(rt.store.query(query), key_id)
    if not old.get("active"):
        raise Conflict(f"key {key_id} was revoked at {old.get('revokedAt')}; create a new key instead",
                       code=Code.KEY_REVOKED, field="keyId")
    cmd = CreateKey(programId=old["programId"], label=old.get("label"), admin=bool(old.get("admin")))
    created = issue_key(rt, tenant_id, cmd, "owner")
    revoke_tenant_key(rt, tenant_id, key_id)
    return {**created, "rotated": key_id}


def _require_admin(caller: Caller, what: str) -> None:
    if not caller.admin:
        raise Forbidden(f"only admin keys may {what}; '{caller.program_id}' is not an admin key")
