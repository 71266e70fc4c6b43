"""When Firestore needs a composite index, and which declared index serves a query.

The index guard (tests/support/query_guard.py) trusts these two helpers to fail any service
query that production Firestore would refuse, so their rules are pinned here case by case.
"""

from __future__ import annotations

import json

import pytest

from cachebash.ports.indexes import INDEXES, _index, firestore_indexes_json, needs_composite, serving_index
from cachebash.ports.store import Query

TASKS = Query("tenants/t/tasks")


@pytest.mark.parametrize("query", [
    TASKS,
    TASKS.where("target", "==", "b"),
    TASKS.order("createdAt", descending=True),
    TASKS.where("createdAt", ">", "x").order("createdAt"),
    TASKS.where("createdAt", ">", "x").where("createdAt", "<", "y"),
    TASKS.where("target", "==", "b").where("phase", "==", "queued"),
    TASKS.where("target", "in", ["a", "b"]).where("phase", "==", "queued"),
    TASKS.where("labels", "array_contains", "x").where("phase", "==", "queued"),
], ids=lambda q: repr([(f.field, f.op) for f in q.filters] + [(o.field, o.descending) for o in q.order_by]))
def test_single_field_indexes_serve(query: Query) -> None:
    assert not needs_composite(query)


@pytest.mark.parametrize("query", [
    TASKS.where("target", "==", "b").order("createdAt"),
    TASKS.where("phase", "==", "active").where("leaseExpiresAt", "<=", "x"),
    TASKS.order("priorityRank").order("createdAt"),
    TASKS.where("labels", "array_contains", "x").order("createdAt"),
])
def test_composite_needed(query: Query) -> None:
    assert needs_composite(query)


def test_queue_queries_are_served_by_the_declared_indexes() -> None:
    queue = TASKS.where("target", "in", ["b", "builders"]).where("phase", "==", "queued")
    served = serving_index(queue.order("priorityRank").order("createdAt"))
    assert served is not None and [f for f, _ in served.fields] == ["target", "phase", "priorityRank", "createdAt"]
    # Equality fields may come in any order; the order-by fields may not.
    swapped = TASKS.where("phase", "==", "queued").where("target", "==", "b").order("priorityRank").order("createdAt")
    assert serving_index(swapped) == served
    assert serving_index(queue.order("createdAt").order("priorityRank")) is None


def test_range_without_order_orders_by_the_range_field() -> None:
    lapsed = TASKS.where("phase", "==", "active").where("leaseExpiresAt", "<=", "x")
    assert serving_index(lapsed) is not None
    assert serving_index(lapsed.order("leaseExpiresAt")) == serving_index(lapsed)
    assert serving_index(lapsed.order("leaseExpiresAt", descending=True)) is None, "directions must match"


def test_array_contains_needs_a_contains_field() -> None:
    query = TASKS.where("labels", "array_contains", "x").order("createdAt")
    ascending = (_index("tasks", "labels", "createdAt"),)
    contains = (_index("tasks", "labels[]", "createdAt"),)
    assert serving_index(query, ascending) is None, "an ASCENDING field does not serve array_contains"
    assert serving_index(query, contains) == contains[0]
    assert serving_index(TASKS.where("labels", "==", "x").order("createdAt"), contains) is None


def test_other_collections_and_extra_fields_do_not_serve() -> None:
    assert serving_index(Query("tenants/t/messages").where("target", "==", "b").order("priorityRank")
                         .order("createdAt")) is None, "messages index also needs 'delivered'"
    assert serving_index(Query("tenants/t/notes").where("threadId", "==", "x").order("createdAt")) is None


def test_indexes_json_spells_array_fields_as_array_config() -> None:
    rendered = json.loads(firestore_indexes_json((_index("tasks", "labels[]", "-createdAt"),)))
    assert rendered["indexes"][0]["fields"] == [
        {"fieldPath": "labels", "arrayConfig": "CONTAINS"}, {"fieldPath": "createdAt", "order": "DESCENDING"}]
    assert len({index.name for index in INDEXES}) == len(INDEXES), "index names are unique (SQLite uses them)"
