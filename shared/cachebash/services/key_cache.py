"""What authentication read, kept for a short while: a call with a key seen in the last
`TTL_SECONDS` costs no store read (it cost two: the key's document and its program's).

An entry holds the two documents as read (`keys/{hash}`, or None for an unknown key, and the
program's document), so a refusal is cached like an identity, and the caller is rebuilt from
them on each hit by the same code as on a miss (`services.keys.authenticate`).

Fresh where it matters:
- In this process a change takes effect at once: whatever writes a key's document or a
  program's document (revoking, rotating, a new key and its groups, sessions, interrupt marks)
  drops the entries it concerns after its commit; authentication's own presence write
  (`lastUsedAt`, `lastSeenAt`) updates them instead. An entry read while such a
  change was committing is not kept (`generation`), so a revocation cannot be undone by a read
  that raced it.
- In another process on the same store (Cloud Functions instances, a second server, the CLI)
  the same changes are seen within `TTL_SECONDS`: a revoked key keeps working there for at most
  that long, new groups and interrupt marks show up as late. A process listening to the tenant
  (it has calls waiting there, on Firestore) drops a key as soon as its feed sees it revoked
  (`services.watching.TenantFeed`). A call that waits (`wait_seconds`)
  reads its key again from the store before it acts on a wake-up (`services.revocation.check`),
  never from here, so it still ends at once.

The clock is the runtime's, so tests move past the TTL without sleeping. Bounded: past
`MAX_ENTRIES` the least recently used entry goes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

#: How long another process's change to a key or a program may go unseen here (README, Limits).
TTL_SECONDS = 30.0
#: Entries kept at most (a few MB: two small documents each).
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Resolved:
    """The documents one key resolved to: its own (None: unknown key) and its program's."""

    key: dict[str, Any] | None
    program: dict[str, Any]
    until: datetime

    @property
    def owner(self) -> tuple[str, str] | None:
        """(tenant, program) of the key; None for an unknown key."""
        return None if self.key is None else (self.key["tenantId"], self.key["programId"])


class KeyCache:
    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Resolved] = OrderedDict()
        self._by_program: dict[tuple[str, str], set[str]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Read before the store is read; `put` keeps the result only if nothing was dropped since."""
        return self._generation

    def get(self, key_hash: str, now: datetime) -> Resolved | None:
        with self._lock:
            found = self._entries.get(key_hash)
            if found is None:
                return None
            if not found.until - self.ttl <= now < found.until:  # expired (or the clock went back)
                self._remove(key_hash)
                return None
            self._entries.move_to_end(key_hash)
            return found

    def put(self, key_hash: str, key: dict[str, Any] | None, program: dict[str, Any], now: datetime,
            generation: int) -> None:
        entry = Resolved(key, program, now + self.ttl)
        with self._lock:
            if generation != self._generation:
                return  # something was dropped while these documents were read: they may be the old ones
            self._remove(key_hash)
            self._entries[key_hash] = entry
            if (owner := entry.owner) is not None:
                self._by_program.setdefault(owner, set()).add(key_hash)
            while len(self._entries) > self.max_entries:
                self._remove(next(iter(self._entries)))

    def refresh(self, key_hash: str, tenant_id: str, program_id: str, key_fields: dict[str, Any],
                program_fields: dict[str, Any]) -> None:
        """After this process's own presence write (fields no rule reads): set them in what is
        held instead of dropping it, so a busy agent's next call still reads nothing. An entry
        dropped meanwhile (a revocation) stays dropped; entries keep their expiry."""
        with self._lock:
            if key_fields and (entry := self._entries.get(key_hash)) is not None and entry.key is not None:
                self._entries[key_hash] = replace(entry, key={**entry.key, **key_fields})
            if program_fields:
                for other in self._by_program.get((tenant_id, program_id), ()):
                    entry = self._entries[other]
                    self._entries[other] = replace(entry, program={**entry.program, **program_fields})

    def forget_key(self, key_hash: str) -> None:
        """After a write to `keys/{key_hash}`."""
        with self._lock:
            self._generation += 1
            self._remove(key_hash)

    def forget_program(self, tenant_id: str, program_id: str) -> None:
        """After a write to the program's document: every key of it."""
        with self._lock:
            self._generation += 1
            for key_hash in list(self._by_program.get((tenant_id, program_id), ())):
                self._remove(key_hash)

    def __len__(self) -> int:
        return len(self._entries)

    def _remove(self, key_hash: str) -> None:
        entry = self._entries.pop(key_hash, None)
        if entry is not None and (owner := entry.owner) is not None:
            hashes = self._by_program.get(owner)
            if hashes is not None:
                hashes.discard(key_hash)
                if not hashes:
                    del self._by_program[owner]
