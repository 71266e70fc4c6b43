"""Wake-ups that can all be fired at once when the server stops, so a call waiting for work
(`wait_seconds`, the console's long polling) answers empty at once instead of holding the
shutdown for up to its whole wait. Wraps any `Signals`; the wait loops also check
`Runtime.closing`, so a woken waiter does not go back to sleep."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from cachebash.ports.signals import Signals, Subscription


class ClosableSignals(Signals):
    def __init__(self, inner: Signals) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._live: Counter[tuple[str, tuple[str, ...]]] = Counter()

    @contextmanager
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> Iterator[Subscription]:
        slot = (tenant_id, tuple(keys))
        with self._lock:
            self._live[slot] += 1
        try:
            with self.inner.subscribe(tenant_id, slot[1]) as subscription:
                yield subscription
        finally:
            with self._lock:
                self._live[slot] -= 1
                if not self._live[slot]:
                    del self._live[slot]

    def notify(self, tenant_id: str, keys: Iterable[str]) -> None:
        self.inner.notify(tenant_id, keys)

    def waiting(self) -> int:
        """How many calls are waiting now (health, status, metrics)."""
        with self._lock:
            return sum(self._live.values())

    def wake_all(self) -> int:
        """Wake every current waiter; returns how many subscriptions there were. Safe from any thread,
        but not from a signal handler (it takes locks the interrupted code may hold): schedule it."""
        with self._lock:
            live = list(self._live.items())
        for (tenant_id, keys), _ in live:
            self.inner.notify(tenant_id, keys)
        return sum(count for _, count in live)
