"""Where a tool's service calls run: inline when the store is local and fast, on worker threads
when it does network I/O (Firestore). The looks of calls that wait (`wait_seconds`) get worker
threads of their own, beside anyio's 40 for every other call.

Why apart: on Firestore each look blocks its thread for a few store round trips, and hundreds
of waiting agents come back for a new look every few seconds. Sharing one pool, 320 waiters held
all 40 threads at once (22 of them queued behind one rate-limit lease) and a plain call waited
seconds for a thread; on threads of their own they can only slow each other, and a plain call
always finds a thread. A waiting call is the one that can afford to wait for one.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.lowlevel import RunVar

from cachebash.domain.errors import Contention

#: Worker threads for the looks of waiting calls, per event loop. Few on purpose: the store is what
#: they share with plain calls, and fewer looks at once leave it to the plain calls (with 320 calls
#: waiting on Google's emulator, 8 gave plain calls a p99 2.4x their own alone, 16 gave 2.9x; a look
#: takes tens of milliseconds, so 8 threads still make hundreds a second).
WAITING_THREADS = 8

Work = Callable[[], dict[str, Any]]
Run = Callable[[Work], Awaitable[dict[str, Any]]]

_waiting_limiter: RunVar[anyio.CapacityLimiter] = RunVar("cachebash_waiting_threads")


@dataclass(frozen=True)
class Runner:
    """Runs service calls: `runner(fn)` for a call's own work, `runner.waiting(fn)` for the
    looks (and the waiting slot) of a call that waits."""

    plain: Run
    waiting: Run

    async def __call__(self, fn: Work) -> dict[str, Any]:
        return await self.plain(fn)

    @classmethod
    def same(cls, run: Run) -> Runner:
        """One way for both (tests that wrap the calls they run)."""
        return cls(run, run)


async def _inline(fn: Work) -> dict[str, Any]:
    return fn()


async def _threaded(fn: Work) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(fn)


def waiting_threads() -> anyio.CapacityLimiter:
    """This event loop's limiter for waiting calls (made on first use, as anyio makes its own)."""
    try:
        return _waiting_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(WAITING_THREADS)
        _waiting_limiter.set(limiter)
        return limiter


async def _threaded_waiting(fn: Work) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(fn, limiter=waiting_threads())


class CommitGroups(Protocol):
    """A store whose transactions on one thread can share a COMMIT (`SqliteStore`)."""

    def group_commits(self, schedule: Callable[[], bool]) -> None: ...
    def group_thread(self) -> int | None: ...
    def group_mark(self) -> int: ...
    def group_pending(self) -> bool: ...
    def group_outcome(self, first: int) -> BaseException | None: ...
    def commit_group(self) -> None: ...


class GroupWait:
    """Runs service calls inline on the event loop with group commit: the transactions of every
    call made in one loop turn share one COMMIT, at the start of the next turn, and each call is
    answered only after that COMMIT (so nothing is acknowledged that a crash could still lose).
    A call that only read waits too: it may have read writes of the open group.

    Why: with 16 agents a turn carries several calls, and the BEGIN/COMMIT pair with its WAL
    append was the largest single cost of an embedded call (README, Benchmark). One per store,
    whichever runners share it (`make_runner`), since the store calls back one scheduler."""

    def __init__(self, store: CommitGroups) -> None:
        self.store = store
        self.waiters: list[asyncio.Future[None]] = []

    def _schedule(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # no loop (shutdown, a script): the transaction commits alone
        loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self.store.commit_group()
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def __call__(self, fn: Work) -> dict[str, Any]:
        if self.store.group_thread() != threading.get_ident():  # first call, or a new loop's thread (tests)
            self.store.group_commits(self._schedule)
        first = self.store.group_mark()
        try:
            return fn()
        finally:
            if self.store.group_pending():
                waiter = asyncio.get_running_loop().create_future()
                self.waiters.append(waiter)
                await waiter
            if (failed := self.store.group_outcome(first)) is not None:
                raise Contention(
                    f"the store could not commit this call's writes ({failed}); they may not have been kept. "
                    "Call again; a call with an idempotency_key is safe to repeat", retry_after_seconds=1) from failed


_group_waits: weakref.WeakKeyDictionary[Any, GroupWait] = weakref.WeakKeyDictionary()


def make_runner(blocking_io: bool, store: Any = None) -> Runner:
    """Worker threads for a store that does network I/O; inline, with group commit where the
    store offers it (`CommitGroups`), for a local one."""
    if blocking_io:
        return Runner(_threaded, _threaded_waiting)
    if store is not None and hasattr(store, "group_commits"):
        if store not in _group_waits:
            _group_waits[store] = GroupWait(store)
        return Runner.same(_group_waits[store])
    return Runner.same(_inline)
