"""Transactions of one process that collide on a document take turns on it.

Firestore settles a collision by aborting one transaction, which the adapter runs again. If
several threads of one process keep colliding on the same document (twenty agents claiming
one task through one server, sixteen sprint releases after the same finish), each retry
wastes a round trip, and under Google's emulator, which lets new readers in while a writer
waits for its lock and breaks the wait only by a 2 s timeout, they can starve each other
for a minute. So once a transaction has collided on a document, it and every later
transaction of this process that starts by reading that document run one at a time, until
none is retrying. Transactions still conflict and abort at Firestore as before (first
attempts run in parallel, and other processes are not affected): this only orders retries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Turn:
    lock: threading.Lock = field(default_factory=threading.Lock)
    retrying: int = 0  # transactions that collided on the document and are trying again
    users: int = 0  # transactions holding or waiting for the lock


class Turns:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._turns: dict[str, _Turn] = {}

    @contextmanager
    def retrying(self, key: str) -> Iterator[None]:
        """While a transaction that collided on `key` tries again, `key` is taken in turns."""
        with self._guard:
            turn = self._turns.setdefault(key, _Turn())
            turn.retrying += 1
        try:
            yield
        finally:
            with self._guard:
                turn.retrying -= 1
                self._forget_if_idle(key, turn)

    @contextmanager
    def turn(self, key: str, timeout: float) -> Iterator[bool]:
        """Wait for `key`'s turn if it is taken in turns; otherwise go ahead at once. Yields
        whether the turn came within `timeout` (True when there was no need to wait); on a
        timeout the caller decides whether to go ahead anyway or to give up."""
        with self._guard:
            turn = self._turns.get(key)
            if turn is None:
                yield_now = True
            else:
                yield_now = False
                turn.users += 1
        if yield_now:
            yield True
            return
        assert turn is not None
        acquired = turn.lock.acquire(timeout=max(timeout, 0.0))
        try:
            yield acquired
        finally:
            if acquired:
                turn.lock.release()
            with self._guard:
                turn.users -= 1
                self._forget_if_idle(key, turn)

    def _forget_if_idle(self, key: str, turn: _Turn) -> None:
        if turn.retrying == 0 and turn.users == 0 and self._turns.get(key) is turn:
            del self._turns[key]


#: One per process: the point is to order the process's own transactions.
TURNS = Turns()
