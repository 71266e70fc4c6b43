"""In-process wake-ups for the embedded server: an asyncio event per waiting request, set
from whichever thread committed the change (the event loop, or the sweeper's timer)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from cachebash.ports.signals import Signals, Subscription


class _Waiter(Subscription):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        if self.loop.is_closed():
            return
        with suppress(RuntimeError):  # the loop stopped between the check and the call
            self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self, timeout: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()


class LocalSignals(Signals):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], set[_Waiter]] = {}

    @contextmanager
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> Iterator[Subscription]:
        waiter = _Waiter()
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


class PollingSignals(Signals):
    """For runtimes with no push to this process: look again after a growing pause
    (0.5 s, 1 s, 2 s, then every 2 s), so a 25 s wait costs at most ~14 queries."""

    def __init__(self, first: float = 0.5, cap: float = 2.0) -> None:
        self.first, self.cap = first, cap

    @contextmanager
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> Iterator[Subscription]:
        yield _Poll(self.first, self.cap)

    def notify(self, tenant_id: str, keys: Iterable[str]) -> None:
        return None


class _Poll(Subscription):
    def __init__(self, first: float, cap: float) -> None:
        self.pause, self.cap = first, cap

    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(min(self.pause, timeout))
        self.pause = min(self.pause * 2, self.cap)
