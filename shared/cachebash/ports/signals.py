"""Wake-ups for callers that wait (`wait_seconds`) instead of polling.

A waiter subscribes to keys (a queue name, an inbox) *before* it looks, so a wake-up that
arrives between its look and its wait is never lost. `notify` is driven by bus events right
after this process commits; changes other processes commit (Cloud Function instances on one
Firestore) arrive through a `Feed` (a store listener shared by the tenant's waiters) or, on a
store that cannot listen, are found by a bounded poll.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from cachebash.ports.store import Listening

# Console pages waiting for any change in their tenant (the owner API's long polling).
OWNER_KEY = "owner"


def queue_key(target: str) -> str:
    return f"queue:{target}"


def inbox_key(program: str) -> str:
    return f"inbox:{program}"


def interrupt_key(target: str) -> str:
    """An interrupt task for `target` (a program or group): wakes its waiting get_messages."""
    return f"interrupt:{target}"


def revocation_key(key_id: str) -> str:
    """Notified when API key `key_id` is revoked: the calls it authenticated stop waiting."""
    return f"key:{key_id}"


class Subscription(ABC):
    @abstractmethod
    async def wait(self, timeout: float) -> bool:
        """Return after a notify on one of the keys (or when it is time to look again), or at the
        timeout. Whether the caller should look: False only when the whole timeout passed
        unwoken while a live feed watched everything it waits for, so nothing it waits for changed."""


class Signals(ABC):
    @abstractmethod
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> AbstractContextManager[Subscription]: ...

    @abstractmethod
    def notify(self, tenant_id: str, keys: Iterable[str]) -> None:
        """Wake every subscriber of these keys. Safe to call from any thread."""


class Feed(Listening):
    """One tenant's changes committed by other processes, turned into notifications: the
    tenant's store listeners (`Listening`: live, ended, close) taken together, one per tenant
    and process, shared by every waiter of the tenant. While it is not `live`, waiters poll;
    once it has `ended`, the next waiter opens a new one."""


FeedFactory = Callable[[str, Callable[[Iterable[str]], None]], Feed]
