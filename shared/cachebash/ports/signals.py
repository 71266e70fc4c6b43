"""Wake-ups for callers that wait (`wait_seconds`) instead of polling.

A waiter subscribes to keys (a queue name, an inbox) *before* it looks, so a wake-up that
arrives between its look and its wait is never lost. Embedded, `notify` is driven by bus
events right after the commit; a runtime without push (Cloud Functions on Firestore) uses
a bounded poll instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager

# Console pages waiting for any change in their tenant (the owner API's long polling).
OWNER_KEY = "owner"


def queue_key(target: str) -> str:
    return f"queue:{target}"


def inbox_key(program: str) -> str:
    return f"inbox:{program}"


def interrupt_key(target: str) -> str:
    """An interrupt task for `target` (a program or group): wakes its waiting get_messages."""
    return f"interrupt:{target}"


class Subscription(ABC):
    @abstractmethod
    async def wait(self, timeout: float) -> None:
        """Return after a notify on one of the keys (or when it is time to look again), or at the timeout."""


class Signals(ABC):
    @abstractmethod
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> AbstractContextManager[Subscription]: ...

    @abstractmethod
    def notify(self, tenant_id: str, keys: Iterable[str]) -> None:
        """Wake every subscriber of these keys. Safe to call from any thread."""
