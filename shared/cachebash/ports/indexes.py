"""Every composite index the services' queries need, declared once.

`firestore.indexes.json` is rendered from this list (a test keeps the file in step), the
SQLite adapter builds the same indexes as expression indexes, and the index test fails
any query the services issue that no index here serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cachebash.domain.task_states import Phase
from cachebash.ports.store import RANGE_OPS, Query

ASCENDING, DESCENDING, CONTAINS = "ASCENDING", "DESCENDING", "CONTAINS"
_EQUALITY_OPS = ("==", "in")


@dataclass(frozen=True)
class Index:
    collection_group: str
    fields: tuple[tuple[str, str], ...]  # (field, ASCENDING | DESCENDING | CONTAINS)
    #: The only rows any query of this index reads: (field, value) pairs each of its queries
    #: filters on with `==`. The SQLite adapter builds a partial index over just those rows, so a
    #: write of any other row (a finished task, say) does not maintain it; Firestore ignores it.
    only: tuple[tuple[str, str | bool], ...] = ()

    @property
    def name(self) -> str:
        return "ix_" + self.collection_group + "_" + "_".join(f for f, _ in self.fields)


def _index(group: str, *fields: str, only: dict[str, str | bool] | None = None) -> Index:
    """`"-f"` is f descending; `"f[]"` is f as an array for `array_contains`; `only`: see Index.only."""
    def mode(spec: str) -> tuple[str, str]:
        if spec.endswith("[]"):
            return spec[:-2], CONTAINS
        return (spec[1:], DESCENDING) if spec.startswith("-") else (spec, ASCENDING)

    return Index(group, tuple(mode(f) for f in fields), tuple((only or {}).items()))


_QUEUE_ORDER = ("priorityRank", "createdAt")

INDEXES: tuple[Index, ...] = (
    _index("tasks", "target", "phase", "type", *_QUEUE_ORDER),
    _index("tasks", "target", "phase", *_QUEUE_ORDER),
    _index("tasks", "target", "type", *_QUEUE_ORDER),
    _index("tasks", "target", *_QUEUE_ORDER),
    # The sweeper's: lapsed leases of active tasks, queued tasks past their expiry.
    _index("tasks", "phase", "leaseExpiresAt", only={"phase": Phase.ACTIVE.value}),
    _index("tasks", "phase", "expiresAt", only={"phase": Phase.QUEUED.value}),
    _index("messages", "target", "delivered", *_QUEUE_ORDER),
    _index("messages", "target", "delivered", "message_type", *_QUEUE_ORDER),
    _index("messages", "threadId", "createdAt"),
    _index("keys", "tenantId", "createdAt"),
    # The owner's console: the task board (newest first, per phase, optionally per target) and the inbox.
    _index("tasks", "phase", "-createdAt"),
    _index("tasks", "target", "phase", "-createdAt"),
    _index("tasks", "target", "type", "-createdAt"),
    _index("messages", "target", "-createdAt"),
    # Usage (services.usage): one program's counter documents of a range of days; shards to fold.
    _index("usage", "program", "day"),
    _index("usage", "compacted", "day", only={"compacted": False}),
    # Housekeeping (services.sweeper): expired and long-delivered messages, summarised push counters.
    _index("messages", "delivered", "expiresAt", only={"delivered": False}),
    _index("messages", "delivered", "deliveredAt", only={"delivered": True}),
    _index("push_usage", "pending", "hour"),
    # What a process listens to while calls wait (services.watching): queued tasks, undelivered
    # messages and revoked keys written since the listener opened.
    _index("tasks", "phase", "-updatedAt", only={"phase": Phase.QUEUED.value}),
    _index("messages", "delivered", "-createdAt", only={"delivered": False}),
    _index("keys", "tenantId", "active", "-revokedAt", only={"active": False}),
)


def collection_group(query: Query) -> str:
    return query.collection.rpartition("/")[2]


def needs_composite(query: Query) -> bool:
    """Firestore serves a query from its automatic single-field indexes when it filters or
    orders on one field only, or has only equality-type filters (`==`, `in`,
    `array_contains`, merged across fields) and no order; anything else needs a composite index."""
    fields = {f.field for f in query.filters} | {o.field for o in query.order_by}
    if len(fields) <= 1:
        return False
    only_equalities = all(f.op in (*_EQUALITY_OPS, "array_contains") for f in query.filters)
    return not (only_equalities and not query.order_by)


def serving_index(query: Query, indexes: tuple[Index, ...] | None = None) -> Index | None:
    """The declared index that serves `query`: first its equality fields (in any order, any
    direction) and `array_contains` fields (as CONTAINS), then its order-by fields in order
    with matching directions. A range filter without an order-by orders by that field
    ascending, as Firestore does. Exact match only: Firestore does not scan an index
    backwards for a query, nor skip fields it does not constrain."""
    group = collection_group(query)
    equality = {f.field for f in query.filters if f.op in _EQUALITY_OPS}
    contains = {f.field for f in query.filters if f.op == "array_contains"}
    ordered = [(o.field, DESCENDING if o.descending else ASCENDING) for o in query.order_by]
    ranged = [f.field for f in query.filters if f.op in RANGE_OPS]
    if ranged and not ordered:
        ordered = [(ranged[0], ASCENDING)]
    for index in INDEXES if indexes is None else indexes:
        split = len(index.fields) - len(ordered)
        if index.collection_group != group or split < 0:
            continue
        head, tail = index.fields[:split], list(index.fields[split:])
        head_equality = {f for f, mode in head if mode != CONTAINS}
        head_contains = {f for f, mode in head if mode == CONTAINS}
        if head_equality == equality and head_contains == contains and tail == ordered:
            return index
    return None


def firestore_indexes_json(indexes: tuple[Index, ...] = INDEXES) -> str:
    body = {
        "indexes": [
            {
                "collectionGroup": index.collection_group,
                "queryScope": "COLLECTION",
                "fields": [
                    {"fieldPath": f, "arrayConfig": CONTAINS} if mode == CONTAINS else {"fieldPath": f, "order": mode}
                    for f, mode in index.fields
                ],
            }
            for index in indexes
        ],
        "fieldOverrides": [],
    }
    return json.dumps(body, indent=2) + "\n"
