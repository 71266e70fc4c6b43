"""In-process wake-ups: an asyncio event per waiting request, set from whichever thread
committed the change (the event loop, or the sweeper's timer)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from cachebash.ports.signals import Signals, Subscription


class _Waiter(Subscription):
    def __init__(self, poll: tuple[float, float] | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.pause: float | None = poll[0] if poll else None
        self.cap: float | None = poll[1] if poll else None

    def wake(self) -> None:
        if self.loop.is_closed():
            return
        with suppress(RuntimeError):  # the loop stopped between the check and the call
            self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self, timeout: float) -> None:
        if self.pause is not None and self.cap is not None:
            timeout = min(timeout, self.pause)
            self.pause = min(self.pause * 2, self.cap)
        with suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()


class LocalSignals(Signals):
    """Wakes waiters on changes this process commits. With `poll=(first, cap)` a waiter also
    looks again after a growing pause, for stores other processes write too (Firestore):
    0.5 s, 1 s, 2 s, then every 2 s, so an empty 25 s wait re-runs its query ~14 times."""

    def __init__(self, poll: tuple[float, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], set[_Waiter]] = {}
        self._poll = poll

    @contextmanager
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> Iterator[Subscription]:
        waiter = _Waiter(self._poll)
        slots = [(tenant_id, key) for key in keys]
        with self._lock:
            for slot in slots:
                self._waiters.setdefault(slot, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                for slot in slots:
                    waiting = self._waiters.get(slot)
                    if waiting is not None:
                        waiting.discard(waiter)
                        if not waiting:
                            del self._waiters[slot]

    def notify(self, tenant_id: str, keys: Iterable[str]) -> None:
        with self._lock:
            woken = {w for key in keys for w in self._waiters.get((tenant_id, key), ())}
        for waiter in woken:
            waiter.wake()
