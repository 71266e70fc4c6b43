"""The store port on Cloud Firestore (or an emulator), through `google-cloud-firestore`.

Port paths are Firestore paths already (`tenants/t1/tasks/abc`, `keys/{hash}`), so this
adapter only translates calls. A read-then-write runs optimistically: plain reads, then one
commit whose writes carry each read document's update time (or its absence) as preconditions,
so it holds only if nothing it read changed (`FirestoreStore._optimistic`); a racer is refused
at its commit and runs again, instead of queuing behind locks. One that queries runs in a
Firestore transaction (a query's range cannot be guarded by preconditions). Either way the
function runs again on a collision, which is why the port asks transaction functions to be
free of side effects.

The client is made on first use, never at import, so a cold start that never touches the
store (a health probe) pays nothing for it.

`rpc_count` counts the RPCs this adapter issues (for `cachebash bench`'s store RPCs per tool
call, read by `/bench/stats`): one per document get, batch get, query or count, and per
transaction each read and its Commit or Rollback (its first read begins it: no BeginTransaction;
an optimistic one has no Rollback, and no Commit when it wrote nothing after one read).
A listener counts one (its Listen stream), not one per message.
tests/contract/test_firestore_rpc_count.py checks the count against the library's own calls.

The library always begins a transaction with its own RPC; the reads that begin one here build
their requests and parse their replies with the library 2.x's own helpers (`_prep_get_all`,
`_prep_stream`, `_parse_batch_get`, `_query_response_to_snapshot`; pinned below 3).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.base_client import _parse_batch_get
from google.cloud.firestore_v1.base_query import FieldFilter, _query_response_to_snapshot
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import common as common_pb
from google.cloud.firestore_v1.types import document as document_pb
from google.cloud.firestore_v1.types import write as write_pb

from cachebash.adapters.firestore_turns import TURNS
from cachebash.domain.errors import Contention
from cachebash.ports.store import (
    AlreadyExists,
    Doc,
    Listening,
    Missing,
    OnChanges,
    Query,
    Store,
    StoreError,
    Transaction,
    check_counter_fields,
    check_path,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long a transaction may take, retries included, before the call gives up with a
#: retryable CONTENTION error (`Contention`, nothing written), and its back-off. Each retry is a
#: fresh transaction after a jittered, doubling pause (Google's Node SDK also backs off about a
#: second), and retries take turns on the document they collided on (`firestore_turns`). The
#: library's immediate in-place retries are turned off: under Google's emulator they abort again
#: every time (20 racing claimers: 120 s, 19 errors). Measured on that emulator: 20 racing
#: claimers settle in 2.5 s, 8 writers x 25 increments of one document in 2.7 s (35 s without
#: turns, and with a 10 ms base pause they gave up).
#:
#: The deadline is well below the ~30 s after which common MCP clients abandon a tool call. It
#: matters most after a crash: a process killed inside a transaction leaves its locks until
#: Firestore expires them (about a minute on Google's emulator), and a retried call that needs
#: the same documents used to wait all that time, then fail with a generic error. Every read
#: in a transaction is given what is left of the deadline; the commit has no timeout the
#: library lets us set, so the worst case is the deadline plus one commit's lock wait (2 s on
#: Google's emulator; Firestore itself aborts a blocked transaction at once).
TRANSACTION_DEADLINE_S = 10.0
RETRY_AFTER_S = 5  # what a CONTENTION error suggests waiting before calling again
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 4.0


class FirestoreStore(Store):
    """`project` and `database` default to the environment's (GOOGLE_CLOUD_PROJECT,
    FIRESTORE_EMULATOR_HOST as the client library reads them). `emulator_host` points this one
    store at an emulator regardless of the environment; tests use it to run two emulators."""

    blocking_io = True
    listens = True

    def __init__(self, project: str | None = None, database: str | None = None,
                 emulator_host: str | None = None, transaction_deadline_s: float = TRANSACTION_DEADLINE_S) -> None:
        super().__init__()
        self.project = project
        self.database = database
        self.emulator_host = emulator_host
        self.transaction_deadline_s = transaction_deadline_s
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()
        self._rpcs = 0
        self._rpcs_lock = threading.Lock()

    @property
    def rpc_count(self) -> int:
        """RPCs issued so far (see the module's docstring for what counts as one)."""
        return self._rpcs

    def counted(self, n: int = 1) -> None:
        """Note `n` RPCs issued (thread-safe: calls run on worker threads)."""
        with self._rpcs_lock:
            self._rpcs += n

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
        started = time.monotonic()
        deadline = started + self.transaction_deadline_s
        pause = BACKOFF_BASE_S
        with ExitStack() as retrying:
            collided_on: str | None = None
            collisions = 0
            while True:
                attempt = _Attempt(started, deadline, optimistic=collisions < OPTIMISTIC_TRIES)
                try:
                    return self._attempt(fn, attempt)
                except (gexc.Aborted, _Collided, ValueError) as exc:
                    # An abort surfaces from a read as Aborted, from the commit as the library's
                    # ValueError("Failed to commit ...") caused by Aborted; an optimistic commit's
                    # refusal as _Collided.
                    aborted = exc if isinstance(exc, gexc.Aborted | _Collided) else exc.__cause__
                    if not isinstance(aborted, gexc.Aborted | _Collided):
                        raise
                    if time.monotonic() + pause > deadline:
                        raise _contention(started, attempt.first_read or collided_on, aborted) from aborted
                except gexc.DeadlineExceeded as exc:  # a read waited for a lock past the deadline
                    raise _contention(started, attempt.first_read or collided_on, exc) from exc
                collisions += 1
                if collided_on is None and attempt.first_read is not None:
                    collided_on = attempt.first_read
                    retrying.enter_context(TURNS.retrying(collided_on))
                if attempt.optimistic:  # refused at its commit by a racer that committed: no lock to wait out
                    time.sleep(random.uniform(0, OPTIMISTIC_PAUSE_S))
                    continue
                time.sleep(random.uniform(0, pause))
                pause = min(pause * 2, BACKOFF_CAP_S)

    def _attempt(self, fn: Callable[[Transaction], T], attempt: _Attempt) -> T:
        try:
            try:
                return self._write_only(fn, attempt)
            except _NeedsReads:
                pass  # the function reads: run it again (the port allows reruns)
            if attempt.optimistic and fn_code(fn) not in _LOCKING:
                try:
                    return self._optimistic(fn, attempt)
                except _NeedsLocks:
                    _LOCKING.add(fn_code(fn))  # it queries: from now on straight to a transaction
                except _Unclear:
                    pass  # its commit failed for a reason a transaction tells apart: run it in one
            return self._counted_attempt(fn, attempt)
        except gexc.AlreadyExists as exc:
            raise AlreadyExists(exc.message) from exc
        except gexc.NotFound as exc:
            raise Missing(exc.message) from exc

    def _write_only(self, fn: Callable[[Transaction], T], attempt: _Attempt) -> T:
        """A function that only writes commits its writes as one batch: as atomic, one RPC
        instead of two (no BeginTransaction), and no read locks. Its first read ends this try."""
        batch = self.client.batch()
        tx = _FirestoreTransaction(self, batch, attempt)  # on a batch, which cannot read
        result = fn(tx)
        tx.write_counters()
        if tx.wrote:
            self.counted()  # Commit
            batch.commit(**attempt.read_options())
        return result

    def _optimistic(self, fn: Callable[[Transaction], T], attempt: _Attempt) -> T:
        """The function with plain reads (no transaction, no locks), then its writes in one
        commit that holds only if nothing it read changed since: each document read carries
        its update time as a precondition on its first write, or on a write that changes
        nothing when the function did not write it (absence, on a delete of nothing). What it
        read is then what the commit saw, as in a transaction, but a racer is refused at its
        commit instead of queued behind a lock (Google's emulator holds a transaction's locks
        until its commit and makes the others wait for them, up to seconds). A precondition that
        failed is a collision: the caller runs the function again. A function that queries (a
        query's range cannot be guarded) runs in a transaction instead."""
        batch = self.client.batch()
        tx = _FirestoreTransaction(self, batch, attempt, versions={})
        with attempt.turns:
            result = fn(tx)
            tx.write_counters()
            guards = tx.guard_reads()
            # In the documents' order (stable: one document's writes keep theirs), so racing commits
            # lock what they share in the same order: in any other, two could wait on each other
            # until the server breaks the wait (2 s on Google's emulator).
            batch._write_pbs.sort(key=lambda pb: pb.delete or pb.update.name)
            if batch._write_pbs and (tx.wrote or guards > 1):  # one read alone is a consistent snapshot
                self.counted()  # Commit
                try:
                    # No timeout and no retry of our own: a commit given up on while it waits for
                    # a lock may still apply, and the call must never say nothing was written
                    # when it was (the server ends such a wait: 2 s on Google's emulator).
                    batch.commit(retry=None)
                except gexc.FailedPrecondition as exc:
                    raise _Collided(exc.message) from exc
                except gexc.AlreadyExists as exc:  # a racer created what this read as absent, or a create's own error
                    if self._any_exists(tx.read_absent(), attempt):
                        raise _Collided(exc.message) from exc
                    raise _Unclear from exc
                except gexc.NotFound as exc:
                    raise _Unclear from exc
        return result

    def _any_exists(self, paths: Sequence[str], attempt: _Attempt) -> bool:
        return any(found is not None for found in self.get_many(paths, attempt)) if paths else False

    def get_many(self, paths: Sequence[str], attempt: _Attempt) -> list[dict[str, Any] | None]:
        """Plain reads, in the order asked (outside any transaction: no lock)."""
        self.counted()
        snaps = self.client.get_all([self.client.document(p) for p in paths], **attempt.read_options())
        found = {snap.reference.path: _data(snap) for snap in snaps}
        return [found.get(p) for p in paths]

    def _counted_attempt(self, fn: Callable[[Transaction], T], attempt: _Attempt) -> T:
        """The function in a read-write transaction that begins with its first read (see
        `_FirestoreTransaction._reading`): no BeginTransaction of its own, so a transaction is
        its reads and its Commit. Firestore's locks and the commit's checks are the same as
        when it begins first; any error once it began rolls it back."""
        native = self.client.transaction(max_attempts=1)
        tx = _FirestoreTransaction(self, native, attempt)
        try:
            with attempt.turns:  # a turn taken at the first read lasts until commit or rollback
                result = fn(tx)
                tx.write_counters()
                if not native.in_progress and native._write_pbs:  # this run wrote without reading
                    self.counted()  # BeginTransaction
                    native._begin()
                if native.in_progress:
                    self.counted()  # Commit
                    native._commit()
        except BaseException:
            if native.in_progress:
                self.counted()  # Rollback
                _roll_back(native)
            raise
        return result

    def get(self, path: str) -> dict[str, Any] | None:
        check_path(path, collection=False)
        self.counted()
        return _data(self.client.document(path).get())

    def query(self, query: Query) -> list[Doc]:
        self.observe(query)
        self.counted()
        return [_doc(query, snap) for snap in self._native(query).stream()]

    def update_unchanged(self, docs: Sequence[Doc], fields: Mapping[str, Any]) -> bool:
        """One batch whose every update requires the document's update time as read: Firestore
        applies all or none, locks only these documents, and needs no transaction."""
        if not docs or any(doc.version is None for doc in docs):
            return super().update_unchanged(docs, fields)
        batch = self.client.batch()
        values = _top_level(fields)
        for doc in docs:
            check_path(doc.path, collection=False)
            batch.update(self.client.document(doc.path), values,
                         option=self.client.write_option(last_update_time=doc.version))
        self.counted()  # Commit (the retry of a passing error aside)
        try:
            batch.commit(retry=Retry(predicate=_PASSING, initial=0.1, maximum=1.0, timeout=self.transaction_deadline_s),
                         timeout=self.transaction_deadline_s)
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
            return False  # one of them changed (or went, or is locked by a racer): nothing was written
        return True

    def count(self, query: Query) -> int:
        self.observe(query)
        self.counted()
        found = self._native(query).count().get()
        return int(found[0][0].value)

    def listen(self, query: Query, on_changes: OnChanges) -> Listening:
        from cachebash.adapters.firestore_watch import FirestoreListening

        self.counted()  # the Listen stream, once: its messages are not counted
        return FirestoreListening(self, query, on_changes)

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


def _contention(started: float, on: str | None, cause: Exception) -> Contention:
    waited = time.monotonic() - started
    where = f" on {on}" if on else ""
    return Contention(
        f"the store stayed busy{where} for {waited:.1f} s (other transactions held the documents this call needs: "
        f"{cause.__class__.__name__}); nothing was changed. Call again in {RETRY_AFTER_S} s; a call with an "
        "idempotency_key is safe to repeat", retry_after_seconds=RETRY_AFTER_S)


#: Reads inside a transaction retry what the server marks as passing, within the deadline; a
#: timeout is not retried but ends the transaction as contention.
_PASSING = if_exception_type(gexc.ServiceUnavailable, gexc.InternalServerError)


class _Attempt:
    """One run of a transaction function: what it read first, the turn it holds, how long its
    reads may take, and whether it may run optimistically (`FirestoreStore._optimistic`)."""

    def __init__(self, started: float, deadline: float, optimistic: bool = True) -> None:
        self.started = started
        self.deadline = deadline
        self.optimistic = optimistic
        self.first_read: str | None = None
        self.turns = ExitStack()

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def read_options(self) -> dict[str, Any]:
        left = self.remaining()
        return {"retry": Retry(predicate=_PASSING, initial=0.1, maximum=1.0, timeout=left), "timeout": left}

    def reading(self, key: str) -> None:
        if self.first_read is None:
            self.first_read = key
            if not self.turns.enter_context(TURNS.turn(key, self.deadline - time.monotonic())):
                # Other transactions of this process took their turns on it until the deadline.
                raise _contention(self.started, key, TimeoutError("no turn before the deadline"))


class _FirestoreTransaction(Transaction):
    def __init__(self, store: FirestoreStore, native: firestore.Transaction | firestore.WriteBatch,
                 attempt: _Attempt, versions: dict[str, Any] | None = None) -> None:
        """`versions`, on a batch: read optimistically, noting each document's update time
        (None: absent) as first read; without it a batch cannot read (a write-only try)."""
        self._store = store
        self._native = native
        self._attempt = attempt
        self._versions = versions
        self._wrote = False
        self._counters: dict[str, tuple[dict[str, int | float], dict[str, Any]]] = {}

    def _before_read(self, key: str | None) -> firestore.Transaction | None:
        """The transaction to read in; None for an optimistic read."""
        if not isinstance(self._native, firestore.Transaction) and self._versions is None:
            raise _NeedsReads
        if self._wrote:
            raise StoreError("read after write in a transaction (Firestore requires all reads first)")
        if key is not None:
            self._attempt.reading(key)
        return self._native if isinstance(self._native, firestore.Transaction) else None

    @property
    def wrote(self) -> bool:
        return self._wrote

    def _ref(self, path: str) -> Any:
        check_path(path, collection=False)
        return self._store.client.document(path)

    def get(self, path: str) -> dict[str, Any] | None:
        return self.get_all([path])[0]

    def get_all(self, paths: Sequence[str], *, growing: Collection[str] = ()) -> list[dict[str, Any] | None]:
        native = self._before_read(paths[0] if paths else None)
        if native is not None and growing:  # in a locking transaction: read those outside it, without a lock
            locked = [p for p in paths if p not in growing]
            found = dict(zip(locked, self.get_all(locked), strict=True)) if locked else {}
            unlocked = [p for p in paths if p in growing]
            found.update(zip(unlocked, self._store.get_many(unlocked, self._attempt), strict=True))
            return [found[p] for p in paths]
        client = self._store.client
        request, references, options = client._prep_get_all([self._ref(path) for path in paths], None, None,
                                                             **self._attempt.read_options())
        self._store.counted()
        if native is not None:
            request = self._reading(native, request)
        replies = client._firestore_api.batch_get_documents(request=request, metadata=client._rpc_metadata, **options)
        # The server answers in any order; put each snapshot back where it was asked for.
        snaps = [_parse_batch_get(reply, references, client) for reply in
                 (self._began(native, replies) if native is not None else replies) if reply._pb.WhichOneof("result")]
        if self._versions is not None:
            for snap in snaps:
                if snap.reference.path not in growing:
                    self._versions.setdefault(snap.reference.path, snap.update_time if snap.exists else None)
        found = {snap.reference.path: _data(snap) for snap in snaps}
        return [found.get(path) for path in paths]

    def query(self, query: Query) -> list[Doc]:
        native = self._before_read(query.collection)
        if native is None:
            raise _NeedsLocks
        self._store.observe(query)
        self._store.counted()
        client, asked = self._store.client, self._store._native(query)
        request, prefix, options = asked._prep_stream(None, **self._attempt.read_options())
        replies = client._firestore_api.run_query(request=self._reading(native, request),
                                                  metadata=client._rpc_metadata, **options)
        snaps = (_query_response_to_snapshot(reply, asked._parent, prefix) for reply in self._began(native, replies))
        return [_doc(query, snap) for snap in snaps if snap is not None]

    @staticmethod
    def _reading(native: firestore.Transaction, request: dict[str, Any]) -> dict[str, Any]:
        """The read request, in the transaction, or beginning it when this is its first read
        (`newTransaction`: the server begins it and answers with its id, one RPC fewer)."""
        request.pop("transaction", None)
        if native.in_progress:
            request["transaction"] = native.id
        else:
            request["new_transaction"] = _READ_WRITE
        return request

    @staticmethod
    def _began(native: firestore.Transaction, replies: Iterable[Any]) -> Iterator[Any]:
        """Each reply, after taking the transaction's id from the one that carries it."""
        for reply in replies:
            if reply.transaction and not native.in_progress:
                native._id = reply.transaction
            yield reply
        if not native.in_progress:
            raise StoreError("the store began no transaction for a read that asked it to (newTransaction)")

    def create(self, path: str, data: dict[str, Any]) -> None:
        self._wrote = True
        self._native.create(self._ref(path), dict(data))

    def set(self, path: str, data: dict[str, Any]) -> None:
        self._wrote = True
        self._native.set(self._ref(path), dict(data))

    def update(self, path: str, fields: dict[str, Any]) -> None:
        self._wrote = True
        self._native.update(self._ref(path), _top_level(fields))

    def delete(self, path: str) -> None:
        self._wrote = True
        self._native.delete(self._ref(path))

    def increment(self, path: str, deltas: Mapping[str, int | float], fields: Mapping[str, Any] | None = None) -> None:
        """Gathered per document and written once at the end, as one merge with `Increment`
        transforms: several bumps of one counter document in a transaction make one write."""
        self._wrote = True
        check_path(path, collection=False)
        check_counter_fields(deltas, fields)
        sums, values = self._counters.setdefault(path, ({}, {}))
        for name, delta in deltas.items():
            sums[name] = sums.get(name, 0) + delta
        values.update(fields or {})

    def write_counters(self) -> None:
        for path, (sums, values) in self._counters.items():
            data = {**values, **{name: firestore.Increment(delta) for name, delta in sums.items()}}
            self._native.set(self._ref(path), data, merge=True)
        self._counters.clear()

    def read_absent(self) -> list[str]:
        """The documents an optimistic run read as absent."""
        return [path for path, version in (self._versions or {}).items() if version is None]

    def guard_reads(self) -> int:
        """Make the optimistic commit hold only if every document read is as it was read: the
        first write to each carries its update time (or its absence) as its precondition, and
        one not written gets a write that changes nothing under that precondition (an update of
        no field keeps the update time; a delete of an absent document deletes nothing).
        Returns how many documents are guarded."""
        assert isinstance(self._native, firestore.WriteBatch) and self._versions is not None
        client = self._store.client
        names = {path: self._ref(path)._document_path for path in self._versions}
        paths = {name: path for path, name in names.items()}
        guarded: set[str] = set()
        for pb in self._native._write_pbs:
            path = paths.get(pb.delete or pb.update.name)
            if path is None or path in guarded:
                continue
            guarded.add(path)
            must_exist = "exists" in pb.current_document and pb.current_document.exists  # an update
            if "exists" in pb.current_document and not must_exist:
                continue  # a create: it requires the absence it read already (or fails, as it should)
            if (version := self._versions[path]) is not None:
                client.write_option(last_update_time=version).modify_write(pb)
            elif must_exist:
                raise _Unclear  # an update of what it read as absent: a transaction reports Missing
            else:
                pb.current_document = common_pb.Precondition(exists=False)
        for path, version in self._versions.items():
            if path in guarded:
                continue
            if version is None:
                verify = write_pb.Write(delete=names[path], current_document=common_pb.Precondition(exists=False))
            else:
                verify = write_pb.Write(update=document_pb.Document(name=names[path]),
                                        update_mask=common_pb.DocumentMask(field_paths=[]))
                client.write_option(last_update_time=version).modify_write(verify)
            self._native._add_write_pbs([verify])
        return len(self._versions)


class _NeedsReads(BaseException):  # noqa: N818 - a signal, not an error; BaseException so no service catches it
    """Raised at the first read of a write-only try (see `FirestoreStore._write_only`)."""


class _NeedsLocks(BaseException):  # noqa: N818 - a signal, as above
    """Raised at the first query of an optimistic try (see `FirestoreStore._optimistic`)."""


class _Collided(Exception):  # noqa: N818 - a signal, as above
    """An optimistic commit refused: a document it read changed since (a racer committed)."""


class _Unclear(Exception):  # noqa: N818 - a signal, as above
    """An optimistic commit refused for existence (a create's or an update's): a racer's doing,
    or the function's own error; its run in a transaction tells which, as before."""


#: Optimistic tries of a transaction function before it runs in a locking transaction (with turns).
OPTIMISTIC_TRIES = 10
#: The pause before another optimistic try: its racer has committed already.
OPTIMISTIC_PAUSE_S = 0.02
#: Transaction functions (by their code) seen to query: they run in a transaction at once.
_LOCKING: set[Any] = set()


def fn_code(fn: Callable[..., Any]) -> Any:
    """What identifies a transaction function across calls: its code (a closure is new each call)."""
    return getattr(fn, "__code__", fn)


#: A read that begins the transaction asks for a read-write one (what BeginTransaction's default is).
_READ_WRITE: dict[str, Any] = {"read_write": {}}


def _roll_back(native: firestore.Transaction) -> None:
    """Roll back, keeping the error that caused it: a rollback that fails (a transaction the
    server already aborted) changes nothing, and Firestore expires what it still holds."""
    try:
        native._rollback()
    except gexc.GoogleAPICallError as exc:
        log.info("rollback failed after an error (the transaction ends at the server): %s", exc)


def _top_level(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Quote each name so a field is always top-level, never a dotted path into a map."""
    return {FieldPath(name).to_api_repr(): value for name, value in fields.items()}


def _data(snap: Any) -> dict[str, Any] | None:
    return dict(snap.to_dict()) if snap.exists else None


def _doc(query: Query, snap: Any) -> Doc:
    return Doc(f"{query.collection}/{snap.id}", dict(snap.to_dict()), version=snap.update_time)
