"""A revoked key stops working at once, also for the calls it authenticated that are still
waiting (`wait_seconds`): such a call reads its key again before it acts on any wake-up, and a
revocation wakes it at once (`revocation_key`), so it ends with UNAUTHENTICATED having claimed
or delivered nothing. In another process the revocation arrives through the tenant's feed
(`services.watching`), or at the waiter's next look where the store cannot listen."""

from __future__ import annotations

from typing import Any

from cachebash.domain.errors import Unauthenticated
from cachebash.ports.signals import revocation_key
from cachebash.services.runtime import Caller, Runtime


def refusal(record: dict[str, Any] | None, *, waiting: bool = False) -> Unauthenticated | None:
    """Why a key document no longer authenticates, or None while it does: the one rule for it."""
    if record is None:
        return Unauthenticated("unknown API key" + (" (it was deleted while this call waited)" if waiting else ""))
    if not record.get("active"):
        during = "; this call was waiting and ended: it claimed and delivered nothing" if waiting else ""
        return Unauthenticated(f"API key {record['keyId']} was revoked at {record.get('revokedAt')}{during}")
    return None


def wait_keys(caller: Caller) -> list[str]:
    """What a waiting call subscribes to besides its work: its own key's revocation."""
    return [revocation_key(caller.key_id)] if caller.key_id else []


def check(rt: Runtime, caller: Caller) -> None:
    """Before a waiting call acts on a wake-up: one read of its key document, from the store and
    never from the key cache, so a revocation by another process ends the call as soon as it
    wakes (the cache would show it only after its TTL)."""
    if caller.key_path is None:
        return  # not authenticated by a key (services called directly)
    if (refused := refusal(rt.store.get(caller.key_path), waiting=True)) is not None:
        raise refused


def announce(rt: Runtime, tenant_id: str, key_id: str) -> None:
    """Wake this process's calls waiting on the key (after the revocation committed)."""
    if rt.signals is not None:
        rt.signals.notify(tenant_id, [revocation_key(key_id)])
