"""The store port on one SQLite file: documents as JSON rows, WAL, real transactions.

Every document is a row of one table keyed by (collection path, id). Filters and orders
read fields with `json_extract`, and the composite indexes the services declare are built
as expression indexes over the same expressions, so queries stay index-served at 100k+
documents. Writes are buffered and applied at commit, as in Firestore.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cachebash.domain.errors import Contention
from cachebash.ports.indexes import INDEXES, Index
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


def _index_sql(index: Index) -> str:
    columns = ", ".join(f"{_expr(f)}{' DESC' if o == 'DESCENDING' else ''}" for f, o in index.fields)
    return f"CREATE INDEX IF NOT EXISTS {index.name} ON docs(collection, {columns})"


class SqliteStore(Store):
    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        super().__init__()
        self.path = str(path)
        self.busy_timeout_s = busy_timeout_s
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            self._conn.executescript(_SCHEMA)
            for index in INDEXES:
                self._conn.execute(_index_sql(index))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def run_transaction(self, fn: Callable[[Transaction], T]) -> T:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise Contention(
                    f"the database stayed locked by another process for {self.busy_timeout_s:g} s; nothing was "
                    f"changed. Call again in {RETRY_AFTER_S} s; a call with an idempotency_key is safe to repeat",
                    retry_after_seconds=RETRY_AFTER_S) from exc
            try:
                tx = _SqliteTransaction(self)
                result = fn(tx)
                tx.apply()
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    def get(self, path: str) -> dict[str, Any] | None:
        parent, doc_id = parent_and_id(path)
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def query(self, query: Query) -> list[Doc]:
        self.observe(query)
        with self._lock:
            return _run_query(self._conn, query)

    def count(self, query: Query) -> int:
        self.observe(query)
        where, params = _where(query)
        limit = f" LIMIT {int(query.limit)}" if query.limit is not None else ""
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM docs WHERE {where}{limit})",
                                     params).fetchone()
        return int(row[0])

    # Used by the transaction, under the store's lock.
    def _get_many(self, paths: Sequence[str]) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        for path in paths:
            parent, doc_id = parent_and_id(path)
            row = self._conn.execute(
                "SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)
            ).fetchone()
            found.append(json.loads(row[0]) if row else None)
        return found


class _SqliteTransaction(Transaction):
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._writes: list[tuple[str, str, dict[str, Any] | None]] = []

    def _before_read(self) -> None:
        if self._writes:
            raise StoreError("read after write in a transaction (Firestore requires all reads first)")

    def get(self, path: str) -> dict[str, Any] | None:
        return self.get_all([path])[0]

    def get_all(self, paths: Sequence[str]) -> list[dict[str, Any] | None]:
        self._before_read()
        return self._store._get_many(paths)

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
        for kind, path, data in self._writes:
            parent, doc_id = parent_and_id(path)
            if kind == "create":
                try:
                    conn.execute("INSERT INTO docs VALUES (?, ?, ?)", (parent, doc_id, _dump(data)))
                except sqlite3.IntegrityError:
                    raise AlreadyExists(path) from None
            elif kind == "set":
                conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (parent, doc_id, _dump(data)))
            elif kind == "increment":
                _increment(conn, parent, doc_id, data or {})
            elif kind == "update":
                row = conn.execute(
                    "SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)
                ).fetchone()
                if row is None:
                    raise Missing(path)
                merged = {**json.loads(row[0]), **(data or {})}
                conn.execute(
                    "UPDATE docs SET data = ? WHERE collection = ? AND id = ?", (_dump(merged), parent, doc_id)
                )
            else:
                conn.execute("DELETE FROM docs WHERE collection = ? AND id = ?", (parent, doc_id))


def _increment(conn: sqlite3.Connection, parent: str, doc_id: str, change: dict[str, Any]) -> None:
    """Read, add, write: inside the transaction's BEGIN IMMEDIATE, so no other writer interleaves."""
    row = conn.execute("SELECT data FROM docs WHERE collection = ? AND id = ?", (parent, doc_id)).fetchone()
    doc = {**(json.loads(row[0]) if row else {}), **change["fields"]}
    for name, delta in change["deltas"].items():
        current = doc.get(name)
        doc[name] = (current if isinstance(current, int | float) and not isinstance(current, bool) else 0) + delta
    conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (parent, doc_id, _dump(doc)))


def _dump(data: dict[str, Any] | None) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


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
    where, params = _where(query)
    order = ", ".join(f"{_expr(o.field)}{' DESC' if o.descending else ''}" for o in query.order_by)
    last_desc = bool(query.order_by) and query.order_by[-1].descending
    order = (order + ", " if order else "") + ("id DESC" if last_desc else "id")
    sql = f"SELECT id, data FROM docs WHERE {where} ORDER BY {order}"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    rows = conn.execute(sql, params).fetchall()
    return [Doc(f"{query.collection}/{doc_id}", json.loads(data)) for doc_id, data in rows]


def _where(query: Query) -> tuple[str, list[Any]]:
    clauses = ["collection = ?"]
    params: list[Any] = [query.collection]
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
