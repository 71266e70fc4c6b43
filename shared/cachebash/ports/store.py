"""The document store port, shaped like Firestore.

Documents live at slash paths (`tenants/t1/tasks/abc`). Queries are limited to what
Firestore can serve with a composite index: equality filters, at most one `in`, range
filters on one field only, order-by and a cursor. Transactions read first and write after,
and may be run again on contention, so the function passed to `run_transaction` must not
have side effects outside the transaction. Adapters enforce all of this, so a service that
works on SQLite also works on Firestore.

Results come in order-by order, ties broken by document id in the direction of the last
order-by (Firestore's implicit `__name__` order, which cursors rely on); with no order-by, by
document id. Two differences adapters cannot hide, so services avoid them: order only by
fields every matching document has (Firestore leaves out documents that lack an order-by
field; SQLite sorts them first), and filter `== None` only on fields always written
(Firestore matches stored nulls only; SQLite also matches a missing field).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Op = Literal["==", "in", "<", "<=", ">", ">=", "array_contains"]
RANGE_OPS = frozenset({"<", "<=", ">", ">="})
FIELD_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_IN_VALUES = 30


class StoreError(Exception):
    """A misuse of the port: a bug in the calling service, never the agent's fault."""


class AlreadyExists(StoreError):
    pass


class Missing(StoreError):
    pass


@dataclass(frozen=True)
class Filter:
    field: str
    op: Op
    value: Any


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """A query over one collection. `start_after` holds the order-by values of the last
    document seen, followed by its id, exactly as `Doc.cursor(query)` returns them."""

    collection: str
    filters: tuple[Filter, ...] = ()
    order_by: tuple[Order, ...] = ()
    limit: int | None = None
    start_after: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        check_query(self)

    def where(self, field: str, op: Op, value: Any) -> Query:
        return _replace(self, filters=(*self.filters, Filter(field, op, value)))

    def order(self, field: str, descending: bool = False) -> Query:
        return _replace(self, order_by=(*self.order_by, Order(field, descending)))

    def after(self, cursor: tuple[Any, ...] | None) -> Query:
        return _replace(self, start_after=cursor)

    def take(self, limit: int) -> Query:
        return _replace(self, limit=limit)


def _replace(query: Query, **changes: Any) -> Query:
    values = {name: getattr(query, name) for name in Query.__dataclass_fields__}
    values.update(changes)
    return Query(**values)


def check_query(query: Query) -> None:
    """Refuse any query Firestore could not run, on every adapter."""
    check_path(query.collection, collection=True)
    for name in [f.field for f in query.filters] + [o.field for o in query.order_by]:
        if not FIELD_PATTERN.match(name):
            raise StoreError(f"bad field name {name!r}")
    ins = [f for f in query.filters if f.op == "in"]
    if len(ins) > 1:
        raise StoreError("at most one 'in' filter per query")
    if ins and not (0 < len(ins[0].value) <= MAX_IN_VALUES):
        raise StoreError(f"'in' takes 1 to {MAX_IN_VALUES} values")
    ranged = {f.field for f in query.filters if f.op in RANGE_OPS}
    if len(ranged) > 1:
        raise StoreError("range filters on more than one field")
    if ranged and query.order_by and query.order_by[0].field not in ranged:
        raise StoreError("with a range filter, the first order-by must be on that field")
    if query.start_after is not None and len(query.start_after) != len(query.order_by) + 1:
        raise StoreError("start_after needs one value per order-by field plus the document id")


def check_path(path: str, *, collection: bool) -> None:
    parts = path.split("/")
    if any(not part for part in parts) or (len(parts) % 2 == 1) != collection:
        kind = "collection" if collection else "document"
        raise StoreError(f"{path!r} is not a {kind} path")


def parent_and_id(path: str) -> tuple[str, str]:
    check_path(path, collection=False)
    parent, _, doc_id = path.rpartition("/")
    return parent, doc_id


@dataclass(frozen=True)
class Doc:
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    #: The adapter's revision of the document as it was read (Firestore: its update time), for
    #: `Store.update_unchanged`; None where the adapter keeps none.
    version: Any = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.path.rpartition("/")[2]

    def cursor(self, query: Query) -> tuple[Any, ...]:
        return (*(self.data.get(o.field) for o in query.order_by), self.id)


class Transaction(ABC):
    """Reads, then writes. Reading after the first write is a bug and is refused."""

    @abstractmethod
    def get(self, path: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def get_all(self, paths: Sequence[str], *, growing: Collection[str] = ()) -> list[dict[str, Any] | None]:
        """`growing`: those of `paths` whose numbers only grow and that this transaction reads
        only to bound another number from above (finished tasks, subtracted from created ones):
        a value older than the commit errs on the safe side, so these are neither guarded nor
        locked (on Firestore every finish's bump would otherwise refuse or block each create)."""

    @abstractmethod
    def query(self, query: Query) -> list[Doc]: ...

    @abstractmethod
    def create(self, path: str, data: dict[str, Any]) -> None:
        """Write a new document; the transaction fails with `AlreadyExists` if it exists."""

    @abstractmethod
    def set(self, path: str, data: dict[str, Any]) -> None: ...

    @abstractmethod
    def update(self, path: str, fields: dict[str, Any]) -> None:
        """Replace the given top-level fields of an existing document."""

    @abstractmethod
    def delete(self, path: str) -> None: ...

    @abstractmethod
    def increment(self, path: str, deltas: Mapping[str, int | float], fields: Mapping[str, Any] | None = None) -> None:
        """Add `deltas` to numeric top-level fields (a missing field, or document, counts as 0) and
        set `fields`, creating the document if need be. Needs no read, so counters many writers
        bump never make their transactions contend (Firestore: `Increment` transforms). Field
        names are plain identifiers (`check_counter_fields`)."""


class Wrapping(Transaction):
    """A transaction that hands every operation to another one: the base of wrappers that add
    to a transaction (the outbox's `emit`, a test's write log) without restating the port."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, path: str) -> dict[str, Any] | None:
        return self._tx.get(path)

    def get_all(self, paths: Sequence[str], *, growing: Collection[str] = ()) -> list[dict[str, Any] | None]:
        return self._tx.get_all(paths, growing=growing)

    def query(self, query: Query) -> list[Doc]:
        return self._tx.query(query)

    def create(self, path: str, data: dict[str, Any]) -> None:
        self._tx.create(path, data)

    def set(self, path: str, data: dict[str, Any]) -> None:
        self._tx.set(path, data)

    def update(self, path: str, fields: dict[str, Any]) -> None:
        self._tx.update(path, fields)

    def delete(self, path: str) -> None:
        self._tx.delete(path)

    def increment(self, path: str, deltas: Mapping[str, int | float], fields: Mapping[str, Any] | None = None) -> None:
        self._tx.increment(path, deltas, fields)


def check_counter_fields(deltas: Mapping[str, int | float], fields: Mapping[str, Any] | None) -> None:
    """Counters are top-level fields with plain names: a dotted or quoted name would be a path
    into a map on Firestore and a literal name elsewhere, and the npm stand-in takes only plain ones."""
    for name in [*deltas, *(fields or {})]:
        if not FIELD_PATTERN.match(name) or name.startswith("__"):
            raise StoreError(f"bad counter field name {name!r}")
    for name, value in deltas.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StoreError(f"counter {name!r} must be a number, not {value!r}")


QueryObserver = Callable[[Query], None]


@dataclass(frozen=True)
class Change:
    """One document of a listened query that changed: added, modified, or `removed` (deleted,
    or no longer among the query's results, e.g. pushed out of a limit)."""

    doc: Doc
    removed: bool = False


#: Called with what changed among the query's results since the last call (on the first call,
#: every result counts as added). Runs on the adapter's own thread: it must not block.
OnChanges = Callable[[list[Change]], None]


class Listening(ABC):
    """A query being listened to (see `Store.listen`)."""

    @property
    @abstractmethod
    def live(self) -> bool:
        """Whether results are flowing: the first ones arrived and the stream has not ended."""

    @property
    @abstractmethod
    def ended(self) -> bool:
        """Whether the stream ended for good (closed, or an error it could not recover from)."""

    @abstractmethod
    def close(self) -> None: ...


class Store(ABC):
    #: Whether calls block on network I/O, so the server should run them off its event loop.
    blocking_io: bool = False
    #: Whether `listen` works: the store pushes changes of a query as they commit (Firestore).
    listens: bool = False

    def __init__(self) -> None:
        self.observers: list[QueryObserver] = []

    def observe(self, query: Query) -> None:
        """Tell observers (the index checker in tests) about every query issued."""
        for observer in self.observers:
            observer(query)

    @abstractmethod
    def run_transaction(self, fn: Callable[[Transaction], T]) -> T: ...

    @abstractmethod
    def get(self, path: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def query(self, query: Query) -> list[Doc]: ...

    def update_unchanged(self, docs: Sequence[Doc], fields: Mapping[str, Any]) -> bool:
        """Set `fields` on every one of `docs` (read by `query`) at once, provided none of them
        changed or went away since it was read; otherwise write nothing and return False.

        For a writer that found its documents by a query: the query runs outside any transaction,
        so it locks nothing, and this write fails if a racer got there first. Here it is a
        transaction that reads them again and compares; adapters that keep a revision per
        document check that instead, in one write without a transaction (Firestore: update-time
        preconditions in one batch), so it never waits for, nor makes wait, other documents' writers."""
        if not docs:
            return True
        paths = [doc.path for doc in docs]

        def check(tx: Transaction) -> bool:
            current = tx.get_all(paths)
            if any(now != doc.data for now, doc in zip(current, docs, strict=True)):
                return False
            for path in paths:
                tx.update(path, dict(fields))
            return True

        return self.run_transaction(check)

    def count(self, query: Query) -> int:
        """How many documents the query matches (set `take` to bound the work). Not transactional:
        for limits that may be passed by as many as race them. Adapters count without reading
        the documents where they can (Firestore: an aggregation, a read per 1,000 entries)."""
        return len(self.query(query))

    def listen(self, query: Query, on_changes: OnChanges) -> Listening:
        """Push the query's changes to `on_changes` as other processes commit them, until closed.
        Only where `listens` is true; other stores are read again instead (a bounded poll)."""
        raise StoreError(f"{type(self).__name__} cannot listen to queries")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; adapters that hold none need not override it."""
