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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.lowlevel import RunVar

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


def make_runner(blocking_io: bool) -> Runner:
    return Runner(_threaded, _threaded_waiting) if blocking_io else Runner.same(_inline)
