"""The store port's contract. Every adapter must pass this same suite."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from cachebash.ports.store import AlreadyExists, Missing, Query, Store, StoreError, Transaction

TASKS = "tenants/t1/tasks"


def put(store: Store, path: str, data: dict[str, object]) -> None:
    store.run_transaction(lambda tx: tx.set(path, data))


def ids(docs: list) -> list[str]:  # type: ignore[type-arg]
    return [d.id for d in docs]


def test_get_create_set_update_delete(store: Store) -> None:
    path = f"{TASKS}/a"
    assert store.get(path) is None
    store.run_transaction(lambda tx: tx.create(path, {"n": 1, "keep": "x"}))
    assert store.get(path) == {"n": 1, "keep": "x"}
    store.run_transaction(lambda tx: tx.update(path, {"n": 2, "extra": [1, 2]}))
    assert store.get(path) == {"n": 2, "keep": "x", "extra": [1, 2]}
    store.run_transaction(lambda tx: tx.delete(path))
    assert store.get(path) is None
    put(store, path, {"again": True})
    assert store.get(path) == {"again": True}


@pytest.mark.real_set
def test_set_replaces_the_whole_document(store: Store) -> None:
    path = f"{TASKS}/a"
    put(store, path, {"n": 1, "keep": "x", "m": {"a": 1}})
    put(store, path, {"only": True, "m": {"b": 2}})
    assert store.get(path) == {"only": True, "m": {"b": 2}}


@pytest.mark.real_transactions
def test_create_existing_fails_and_writes_nothing(store: Store) -> None:
    put(store, f"{TASKS}/a", {"n": 1})

    def both(tx: Transaction) -> None:
        tx.set(f"{TASKS}/b", {"n": 2})
        tx.create(f"{TASKS}/a", {"n": 3})

    with pytest.raises(AlreadyExists):
        store.run_transaction(both)
    assert store.get(f"{TASKS}/a") == {"n": 1}
    assert store.get(f"{TASKS}/b") is None, "a failed transaction leaves nothing behind"


def test_update_of_missing_document_fails(store: Store) -> None:
    with pytest.raises(Missing):
        store.run_transaction(lambda tx: tx.update(f"{TASKS}/nope", {"n": 1}))


def test_exception_in_transaction_rolls_back(store: Store) -> None:
    def fail(tx: Transaction) -> None:
        tx.set(f"{TASKS}/a", {"n": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.run_transaction(fail)
    assert store.get(f"{TASKS}/a") is None


def test_reads_after_writes_are_refused(store: Store) -> None:
    def bad(tx: Transaction) -> None:
        tx.set(f"{TASKS}/a", {"n": 1})
        tx.get(f"{TASKS}/b")

    with pytest.raises(StoreError, match="read after write"):
        store.run_transaction(bad)


def test_transaction_reads_see_committed_data(store: Store) -> None:
    put(store, f"{TASKS}/a", {"n": 1, "k": "x"})
    put(store, f"{TASKS}/b", {"n": 2, "k": "x"})

    def read(tx: Transaction) -> tuple[list[dict[str, object] | None], list[str]]:
        many = tx.get_all([f"{TASKS}/a", f"{TASKS}/zz"])
        found = tx.query(Query(TASKS).where("k", "==", "x").order("n"))
        return many, ids(found)

    many, found = store.run_transaction(read)
    assert many == [{"n": 1, "k": "x"}, None]
    assert found == ["a", "b"]


@pytest.fixture
def queue(store: Store) -> Store:
    rows = [
        ("a", "builder", 1, "2026-01-01T00:00:03.000Z"),
        ("b", "builders", 0, "2026-01-01T00:00:05.000Z"),
        ("c", "builder", 0, "2026-01-01T00:00:04.000Z"),
        ("d", "reviewer", 0, "2026-01-01T00:00:01.000Z"),
        ("e", "all", 2, "2026-01-01T00:00:02.000Z"),
        ("f", "builder", 1, "2026-01-01T00:00:01.000Z"),
    ]

    def write(tx: Transaction) -> None:
        for doc_id, target, rank, created in rows:
            tx.set(f"{TASKS}/{doc_id}", {"target": target, "phase": "queued", "priorityRank": rank,
                                         "createdAt": created, "labels": [target, "x"]})

    store.run_transaction(write)
    put(store, "tenants/t2/tasks/zz", {"target": "builder", "phase": "queued", "priorityRank": 0,
                                       "createdAt": "2026-01-01T00:00:00.000Z"})
    return store


def queue_query() -> Query:
    return (Query(TASKS).where("target", "in", ["builder", "builders", "all"]).where("phase", "==", "queued")
            .order("priorityRank").order("createdAt"))


def test_in_filter_with_order_and_limit(queue: Store) -> None:
    assert ids(queue.query(queue_query())) == ["c", "b", "f", "a", "e"]
    assert ids(queue.query(queue_query().take(2))) == ["c", "b"]


def all_pages(store: Store, query: Query, size: int) -> list[str]:
    """Page through `query`; bounded, so an adapter that ignores cursors fails instead of looping."""
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = store.query(query.after(cursor).take(size))
        seen += ids(page)
        if len(page) < size:
            return seen
        cursor = page[-1].cursor(query)
    raise AssertionError(f"paging never ended; seen so far: {seen}")


@pytest.mark.real_cursors
def test_cursor_pages_neither_skip_nor_repeat(queue: Store) -> None:
    assert all_pages(queue, queue_query(), 2) == ["c", "b", "f", "a", "e"]
    assert all_pages(queue, queue_query(), 1) == ["c", "b", "f", "a", "e"]


@pytest.fixture
def ties(store: Store) -> Store:
    """Equal order values, written out of id order, so only the document-id tie-breaker orders them."""
    def write(tx: Transaction) -> None:
        for doc_id, rank in [("m", 1), ("k", 0), ("z", 1), ("a", 1), ("q", 0)]:
            tx.set(f"{TASKS}/{doc_id}", {"rank": rank, "kind": "t"})

    store.run_transaction(write)
    return store


@pytest.mark.real_ordering
def test_ties_break_by_document_id_in_the_direction_of_the_last_order(ties: Store) -> None:
    assert ids(ties.query(Query(TASKS))) == ["a", "k", "m", "q", "z"], "no order-by: document id"
    assert ids(ties.query(Query(TASKS).order("rank"))) == ["k", "q", "a", "m", "z"]
    assert ids(ties.query(Query(TASKS).order("rank", descending=True))) == ["z", "m", "a", "q", "k"]
    assert ids(ties.query(Query(TASKS).where("kind", "==", "t").order("rank"))) == ["k", "q", "a", "m", "z"]


@pytest.mark.real_cursors
@pytest.mark.real_ordering
@pytest.mark.parametrize("descending", [False, True])
def test_cursors_resume_inside_a_run_of_ties(ties: Store, descending: bool) -> None:
    query = Query(TASKS).order("rank", descending=descending)
    expected = ids(ties.query(query))
    assert all_pages(ties, query, 1) == expected
    assert all_pages(ties, query, 2) == expected
    assert all_pages(ties, Query(TASKS), 2) == ["a", "k", "m", "q", "z"]


def test_values_round_trip(store: Store) -> None:
    value = {"none": None, "yes": True, "int": 7, "float": 0.25, "text": "ü ✓", "empty": "", "list": [1, "a", None],
             "history": [{"at": "t1", "to": "claimed"}, {"at": "t2", "to": "done"}],
             "nested": {"a.b": 1, "deep": {"x": [True]}}, "emptyMap": {}, "emptyList": []}
    put(store, f"{TASKS}/v", value)
    assert store.get(f"{TASKS}/v") == value
    assert store.run_transaction(lambda tx: tx.get(f"{TASKS}/v")) == value


def test_update_replaces_whole_top_level_fields(store: Store) -> None:
    path = f"{TASKS}/u"
    put(store, path, {"m": {"a": 1, "b": 2}, "keep": 1})
    store.run_transaction(lambda tx: tx.update(path, {"m": {"c": 3}, "new": None}))
    assert store.get(path) == {"m": {"c": 3}, "keep": 1, "new": None}


def test_get_all_answers_in_the_order_asked(store: Store) -> None:
    for name in "abc":
        put(store, f"{TASKS}/{name}", {"n": name})
    paths = [f"{TASKS}/c", f"{TASKS}/missing", f"{TASKS}/a", f"{TASKS}/c"]
    found = store.run_transaction(lambda tx: tx.get_all(paths))
    assert found == [{"n": "c"}, None, {"n": "a"}, {"n": "c"}]


@pytest.mark.parametrize("read", [
    lambda tx: tx.get_all([f"{TASKS}/b"]),
    lambda tx: tx.query(Query(TASKS)),
])
def test_every_kind_of_read_after_a_write_is_refused(store: Store, read: Callable[[Transaction], object]) -> None:
    def bad(tx: Transaction) -> None:
        tx.update(f"{TASKS}/a", {"n": 1})
        read(tx)

    put(store, f"{TASKS}/a", {"n": 0})
    with pytest.raises(StoreError, match="read after write"):
        store.run_transaction(bad)
    assert store.get(f"{TASKS}/a") == {"n": 0}


def test_queries_are_observed(store: Store) -> None:
    seen: list[Query] = []
    store.observers.append(seen.append)
    query = Query(TASKS).where("n", "==", 1)
    store.query(query)
    store.run_transaction(lambda tx: tx.query(query))
    assert seen == [query, query]


def test_equality_range_and_array_filters(queue: Store) -> None:
    assert ids(queue.query(Query(TASKS).where("target", "==", "builder").order("createdAt"))) == ["f", "a", "c"]
    ranged = Query(TASKS).where("createdAt", ">=", "2026-01-01T00:00:03.000Z").order("createdAt")
    assert ids(queue.query(ranged)) == ["a", "c", "b"]
    assert sorted(ids(queue.query(Query(TASKS).where("labels", "array_contains", "reviewer")))) == ["d"]
    assert ids(queue.query(Query(TASKS).order("createdAt", descending=True).take(2))) == ["b", "c"]


def test_count_matches_the_query_and_stops_at_its_limit(queue: Store) -> None:
    """The inbox limit counts without reading the documents (services/limits)."""
    seen: list[Query] = []
    queue.observers.append(seen.append)
    assert queue.count(queue_query()) == 5
    assert queue.count(queue_query().take(3)) == 3
    assert queue.count(Query(TASKS).where("target", "==", "builder").order("createdAt")) == 3
    assert queue.count(Query(TASKS).where("target", "==", "nobody")) == 0
    assert len(seen) == 4, "counts are observed like queries, so the index guard checks them"


def test_tenants_are_separate_collections(queue: Store) -> None:
    assert ids(queue.query(Query("tenants/t2/tasks"))) == ["zz"]
    assert "zz" not in ids(queue.query(Query(TASKS)))


@pytest.mark.parametrize("build", [
    lambda: Query(TASKS).where("a", "in", [1]).where("b", "in", [2]),
    lambda: Query(TASKS).where("a", ">", 1).where("b", "<", 2),
    lambda: Query(TASKS).where("a", ">", 1).order("b"),
    lambda: Query(TASKS).where("a", "in", []),
    lambda: Query("tenants/t1"),
    lambda: Query(TASKS).where("a; DROP", "==", 1),
])
def test_queries_firestore_cannot_serve_are_refused(build: Callable[[], Query]) -> None:
    with pytest.raises(StoreError):
        build()


@pytest.mark.real_transactions
def test_concurrent_read_modify_write_loses_nothing(store: Store, store_factory: Callable[[], Store]) -> None:
    """Eight writers, each with its own connection, increment one counter 25 times."""
    path = f"{TASKS}/counter"
    put(store, path, {"n": 0})
    errors: list[BaseException] = []

    def worker() -> None:
        mine = store_factory()
        try:
            for _ in range(25):
                mine.run_transaction(lambda tx: tx.update(path, {"n": (tx.get(path) or {})["n"] + 1}))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            mine.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.get(path) == {"n": 200}


COUNTERS = "tenants/t1/usage/day-s0"


def test_increment_creates_adds_and_sets_without_a_read(store: Store) -> None:
    store.run_transaction(lambda tx: tx.increment(COUNTERS, {"n": 2, "cost": 5}, {"day": "d1"}))
    assert store.get(COUNTERS) == {"n": 2, "cost": 5, "day": "d1"}

    def twice(tx: Transaction) -> None:
        tx.set(f"{TASKS}/a", {"k": 1})  # after another write: an increment needs no read
        tx.increment(COUNTERS, {"n": 3, "other": 1})
        tx.increment(COUNTERS, {"n": 1, "cost": 7}, {"day": "d1", "shard": 0})

    store.run_transaction(twice)
    assert store.get(COUNTERS) == {"n": 6, "cost": 12, "other": 1, "day": "d1", "shard": 0}
    assert store.get(f"{TASKS}/a") == {"k": 1}


def test_an_increment_adds_to_what_its_transaction_read(store: Store) -> None:
    """The quota's shape: read the counter (and a missing one), then increment both."""
    put(store, COUNTERS, {"n": 4, "keep": "x"})
    missing = f"{TASKS}/no-counter"

    def read_then_bump(tx: Transaction) -> None:
        assert tx.get_all([COUNTERS, missing]) == [{"n": 4, "keep": "x"}, None]
        tx.increment(COUNTERS, {"n": 2})
        tx.increment(COUNTERS, {"n": -1})
        tx.increment(missing, {"n": 1})

    store.run_transaction(read_then_bump)
    assert (store.get(COUNTERS), store.get(missing)) == ({"n": 5, "keep": "x"}, {"n": 1})


def test_increment_keeps_floats_and_other_fields(store: Store) -> None:
    put(store, COUNTERS, {"keep": "x", "f": 0.5})
    store.run_transaction(lambda tx: tx.increment(COUNTERS, {"f": 0.25}))
    assert store.get(COUNTERS) == {"keep": "x", "f": 0.75}


def test_an_increment_rolls_back_with_its_transaction(store: Store) -> None:
    def fail(tx: Transaction) -> None:
        tx.increment(COUNTERS, {"n": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.run_transaction(fail)
    assert store.get(COUNTERS) is None


@pytest.mark.parametrize("deltas", [{"a.b": 1}, {"a-b": 1}, {"`a`": 1}, {"__n__": 1}, {"n": "1"}, {"n": True}])
def test_increment_takes_plain_names_and_numbers_only(store: Store, deltas: dict[str, object]) -> None:
    with pytest.raises(StoreError):
        store.run_transaction(lambda tx: tx.increment(COUNTERS, deltas))  # type: ignore[arg-type]


@pytest.mark.real_transactions
def test_concurrent_increments_lose_nothing(store: Store, store_factory: Callable[[], Store]) -> None:
    """Eight writers, each with its own connection, bump one counter 25 times without reading it."""
    errors: list[BaseException] = []

    def worker() -> None:
        mine = store_factory()
        try:
            for _ in range(25):
                mine.run_transaction(lambda tx: tx.increment(COUNTERS, {"n": 1, "c": 0.5}))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            mine.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.get(COUNTERS) == {"n": 200, "c": 100.0}


@pytest.mark.real_preconditions
def test_update_unchanged_writes_all_or_nothing(store: Store) -> None:
    """The documents a query found are updated together only if none changed or went away since."""
    for name in "abc":
        put(store, f"{TASKS}/{name}", {"n": name, "seen": False})
    found = store.query(Query(TASKS))
    assert store.update_unchanged(found, {"seen": True, "by": "first"})
    assert [store.get(f"{TASKS}/{name}") for name in "abc"] == [{"n": n, "seen": True, "by": "first"} for n in "abc"]

    stale = store.query(Query(TASKS))
    store.run_transaction(lambda tx: tx.update(f"{TASKS}/b", {"by": "racer"}))
    assert not store.update_unchanged(stale, {"by": "second"})
    assert [(store.get(f"{TASKS}/{name}") or {})["by"] for name in "abc"] == ["first", "racer", "first"]

    gone = store.query(Query(TASKS))
    store.run_transaction(lambda tx: tx.delete(f"{TASKS}/c"))
    assert not store.update_unchanged(gone, {"by": "third"})
    assert [(store.get(f"{TASKS}/{name}") or {}).get("by") for name in "abc"] == ["first", "racer", None]
    assert store.update_unchanged([], {"by": "nobody"})


def test_a_transaction_that_only_writes_commits_all_its_writes(store: Store) -> None:
    """Creates, updates, counters and deletes with no read before them (Firestore: one batch)."""
    put(store, f"{TASKS}/old", {"n": 1})
    put(store, f"{TASKS}/going", {"n": 2})

    def write(tx: Transaction) -> str:
        tx.create(f"{TASKS}/new", {"n": 3})
        tx.update(f"{TASKS}/old", {"n": 10})
        tx.delete(f"{TASKS}/going")
        tx.increment(COUNTERS, {"n": 1})
        return "done"

    assert store.run_transaction(write) == "done"
    assert [store.get(f"{TASKS}/{name}") for name in ("new", "old", "going")] == [{"n": 3}, {"n": 10}, None]
    assert store.get(COUNTERS) == {"n": 1}
    with pytest.raises(AlreadyExists):
        store.run_transaction(lambda tx: tx.create(f"{TASKS}/new", {"n": 4}))
    with pytest.raises(Missing):
        store.run_transaction(lambda tx: tx.update(f"{TASKS}/going", {"n": 5}))
    assert store.get(f"{TASKS}/new") == {"n": 3}


@pytest.mark.real_preconditions
@pytest.mark.parametrize("before", [{"v": 1}, None], ids=["changed", "created"])
def test_a_document_read_but_not_written_that_changes_before_the_commit_runs_the_function_again(
        store: Store, store_factory: Callable[[], Store], backend: str, before: dict[str, object] | None) -> None:
    """Write skew: the function writes one document from another it only read. If a racer changes
    (or creates) the one read before the commit, the commit must not hold: the function runs
    again and writes from what the racer wrote. (On Firestore reads take no locks, so the racer
    commits at once; SQLite's transaction holds the database, so there no racer gets in.)"""
    if backend == "sqlite":
        pytest.skip("SQLite's transaction holds the write lock from its first statement: no racer gets in")
    guard, target = f"{TASKS}/guard", f"{TASKS}/target"
    if before is not None:
        put(store, guard, before)
    racer, runs = store_factory(), []

    def copy(tx: Transaction) -> None:
        seen = tx.get(guard)
        runs.append(seen)
        if len(runs) == 1:
            put(racer, guard, {"v": 2})  # between this run's read and its commit
        tx.set(target, {"copied": (seen or {}).get("v")})

    try:
        store.run_transaction(copy)
    finally:
        racer.close()
    assert store.get(target) == {"copied": 2}
    assert runs[0] == before and runs[-1] == {"v": 2}


@pytest.mark.real_preconditions
def test_a_growing_read_that_changes_before_the_commit_does_not_run_the_function_again(
        store: Store, store_factory: Callable[[], Store], backend: str) -> None:
    """`get_all(..., growing=...)`: what only grows, read to bound another number from above, may
    be older than the commit; a racer bumping it (a finished task) neither refuses nor blocks it."""
    if backend == "sqlite":
        pytest.skip("SQLite's transaction holds the write lock from its first statement: no racer gets in")
    opened, closed, target = f"{TASKS}/opened", f"{TASKS}/closed", f"{TASKS}/target"
    put(store, opened, {"n": 5})
    put(store, closed, {"n": 1})
    racer, runs = store_factory(), []

    def admit(tx: Transaction) -> None:
        made, done = tx.get_all([opened, closed], growing=[closed])
        runs.append((made, done))
        if len(runs) == 1:
            racer.run_transaction(lambda r: r.increment(closed, {"n": 1}))  # a task finished meanwhile
        tx.set(target, {"open": (made or {})["n"] - (done or {})["n"]})

    try:
        store.run_transaction(admit)
    finally:
        racer.close()
    assert len(runs) == 1 and store.get(target) == {"open": 4}  # 5 - 1: the bound as read, not refused
    assert store.get(closed) == {"n": 2}
