"""`Store.listen` on Firestore: a snapshot listener (`Query.on_snapshot`, the Listen RPC).

The client library keeps one streaming RPC and one consumer thread per listener, resumes the
stream after transient errors, and hands each snapshot (the results, and what changed) to a
callback on that thread; this adapter turns them into port `Doc`s and `Change`s. Both Google's
emulator and the npm stand-in (`@firestore-emulator/server` 0.3.15) answer Listen.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.watch import ChangeType

from cachebash.ports.store import Change, Doc, Listening, OnChanges, Query

if TYPE_CHECKING:
    from cachebash.adapters.firestore_store import FirestoreStore

log = logging.getLogger(__name__)


class FirestoreListening(Listening):
    def __init__(self, store: FirestoreStore, query: Query, on_changes: OnChanges) -> None:
        self._query = query
        self._on_changes = on_changes
        self._first = threading.Event()
        store.observe(query)
        self._watch: Any = store._native(query).on_snapshot(self._snapshot)

    @property
    def live(self) -> bool:
        return self._first.is_set() and not self.ended

    @property
    def ended(self) -> bool:
        return not self._watch.is_active

    def close(self) -> None:
        self._watch.unsubscribe()

    def _snapshot(self, snaps: list[Any], changes: list[Any], read_time: Any) -> None:
        try:
            docs = [self._doc(snap) for snap in snaps]
            self._on_changes(docs, [Change(self._doc(c.document), c.type == ChangeType.REMOVED) for c in changes])
        except Exception:  # a failing callback must not end the stream: log it and keep listening
            log.exception("listener on %s: the change handler failed", self._query.collection)
        self._first.set()

    def _doc(self, snap: Any) -> Doc:
        return Doc(f"{self._query.collection}/{snap.id}", dict(snap.to_dict() or {}))
