"""The store port on one SQLite file: documents as JSON rows, WAL, real transactions.

Every document is a row of one table keyed by (collection path, id). Filters and orders
read fields with `json_extract`, and the composite indexes the services declare are built
as expression indexes over the same expressions, so queries stay index-served at 100k+
documents. Writes are buffered and applied at commit, as in Firestore.

Each index is partial: it holds only the rows of its collection group (the last segment of
the collection path, as Firestore's collection-group indexes do), and every query names its
group in the same words, which is what lets SQLite use a partial index. Without that, each
write to any collection (an idempotency record, a usage counter) evaluated and rewrote every
index of every collection: most of a write's cost, and most of the pages each commit wrote.
Indexes built by an older version are replaced when the store opens (`_migrate_indexes`).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from cachebash.domain import strict_json
from cachebash.domain.errors import Contention
from cachebash.ports.indexes import INDEXES, Index, collection_group
from cachebash.ports.store import (
    AlreadyExists,
    Doc,
    Filter,
    Missing,
    Query,
    Store,
    StoreError,
    Transaction,
    check_counter_fields,
    check_path,
    parent_and_id,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
"""

_SQL_OPS = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
#: How long a transaction waits for another process's write lock (the CLI next to a running
#: server) before the call gives up with a retryable CONTENTION error; as on Firestore.
BUSY_TIMEOUT_S = 10.0
RETRY_AFTER_S = 5


def _expr(field: str) -> str:
    # Field names are checked against FIELD_PATTERN by the Query itself; inlining them
    # (not binding) is what lets SQLite match the expression indexes.
    return f"json_extract(data, '$.{field}')"


_GROUP_NAME = re.compile(r"^[A-Za-z0-9_]+$")
#: Per collection group, the fields some partial index holds only some values of (Index.only).
#: Queries compare these fields with literals, not bound values: SQLite decides whether a
#: partial index serves a query from a bound value too, but then marks the statement to be
#: planned again whenever that value is bound, which is every execution (~25 µs a query).
_INLINED: dict[str, frozenset[str]] = {
    group: frozenset(f for index in INDEXES if index.collection_group == group for f, _ in index.only)
    for group in {index.collection_group for index in INDEXES if index.only}
}


def _group_term(group: str) -> str:
    """The SQL term true of the rows of a collection group: the same text in an index's WHERE
    and in a query's (SQLite uses a partial index only for a query that repeats its terms).
    Only plain names (`_GROUP_NAME`) are inlined."""
    if not _GROUP_NAME.match(group):
        raise StoreError(f"index collection group {group!r} is not a plain name")
    return f"('/' || collection) GLOB '*/{group}'"


def _index_sql(index: Index) -> str:
    columns = ", ".join(f"{_expr(f)}{' DESC' if o == 'DESCENDING' else ''}" for f, o in index.fields)
    if index.fields[-1][1] == "DESCENDING":
        columns += ", id DESC"  # a query's ties follow its last order's direction (`_select_sql`): no sort
    where = " AND ".join([_group_term(index.collection_group), *(f"{_expr(f)} = {_literal(v)}" for f, v in index.only)])
    return f"CREATE INDEX {index.name} ON docs(collection, {columns}) WHERE {where}"


def _literal(value: str | bool) -> str:
    """A SQL literal equal to what json_extract gives for the JSON value (true is 1)."""
    if isinstance(value, bool):
        return str(int(value))
    return "'" + value.replace("'", "''") + "'"


def _migrate_indexes(conn: sqlite3.Connection) -> None:
    """Make the database's indexes exactly the declared ones: create the missing, and drop and
    rebuild any whose definition changed (an older version's index over every collection).
    Re-read under the write lock, so two processes opening one old database at once migrate it once."""
    wanted = {index.name: _index_sql(index) for index in INDEXES}
    if _indexes(conn) == wanted:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = _indexes(conn)
        for name, sql in have.items():
            if wanted.get(name) != sql:
                conn.execute(f"DROP INDEX {name}")
        for name, sql in wanted.items():
            if have.get(name) != sql:
                conn.execute(sql)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _indexes(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'docs' "
                        "AND name LIKE 'ix\\_%' ESCAPE '\\'").fetchall()
    return {str(name): str(sql) for name, sql in rows}


#: CACHEBASH_DURABILITY: what a COMMIT waits for. "normal": the WAL write (a process crash,
#: kill -9 included, loses nothing; a power cut or kernel crash may lose the last commits);
#: "full": an fsync of the WAL too (nothing acknowledged is lost even to a power cut).
SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}
#: The checkpointer's pause between checkpoints while writes arrive.
CHECKPOINT_INTERVAL_S = 0.2
#: The WAL's size past which the writer restarts it (`SqliteStore._restart_wal`), and what the
#: file is cut back to then: 4096 pages, four times SQLite's own autocheckpoint mark, so restarts
#: stay rare (one every few seconds at full dispatch load).
WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024
#: How long the writer's RESTART checkpoint waits for a checkpoint or reader in progress.
RESTART_WAIT_MS = 20
#: After a RESTART that could not finish (a reader in another process holds the WAL), the
#: writer's pause before it tries again, so its commits do not each wait RESTART_WAIT_MS.
RESTART_RETRY_S = 1.0
#: Failed group COMMITs remembered for their callers (`group_outcome`); a caller looks within
#: one event-loop turn, so a few are plenty.
FAILED_GROUPS_KEPT = 64


#: Per thread, the store whose write group is open on it (at most one: see `SqliteStore._begin`).
_GROUP_OPEN_ON_THREAD: dict[int, SqliteStore] = {}


class SqliteStore(Store):
    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S, durability: str = "normal") -> None:
        super().__init__()
        if durability not in SYNCHRONOUS:
            raise ValueError(f"durability must be one of {', '.join(SYNCHRONOUS)}, not {durability!r}")
        self.path = str(path)
        self.busy_timeout_s = busy_timeout_s
        self.durability = durability
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            self._conn.executescript(_SCHEMA)
            _migrate_indexes(self._conn)
        self._checkpointer = _Checkpointer(self.path) if self.path != ":memory:" else None
        self._wal = self.path + "-wal"
        self._restart_after = 0.0
        if self._checkpointer is not None:
            # Checkpoints (copying the WAL into the database file, with an fsync) run on the
            # checkpointer's thread, not inside whichever request's COMMIT crossed the WAL's
            # 1000-page mark: that COMMIT used to take several times as long as the others.
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        # Group commit (`group_commits`): the thread whose transactions share one COMMIT, how it
        # asks for that COMMIT, how many groups were opened, whether the last one is open, and
        # the groups whose COMMIT failed (so their callers are told, not answered as if written).
        self._group_thread: int | None = None
        self._schedule: Callable[[], bool] = lambda: False
        self._groups = 0
        self._group_open = False
        self._failed_groups: dict[int, BaseException] = {}

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._commit_group()
            self._conn.close()

    def group_commits(self, schedule: Callable[[], bool]) -> None:
        """From now on the calling thread's transactions join one open SQLite transaction, each
        in a SAVEPOINT of its own (its failure undoes only its writes), and `commit_group` commits
        them all at once: one COMMIT, one WAL append for many calls, which is most of what a
        commit costs. `schedule()` is called when a group opens and must arrange a `commit_group`
        call on this thread soon (the embedded server's event loop: its next turn); when it returns
        False (no loop running) the transaction commits alone, as without groups. Callers must not
        answer before the group they joined is committed (`GroupWait`); anything another thread
        does with the store commits the open group first, so no other thread ever sees, or mixes
        its own transaction into, writes that are not yet durable."""
        with self._lock:
            self._commit_group()
            self._group_thread = threading.get_ident()
            self._schedule = schedule

    def group_thread(self) -> int | None:
        return self._group_thread

    def group_mark(self) -> int:
        """The number of the group a transaction begun now would join; with `group_outcome`,
        what a caller checks after its work."""
        with self._lock:
            return self._groups if self._group_open else self._groups + 1

    def group_pending(self) -> bool:
        """Whether writes are waiting for `commit_group` (the caller must wait for it)."""
        return self._group_open

    def group_outcome(self, first: int) -> BaseException | None:
        """The failure, if any, of the COMMIT of a group from `first` (a `group_mark`) to the
        last one opened: what a call that began at that mark could have joined or read from."""
        with self._lock:
            return next((exc for n, exc in self._failed_groups.items() if first <= n <= self._groups), None)

    def commit_group(self) -> None:
        """Commit the open group, if one is open; a failed COMMIT is rolled back and recorded for
        `group_outcome`, never raised here (the callers that joined it are the ones to tell)."""
        with self._lock:
            self._commit_group()

    def _commit_group(self) -> None:
        if not self._group_open:
            return
        self._group_open = False
        if _GROUP_OPEN_ON_THREAD.get(self._group_thread or 0) is self:
            del _GROUP_OPEN_ON_THREAD[self._group_thread or 0]
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("SQLite COMMIT of write group %d failed (%s); its calls are answered with the error",
                      self._groups, exc)
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._failed_groups[self._groups] = exc
            while len(self._failed_groups) > FAILED_GROUPS_KEPT:
                del self._failed_groups[next(iter(self._failed_groups))]
            return
        self._committed()

    def _outside_group(self) -> None:
        """Under the lock, before another thread's read or transaction: commit the open group."""
        if self._group_open and threading.get_ident() != self._group_thread:
            self._commit_group()

    def _begin(self) -> None:
        # Another store's group open on this thread (a second instance on the same file, as tests
        # run them) would hold the file's write lock until this thread's next loop turn, which this
        # BEGIN would block: commit it first (its callers still wait for their flush, now a no-op).
        other = _GROUP_OPEN_ON_THREAD.get(threading.get_ident())
        if other is not None and other is not self:
            other.commit_group()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise Contention(
                f"the database stayed locked by another process for {self.busy_timeout_s:g} s; nothing was "
                f"changed. Call again in {RETRY_AFTER_S} s; a call with an idempotency_key is safe to repeat",
                retry_after_seconds=RETRY_AFTER_S) from exc

    def run_transaction(self, fn: Callable[[Transaction], T]) -> T:
        with self._lock:
            if threading.get_ident() == self._group_thread and (self._group_open or self._open_group()):
                self._conn.execute("SAVEPOINT call")
                result = self._apply(fn, undo=("ROLLBACK TO call", "RELEASE call"))
                self._conn.execute("RELEASE call")
                return result
            self._outside_group()
            self._begin()
            result = self._apply(fn, undo=("ROLLBACK",))
            self._conn.execute("COMMIT")
            self._committed()
            return result

    def _apply(self, fn: Callable[[Transaction], T], undo: tuple[str, ...]) -> T:
        """Run `fn` in a transaction and write what it buffered; on any failure run `undo` (the
        whole transaction's ROLLBACK, or a group member's own savepoint) and raise."""
        try:
            tx = _SqliteTransaction(self)
            result = fn(tx)
            tx.apply()
        except BaseException:
            for statement in undo:
                self._conn.execute(statement)
            raise
        return result

    def _committed(self) -> None:
        if self._checkpointer is not None:
            if self._wal_too_long():
                self._restart_wal()
            self._checkpointer.written.set()

    def _wal_too_long(self) -> bool:
        """Whether to restart the WAL now: it passed the limit, no restart failed within the
        last RESTART_RETRY_S, and the checkpointer is not copying (it holds the checkpoint lock
        meanwhile; the next commit tries)."""
        if self._checkpointer is None or self._checkpointer.copying or time.monotonic() < self._restart_after:
            return False
        try:
            return os.stat(self._wal).st_size > WAL_SIZE_LIMIT_BYTES
        except OSError:
            return False

    def _restart_wal(self) -> None:
        """See `_Checkpointer`. Right after a COMMIT, so this connection holds no lock; a short
        busy wait, since this runs on the writer's thread (the event loop's)."""
        self._conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        try:
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.OperationalError as exc:
            log.debug("SQLite WAL restart skipped (%s)", exc)
            busy = 1
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        if busy:
            self._restart_after = time.monotonic() + RESTART_RETRY_S

    def _open_group(self) -> bool:
        if not self._schedule():
            return False
        self._begin()
        self._groups += 1
        self._group_open = True
        _GROUP_OPEN_ON_THREAD[threading.get_ident()] = self
        return True

    def get(self, path: str) -> dict[str, Any] | None:
        parent, doc_id = parent_and_id(path)
        with self._lock:
            self._outside_group()
            row = self._conn.execute(
                "SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)
            ).fetchone()
        return _load(row[0]) if row else None

    def query(self, query: Query) -> list[Doc]:
        self.observe(query)
        with self._lock:
            self._outside_group()
            return _run_query(self._conn, query)

    def count(self, query: Query) -> int:
        self.observe(query)
        where, params = _where(query)
        limit = f" LIMIT {int(query.limit)}" if query.limit is not None else ""
        with self._lock:
            self._outside_group()
            row = self._conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM docs WHERE {where}{limit})",
                                     params).fetchone()
        return int(row[0])

    # Used by the transaction, under the store's lock.
    def _get_many(self, paths: Sequence[str]) -> list[str | None]:
        found: list[str | None] = []
        for path in paths:
            parent, doc_id = parent_and_id(path)
            row = self._conn.execute(
                "SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)
            ).fetchone()
            found.append(row[0] if row else None)
        return found


class _Checkpointer:
    """Checkpoints the WAL from a thread of its own, on its own connection, while writes come
    in. PASSIVE: it never waits for nor blocks a writer or reader. Durability is the WAL's (a
    commit is durable once in the WAL), so when checkpoints run changes nothing.

    A WAL only starts again from its beginning when a writer finds every frame copied, which
    under steady writes never happens: the next commit always lands while a checkpoint runs.
    It then grew without end (640 MB after a minute of dispatch), and every page read searched
    one more wal-index table for each 4096 frames (a call's SQL took 1.5x as long). So once the
    WAL file passes WAL_SIZE_LIMIT_BYTES, the writer, right after a COMMIT, runs a RESTART
    checkpoint (`SqliteStore._restart_wal`): it copies the few frames this thread has not yet
    copied, the next commit rewrites the WAL from its start, and `journal_size_limit` cuts the
    file back to the limit (so the file passing it again means as many frames again). From this
    thread a RESTART rarely won the write lock from a busy writer.
    """

    def __init__(self, path: str) -> None:
        self.written = threading.Event()
        self._stopping = threading.Event()
        self.copying = False  # a PASSIVE round is running (the writer's RESTART would wait for it)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.written.wait()
                self.written.clear()
                if self._stopping.is_set():
                    break
                self.copying = True
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # the next write tries again; the WAL only grows meanwhile
                    log.warning("SQLite WAL checkpoint failed (%s); retrying at the next write", exc)
                finally:
                    self.copying = False
                self._stopping.wait(CHECKPOINT_INTERVAL_S)
        finally:
            self._conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self.written.set()
        self._thread.join()


class _SqliteTransaction(Transaction):
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._writes: list[tuple[str, str, dict[str, Any] | None]] = []
        # What this transaction read, as stored: `update` merges into it instead of reading the
        # row again (nothing else writes it before COMMIT: the transaction holds the write lock).
        self._read: dict[str, str | None] = {}

    def _before_read(self) -> None:
        if self._writes:
            raise StoreError("read after write in a transaction (Firestore requires all reads first)")

    def get(self, path: str) -> dict[str, Any] | None:
        return self.get_all([path])[0]

    def get_all(self, paths: Sequence[str], *, growing: Collection[str] = ()) -> list[dict[str, Any] | None]:
        self._before_read()
        texts = self._store._get_many(paths)
        self._read.update(zip(paths, texts, strict=True))
        return [None if text is None else _load(text) for text in texts]

    def query(self, query: Query) -> list[Doc]:
        self._before_read()
        self._store.observe(query)
        return _run_query(self._store._conn, query)

    def create(self, path: str, data: dict[str, Any]) -> None:
        check_path(path, collection=False)
        self._writes.append(("create", path, dict(data)))

    def set(self, path: str, data: dict[str, Any]) -> None:
        check_path(path, collection=False)
        self._writes.append(("set", path, dict(data)))

    def update(self, path: str, fields: dict[str, Any]) -> None:
        check_path(path, collection=False)
        self._writes.append(("update", path, dict(fields)))

    def delete(self, path: str) -> None:
        check_path(path, collection=False)
        self._writes.append(("delete", path, None))

    def increment(self, path: str, deltas: Mapping[str, int | float], fields: Mapping[str, Any] | None = None) -> None:
        check_path(path, collection=False)
        check_counter_fields(deltas, fields)
        self._writes.append(("increment", path, {"deltas": dict(deltas), "fields": dict(fields or {})}))

    def apply(self) -> None:
        conn = self._store._conn
        read = self._read
        for kind, path, data in self._writes:
            parent, doc_id = parent_and_id(path)
            stored = read.pop(path, _UNREAD)  # once written, the text read is stale
            if kind == "create":
                try:
                    conn.execute("INSERT INTO docs VALUES (?, ?, ?)", (parent, doc_id, _dump(path, data)))
                except sqlite3.IntegrityError:
                    raise AlreadyExists(path) from None
            elif kind == "set":
                conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (parent, doc_id, _dump(path, data)))
            elif kind == "increment":
                _increment(conn, path, data or {}, stored)
            elif kind == "update":
                if stored is _UNREAD:
                    row = conn.execute(
                        "SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)
                    ).fetchone()
                    stored = row[0] if row else None
                if stored is None:
                    raise Missing(path)
                merged = {**_load(str(stored)), **(data or {})}
                conn.execute(
                    "UPDATE docs SET data = ? WHERE collection = ? AND id = ?", (_dump(path, merged), parent, doc_id)
                )
            else:
                conn.execute("DELETE FROM docs WHERE collection = ? AND id = ?", (parent, doc_id))


def _increment(conn: sqlite3.Connection, path: str, change: dict[str, Any], stored: object) -> None:
    """Read (unless the transaction read the row: `stored`, its text or None), add, write:
    inside the transaction's BEGIN IMMEDIATE, so no other writer interleaves."""
    parent, doc_id = parent_and_id(path)
    if stored is _UNREAD:
        row = conn.execute("SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)).fetchone()
        stored = row[0] if row else None
    doc = {**(_load(str(stored)) if stored is not None else {}), **change["fields"]}
    for name, delta in change["deltas"].items():
        current = doc.get(name)
        doc[name] = (current if isinstance(current, int | float) and not isinstance(current, bool) else 0) + delta
    conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (parent, doc_id, _dump(path, doc)))


_UNREAD = object()


def _dump(path: str, data: dict[str, Any] | None) -> str:
    """Strict JSON (no NaN or Infinity: no JSON parser reads them back, and json_extract
    refuses the row), so the store never holds what the wire could not answer with."""
    try:
        return strict_json.dumps(data)
    except ValueError as exc:
        raise StoreError(f"{path}: a document cannot hold NaN or Infinity ({exc})") from None


def _load(text: str) -> dict[str, Any]:
    """orjson where it can (several times faster); Python's parser for what orjson refuses
    (integers beyond 64 bits), so every stored document still reads back."""
    try:
        value: dict[str, Any] = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = json.loads(text)
    return value


def _run_query(conn: sqlite3.Connection, query: Query) -> list[Doc]:
    ins = [f for f in query.filters if f.op == "in"]
    if ins and query.order_by and len(ins[0].value) > 1:
        # Like Firestore, serve `in` with an order as one index scan per value, merged:
        # a single SQL IN would sort every matching row, which grows with the table.
        parts = [
            _select(conn, Query(query.collection, _swap_in(query, value), query.order_by, query.limit,
                                query.start_after))
            for value in ins[0].value
        ]
        merged = heapq.merge(*parts, key=_sort_key(query))
        docs = list(merged)
        return docs[: query.limit] if query.limit is not None else docs
    return _select(conn, query)


def _swap_in(query: Query, value: Any) -> tuple[Filter, ...]:
    return tuple(Filter(f.field, "==", value) if f.op == "in" else f for f in query.filters)


def _sort_key(query: Query) -> Callable[[Doc], tuple[Any, ...]]:
    if any(o.descending for o in query.order_by):
        raise StoreError("merged 'in' queries support ascending orders only")

    def key(doc: Doc) -> tuple[Any, ...]:
        return (*(_orderable(doc.data.get(o.field)) for o in query.order_by), doc.id)

    return key


def _orderable(value: Any) -> tuple[int, Any]:
    # None sorts first, as SQLite (and Firestore's null) do.
    return (0, 0) if value is None else (1, value)


def _select(conn: sqlite3.Connection, query: Query) -> list[Doc]:
    rows = conn.execute(*_select_sql(query)).fetchall()
    return [Doc(f"{query.collection}/{doc_id}", _load(data)) for doc_id, data in rows]


def _select_sql(query: Query) -> tuple[str, list[Any]]:
    where, params = _where(query)
    order = ", ".join(f"{_expr(o.field)}{' DESC' if o.descending else ''}" for o in query.order_by)
    last_desc = bool(query.order_by) and query.order_by[-1].descending
    order = (order + ", " if order else "") + ("id DESC" if last_desc else "id")
    sql = f"SELECT id, data FROM docs WHERE {where} ORDER BY {order}"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    return sql, params


def query_plan(store: SqliteStore, query: Query) -> list[str]:
    """SQLite's plan for one query (`in` with an order: for one of its values), as EXPLAIN
    QUERY PLAN details; tests check from it that the declared indexes serve."""
    sql, params = _select_sql(query)
    with store._lock:
        return [row[3] for row in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def _where(query: Query) -> tuple[str, list[Any]]:
    clauses = ["collection = ?"]
    params: list[Any] = [query.collection]
    group = collection_group(query)
    if _GROUP_NAME.match(group):  # the declared indexes' groups all are; any other has no index to use
        clauses.append(_group_term(group))
    for f in query.filters:
        expr = _expr(f.field)
        if f.op == "in":
            clauses.append(f"{expr} IN ({', '.join('?' for _ in f.value)})")
            params.extend(_bindable(v) for v in f.value)
        elif f.op == "array_contains":
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(data, '$.{f.field}') WHERE value = ?)")
            params.append(_bindable(f.value))
        elif f.value is None and f.op == "==":
            clauses.append(f"{expr} IS NULL")
        elif f.op == "==" and f.field in _INLINED.get(group, ()) and isinstance(f.value, str | bool):
            clauses.append(f"{expr} = {_literal(f.value)}")
        else:
            clauses.append(f"{expr} {_SQL_OPS[f.op]} ?")
            params.append(_bindable(f.value))
    if query.start_after is not None:
        clause, values = _after(query)
        clauses.append(clause)
        params.extend(values)
    return " AND ".join(clauses), params


def _after(query: Query) -> tuple[str, list[Any]]:
    exprs = [_expr(o.field) for o in query.order_by] + ["id"]
    directions = [o.descending for o in query.order_by]
    directions.append(directions[-1] if directions else False)
    values = [_bindable(v) for v in query.start_after or ()]
    if len(set(directions)) == 1:
        op = "<" if directions[0] else ">"
        return f"({', '.join(exprs)}) {op} ({', '.join('?' for _ in exprs)})", values
    ors: list[str] = []
    params: list[Any] = []
    for i, expr in enumerate(exprs):
        terms = [f"{exprs[j]} = ?" for j in range(i)] + [f"{expr} {'<' if directions[i] else '>'} ?"]
        ors.append("(" + " AND ".join(terms) + ")")
        params.extend(values[: i + 1])
    return "(" + " OR ".join(ors) + ")", params


def _bindable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def iter_collections(store: SqliteStore) -> Iterable[str]:
    """Every collection path that holds documents; used by tests and admin tools."""
    with store._lock:
        return [row[0] for row in store._conn.execute("SELECT DISTINCT collection FROM docs")]
