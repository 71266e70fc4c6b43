"""A bounded, thread-safe map whose entries lapse: what a process may remember of the store for
a short while, so a hot path skips a read whose answer rarely changes.

Entries lapse `ttl` after they were put (by the runtime's clock, so tests move past it without
sleeping); past `max_entries` the least recently used one goes. `generation` guards against a
read that raced a change: read it before reading the store, and `put` keeps the value only if
no `forget` ran since, so a change made in this process is never undone by an older read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Expiring(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[V, datetime]] = OrderedDict()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key: K, now: datetime) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            value, until = found
            if not until - self.ttl <= now < until:  # lapsed (or the clock went back)
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, now: datetime, generation: int | None = None) -> None:
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # something was forgotten while this was read: it may be the old value
            self._entries.pop(key, None)
            self._entries[key] = (value, now + self.ttl)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def change(self, key: K, update: Callable[[V], V]) -> None:
        """Replace a held value (keeping its expiry); nothing when none is held."""
        with self._lock:
            if (found := self._entries.get(key)) is not None:
                self._entries[key] = (update(found[0]), found[1])

    def forget(self, which: Callable[[K], bool]) -> None:
        with self._lock:
            self._generation += 1
            for key in [key for key in self._entries if which(key)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
