"""Every composite index the services' queries need, declared once.

`firestore.indexes.json` is rendered from this list (a test keeps the file in step), the
SQLite adapter builds the same indexes as expression indexes, and the index test fails
any query the services issue that no index here serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cachebash.ports.store import Query


@dataclass(frozen=True)
class Index:
    collection_group: str
    fields: tuple[tuple[str, str], ...]  # (field, "ASCENDING" | "DESCENDING")

    @property
    def name(self) -> str:
        return "ix_" + self.collection_group + "_" + "_".join(f for f, _ in self.fields)


def _index(group: str, *fields: str) -> Index:
    return Index(group, tuple((f.lstrip("-"), "DESCENDING" if f.startswith("-") else "ASCENDING") for f in fields))


_QUEUE_ORDER = ("priorityRank", "createdAt")

INDEXES: tuple[Index, ...] = (
    _index("tasks", "target", "phase", "type", *_QUEUE_ORDER),
    _index("tasks", "target", "phase", *_QUEUE_ORDER),
    _index("tasks", "target", "type", *_QUEUE_ORDER),
    _index("tasks", "target", *_QUEUE_ORDER),
    _index("tasks", "phase", "leaseExpiresAt"),
    _index("tasks", "phase", "expiresAt"),
    _index("messages", "target", "delivered", *_QUEUE_ORDER),
    _index("messages", "target", "delivered", "message_type", *_QUEUE_ORDER),
    _index("messages", "threadId", "createdAt"),
    _index("keys", "tenantId", "createdAt"),
)


def collection_group(query: Query) -> str:
    return query.collection.rpartition("/")[2]


def needs_composite(query: Query) -> bool:
    """Firestore serves a query from its automatic single-field indexes when it filters or
    orders on one field only, or has equality filters and no order; anything else needs a
    composite index."""
    fields = {f.field for f in query.filters} | {o.field for o in query.order_by}
    if len(fields) <= 1:
        return False
    only_equalities = all(f.op in ("==", "in", "array_contains") for f in query.filters)
    return not (only_equalities and not query.order_by)


def serving_index(query: Query) -> Index | None:
    """The declared index that serves `query`: equality fields first (in any order), then
    the range/order fields in order, directions matching."""
    group = collection_group(query)
    equality = {f.field for f in query.filters if f.op in ("==", "in", "array_contains")}
    ordered = [(o.field, "DESCENDING" if o.descending else "ASCENDING") for o in query.order_by]
    ranged = [f.field for f in query.filters if f.op not in ("==", "in", "array_contains")]
    if ranged and not ordered:
        ordered = [(ranged[0], "ASCENDING")]
    for index in INDEXES:
        if index.collection_group != group:
            continue
        head = {f for f, _ in index.fields[: len(index.fields) - len(ordered)]}
        tail = list(index.fields[len(index.fields) - len(ordered):]) if ordered else []
        if head == equality and tail == ordered:
            return index
    return None


def firestore_indexes_json() -> str:
    body = {
        "indexes": [
            {
                "collectionGroup": index.collection_group,
                "queryScope": "COLLECTION",
                "fields": [{"fieldPath": f, "order": order} for f, order in index.fields],
            }
            for index in INDEXES
        ],
        "fieldOverrides": [],
    }
    return json.dumps(body, indent=2) + "\n"
