"""In-process wake-ups: an asyncio event per waiting request, set from whichever thread
committed the change (the event loop, the sweeper's timer, a store listener's thread)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial

from cachebash.ports.signals import Feed, FeedFactory, Signals, Subscription

log = logging.getLogger(__name__)

#: A waiter's looks while its tenant's feed is not live (a store others write that cannot
#: listen, or a listener still starting or broken): 0.5 s, 1 s, 2 s, then every 2 s.
POLL = (0.5, 2.0)
#: While the feed is live a waiter still looks again this often, for what no write announces and
#: the feed cannot see (see services.watching). Longer than any wait (25 s): within one call the
#: feed and its timers suffice, and each new call starts with a look of its own. (Every 10 s, 320
#: waiters made 64 store reads a second that competed with plain calls for the store and the
#: worker threads.)
SAFETY_LOOK_SECONDS = 30.0
#: A tenant's feed stays open this long after its last waiter left, for the next one.
FEED_LINGER_SECONDS = 30.0


class _Waiter(Subscription):
    def __init__(self, poll: tuple[float, float] | None, feed: Feed | None, safety_look: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.pause: float | None = poll[0] if poll else None
        self.cap: float | None = poll[1] if poll else None
        self.feed = feed
        self.safety_look = safety_look

    def wake(self) -> None:
        if self.loop.is_closed():
            return
        with suppress(RuntimeError):  # the loop stopped between the check and the call
            self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self, timeout: float) -> bool:
        watched, whole = self.feed is not None and self.feed.live, timeout
        if watched:
            timeout = min(timeout, self.safety_look)
        elif self.pause is not None and self.cap is not None:
            timeout = min(timeout, self.pause)
            self.pause = min(self.pause * 2, self.cap)
        woken = True
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            woken = False
        self.event.clear()
        quiet = not woken and watched and timeout == whole and self.feed is not None and self.feed.live
        return not quiet


@dataclass
class _Shared:
    """One tenant's feed and how many waiters use it."""

    feed: Feed
    users: int = 0
    closing: threading.Timer | None = None


class LocalSignals(Signals):
    """Wakes waiters on changes this process commits. With `poll=(first, cap)` a waiter also
    looks again after a growing pause, for stores other processes write too (Firestore).
    With `feeds`, those other processes' changes arrive through one feed per tenant instead
    (a store listener, opened for the tenant's first waiter and closed `linger` seconds after
    its last), and a waiter polls only while its feed is not live."""

    def __init__(self, poll: tuple[float, float] | None = None, feeds: FeedFactory | None = None, *,
                 linger: float = FEED_LINGER_SECONDS, safety_look: float = SAFETY_LOOK_SECONDS) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], set[_Waiter]] = {}
        self._poll = poll
        self._feeds = feeds
        self._shared: dict[str, _Shared] = {}
        self._linger = linger
        self._safety_look = safety_look

    @contextmanager
    def subscribe(self, tenant_id: str, keys: Iterable[str]) -> Iterator[Subscription]:
        shared = self._acquire(tenant_id)
        waiter = _Waiter(self._poll, shared.feed if shared else None, self._safety_look)
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
            if shared is not None:
                self._release(tenant_id, shared)

    def notify(self, tenant_id: str, keys: Iterable[str]) -> None:
        with self._lock:
            woken = {w for key in keys for w in self._waiters.get((tenant_id, key), ())}
        for waiter in woken:
            waiter.wake()

    def waiting(self) -> int:
        """How many calls are waiting now (health, status, metrics)."""
        with self._lock:
            return len({w for ws in self._waiters.values() for w in ws})

    def wake_all(self) -> int:
        """Wake every current waiter (the server is stopping); returns how many there were. Safe
        from any thread, not from a signal handler (it takes a lock the interrupted code may hold)."""
        with self._lock:
            woken = {w for ws in self._waiters.values() for w in ws}
        for waiter in woken:
            waiter.wake()
        return len(woken)

    def stats(self) -> dict[str, int]:
        """Waiting calls and open feeds, for `/bench/stats` and tests."""
        with self._lock:
            waiters = {w for ws in self._waiters.values() for w in ws}
            return {"waitingCalls": len(waiters), "feeds": len(self._shared),
                    "feedsLive": sum(1 for s in self._shared.values() if s.feed.live)}

    def close(self) -> None:
        """Close every feed (at shutdown)."""
        with self._lock:
            shared, self._shared = list(self._shared.values()), {}
        for item in shared:
            if item.closing is not None:
                item.closing.cancel()
            item.feed.close()

    def _acquire(self, tenant_id: str) -> _Shared | None:
        if self._feeds is None:
            return None
        stale: Feed | None = None
        with self._lock:
            shared = self._shared.get(tenant_id)
            if shared is not None and shared.feed.ended:
                stale, shared = shared.feed, None
                del self._shared[tenant_id]
            if shared is None:
                try:
                    shared = self._shared[tenant_id] = _Shared(self._feeds(tenant_id, partial(self.notify, tenant_id)))
                except Exception:  # the waiter polls instead
                    log.exception("could not open the change feed of tenant %s", tenant_id)
                    return None
            if shared.closing is not None:
                shared.closing.cancel()
                shared.closing = None
            shared.users += 1
        if stale is not None:
            stale.close()
        return shared

    def _release(self, tenant_id: str, shared: _Shared) -> None:
        with self._lock:
            shared.users -= 1
            if shared.users == 0 and self._shared.get(tenant_id) is shared:
                shared.closing = threading.Timer(self._linger, self._expire, (tenant_id, shared))
                shared.closing.daemon = True
                shared.closing.start()

    def _expire(self, tenant_id: str, shared: _Shared) -> None:
        with self._lock:
            if self._shared.get(tenant_id) is not shared or shared.users > 0:
                return  # a waiter came back during the linger
            del self._shared[tenant_id]
        shared.feed.close()
