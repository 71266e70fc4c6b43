"""The store port on Cloud Firestore (or an emulator), through `google-cloud-firestore`.

Port paths are Firestore paths already (`tenants/t1/tasks/abc`, `keys/{hash}`), so this
adapter only translates calls. Every read-then-write runs in a Firestore transaction on the
documents it touches; the client library re-runs the function when Firestore aborts it on
contention, which is why the port asks transaction functions to be free of side effects.

The client is made on first use, never at import, so a cold start that never touches the
store (a health probe) pays nothing for it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from cachebash.ports.store import (
    AlreadyExists,
    Doc,
    Missing,
    Query,
    Store,
    StoreError,
    Transaction,
    check_path,
)

T = TypeVar("T")

#: How long a transaction keeps retrying on contention before giving up, and its back-off.
#: Each retry is a fresh transaction after a jittered, doubling pause (Google's Node SDK also
#: backs off ~1 s between transaction attempts). The library's immediate retries are turned
#: off: under Google's emulator, which breaks lock waits by a 2 s timeout rather than letting
#: the older transaction win, they abort again every time (20 racing claimers: 120 s, 19
#: errors). Fresh transactions after this back-off settle that race in 2-3 s; with a 0.2 s
#: base, 20 claims over HTTP sometimes took over 60 s, and with 10 ms 8 writers gave up.
RETRY_DEADLINE_S = 60.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 4.0


class FirestoreStore(Store):
    """`project` and `database` default to the environment's (GOOGLE_CLOUD_PROJECT,
    FIRESTORE_EMULATOR_HOST as the client library reads them). `emulator_host` points this one
    store at an emulator regardless of the environment; tests use it to run two emulators."""

    blocking_io = True

    def __init__(self, project: str | None = None, database: str | None = None,
                 emulator_host: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.database = database
        self.emulator_host = emulator_host
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> firestore.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> firestore.Client:
        if self.emulator_host is None:
            return firestore.Client(project=self.project, database=self.database)
        client = firestore.Client(project=self.project or "demo-cachebash", database=self.database,
                                  credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        # The library reads FIRESTORE_EMULATOR_HOST once, in the constructor; setting the
        # same attribute it sets lets one process talk to two emulators (the test suite does).
        client._emulator_host = self.emulator_host
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()  # type: ignore[no-untyped-call]
                self._client = None

    def run_transaction(self, fn: Callable[[Transaction], T]) -> T:
        deadline = time.monotonic() + RETRY_DEADLINE_S
        pause = BACKOFF_BASE_S
        while True:
            try:
                return self._attempt(fn)
            except (gexc.Aborted, ValueError) as exc:
                # An abort surfaces from a read as Aborted, from the commit as the library's
                # ValueError("Failed to commit ...") caused by Aborted.
                aborted = exc if isinstance(exc, gexc.Aborted) else exc.__cause__
                if not isinstance(aborted, gexc.Aborted):
                    raise
                if time.monotonic() + pause > deadline:
                    raise aborted from None
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, BACKOFF_CAP_S)

    def _attempt(self, fn: Callable[[Transaction], T]) -> T:
        @firestore.transactional
        def body(native: firestore.Transaction) -> T:
            return fn(_FirestoreTransaction(self, native))

        try:
            result: T = body(self.client.transaction(max_attempts=1))
            return result
        except gexc.AlreadyExists as exc:
            raise AlreadyExists(exc.message) from exc
        except gexc.NotFound as exc:
            raise Missing(exc.message) from exc

    def get(self, path: str) -> dict[str, Any] | None:
        check_path(path, collection=False)
        return _data(self.client.document(path).get())

    def query(self, query: Query) -> list[Doc]:
        self.observe(query)
        return [_doc(query, snap) for snap in self._native(query).stream()]

    def _native(self, query: Query) -> Any:
        """The library query for a port query; its implicit last order is the document name,
        in the direction of the last order-by, which is what the port's cursors assume."""
        native: Any = self.client.collection(query.collection)
        for f in query.filters:
            native = native.where(filter=FieldFilter(f.field, f.op, list(f.value) if f.op == "in" else f.value))
        for o in query.order_by:
            native = native.order_by(o.field, direction="DESCENDING" if o.descending else "ASCENDING")
        if query.start_after is not None:
            last_desc = bool(query.order_by) and query.order_by[-1].descending
            native = native.order_by(FieldPath.document_id(), direction="DESCENDING" if last_desc else "ASCENDING")
            native = native.start_after(list(query.start_after))
        if query.limit is not None:
            native = native.limit(query.limit)
        return native


class _FirestoreTransaction(Transaction):
    def __init__(self, store: FirestoreStore, native: firestore.Transaction) -> None:
        self._store = store
        self._native = native
        self._wrote = False

    def _before_read(self) -> None:
        if self._wrote:
            raise StoreError("read after write in a transaction (Firestore requires all reads first)")

    def _ref(self, path: str) -> Any:
        check_path(path, collection=False)
        return self._store.client.document(path)

    def get(self, path: str) -> dict[str, Any] | None:
        return self.get_all([path])[0]

    def get_all(self, paths: Sequence[str]) -> list[dict[str, Any] | None]:
        self._before_read()
        refs = [self._ref(path) for path in paths]
        # The server answers in any order; put each snapshot back where it was asked for.
        found = {snap.reference.path: _data(snap) for snap in self._native.get_all(refs)}
        return [found.get(path) for path in paths]

    def query(self, query: Query) -> list[Doc]:
        self._before_read()
        self._store.observe(query)
        return [_doc(query, snap) for snap in self._native.get(self._store._native(query))]

    def create(self, path: str, data: dict[str, Any]) -> None:
        self._wrote = True
        self._native.create(self._ref(path), dict(data))

    def set(self, path: str, data: dict[str, Any]) -> None:
        self._wrote = True
        self._native.set(self._ref(path), dict(data))

    def update(self, path: str, fields: dict[str, Any]) -> None:
        self._wrote = True
        # Quote each name so a field is always top-level, never a dotted path into a map.
        self._native.update(self._ref(path), {FieldPath(name).to_api_repr(): value for name, value in fields.items()})

    def delete(self, path: str) -> None:
        self._wrote = True
        self._native.delete(self._ref(path))


def _data(snap: Any) -> dict[str, Any] | None:
    return dict(snap.to_dict()) if snap.exists else None


def _doc(query: Query, snap: Any) -> Doc:
    return Doc(f"{query.collection}/{snap.id}", dict(snap.to_dict()))
