"""The SQLite adapter builds the declared indexes as partial expression indexes, one
collection group each, and queries use them; a database whose indexes an older version
built is migrated when the store opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cachebash.adapters.sqlite_store import SqliteStore, query_plan
from cachebash.ports.indexes import CONTAINS, DESCENDING, INDEXES, Index
from cachebash.ports.store import Query, StoreError, Transaction
from cachebash.services import relay


def _served_query(index: Index) -> Query:
    """A query of the index's shape: equality (or array_contains) on all its fields but the
    last, ordered by the last."""
    query = Query(f"tenants/t/{index.collection_group}")
    only = dict(index.only)
    for field, mode in index.fields[:-1]:
        if mode == CONTAINS:
            query = query.where(field, "array_contains", "x")
        else:
            query = query.where(field, "==", only.get(field, "x"))
    field, mode = index.fields[-1]
    return query.order(field, descending=mode == DESCENDING).take(10)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "db.sqlite")
    yield store  # type: ignore[misc]
    store.close()


@pytest.mark.parametrize("index", INDEXES, ids=lambda index: index.name)
def test_each_declared_index_serves_its_query_without_a_sort(store: SqliteStore, index: Index) -> None:
    plan = " / ".join(query_plan(store, _served_query(index)))
    assert "USING INDEX ix_" in plan and "TEMP B-TREE" not in plan, plan


def test_the_queue_query_uses_its_index_with_every_equality(store: SqliteStore) -> None:
    queue = (Query("tenants/t/tasks").where("target", "==", "w").where("phase", "==", "queued")
             .order("priorityRank").order("createdAt").take(51))
    plan = " / ".join(query_plan(store, queue))
    assert "USING INDEX ix_tasks_target_phase_priorityRank_createdAt (collection=? AND <expr>=? AND <expr>=?)" in plan


@pytest.mark.parametrize(("query", "index"), [
    (Query("tenants/t/tasks").where("phase", "==", "active")
     .where("leaseExpiresAt", "<=", "2026").order("leaseExpiresAt").take(100), "ix_tasks_phase_leaseExpiresAt"),
    (Query("tenants/t/tasks").where("phase", "==", "queued").where("expiresAt", "<=", "2026").order("expiresAt")
     .take(100), "ix_tasks_phase_expiresAt"),
    (relay.expired_query("t", "2026"), "ix_messages_delivered_expiresAt"),
    (relay.forgettable_query("t", "2026"), "ix_messages_delivered_deliveredAt"),
    (Query("tenants/t/usage").where("compacted", "==", False).where("day", "<", "2026").order("day"),
     "ix_usage_compacted_day"),
])
def test_the_partial_indexes_serve_the_queries_they_hold_rows_for(store: SqliteStore, query: Query,
                                                                 index: str) -> None:
    assert f"USING INDEX {index} " in " / ".join(query_plan(store, query))


def test_a_partial_index_holds_only_its_rows_and_other_values_still_query(store: SqliteStore) -> None:
    for doc_id, phase in (("a", "active"), ("d", "done")):
        store.run_transaction(lambda tx, i=doc_id, p=phase: tx.set(f"tenants/t/tasks/{i}", {
            "phase": p, "leaseExpiresAt": "2025"}))
    held = store._conn.execute("SELECT COUNT(*) FROM docs INDEXED BY ix_tasks_phase_leaseExpiresAt "
                               "WHERE ('/' || collection) GLOB '*/tasks' AND json_extract(data, '$.phase') = 'active'")
    assert held.fetchone()[0] == 1
    for phase, expected in (("active", ["a"]), ("done", ["d"]), ("active", ["a"])):  # one statement, either plan
        found = store.query(Query("tenants/t/tasks").where("phase", "==", phase).where("leaseExpiresAt", "<=", "2026")
                            .order("leaseExpiresAt"))
        assert [d.id for d in found] == expected


def test_writes_to_other_collections_leave_the_task_indexes_alone(store: SqliteStore) -> None:
    store.run_transaction(lambda tx: tx.set("tenants/t/idempotency/r", {"target": "w", "phase": "queued"}))
    store.run_transaction(lambda tx: tx.set("tenants/t/tasks/a", {"target": "w", "phase": "queued"}))
    conn = store._conn
    entries = conn.execute("SELECT COUNT(*) FROM docs INDEXED BY ix_tasks_target_phase_priorityRank_createdAt "
                           "WHERE ('/' || collection) GLOB '*/tasks'").fetchone()[0]
    assert entries == 1
    found = store.query(Query("tenants/t/tasks").where("target", "==", "w").where("phase", "==", "queued")
                        .order("priorityRank").order("createdAt"))
    assert [d.id for d in found] == ["a"]


def test_an_older_databases_indexes_are_replaced_at_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE docs (collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, "
                 "PRIMARY KEY (collection, id)) WITHOUT ROWID")
    conn.execute("INSERT INTO docs VALUES ('tenants/t/tasks', 'a', '{\"target\":\"w\",\"phase\":\"queued\"}')")
    old = INDEXES[0]
    columns = ", ".join(f"json_extract(data, '$.{f}')" for f, _ in old.fields)
    conn.execute(f"CREATE INDEX {old.name} ON docs(collection, {columns})")  # over every collection, as before
    conn.execute("CREATE INDEX ix_tasks_retired ON docs(collection, json_extract(data, '$.gone'))")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        indexes = dict(store._conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix%'").fetchall())
        assert set(indexes) == {index.name for index in INDEXES}, "the retired index is dropped, the rest built"
        assert all(" WHERE " in sql for sql in indexes.values()), "every index is partial now"
        assert [d.id for d in store.query(Query("tenants/t/tasks").where("target", "==", "w")
                                          .where("phase", "==", "queued").order("priorityRank")
                                          .order("createdAt"))] == ["a"]
    finally:
        store.close()
    reopened = SqliteStore(path)  # nothing left to migrate: opening again changes nothing
    reopened.close()


def test_durability_full_makes_each_commit_fsync(tmp_path: Path) -> None:
    for durability, synchronous in (("normal", 1), ("full", 2)):
        store = SqliteStore(tmp_path / f"{durability}.sqlite", durability=durability)
        try:
            assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        finally:
            store.close()
    with pytest.raises(ValueError, match="durability"):
        SqliteStore(tmp_path / "x.sqlite", durability="fast")


def test_durability_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from cachebash.config import Settings, SettingsError

    monkeypatch.setenv("CACHEBASH_DURABILITY", "full")
    assert Settings.from_env().durability == "full"
    monkeypatch.setenv("CACHEBASH_DURABILITY", "off")
    with pytest.raises(SettingsError, match="CACHEBASH_DURABILITY"):
        Settings.from_env()


def test_checkpoints_run_off_the_writers_path_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path)
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0, "no COMMIT checkpoints"
    for i in range(300):
        store.run_transaction(lambda tx, i=i: tx.set(f"tenants/t/tasks/{i}", {"n": i, "pad": "x" * 2000}))
    store.close()
    assert not store._checkpointer._thread.is_alive()  # type: ignore[union-attr]
    reopened = SqliteStore(path)
    try:
        assert reopened.get("tenants/t/tasks/299") == {"n": 299, "pad": "x" * 2000}
        assert len(reopened.query(Query("tenants/t/tasks"))) == 300
    finally:
        reopened.close()


def test_the_wal_stays_bounded_under_writes_that_never_pause(tmp_path: Path) -> None:
    """Steady writes never let a PASSIVE checkpoint catch up, so the WAL used to grow with every
    commit (hundreds of MB a minute); the checkpointer's RESTART rounds keep it near its limit."""
    from cachebash.adapters import sqlite_store

    path = tmp_path / "db.sqlite"
    store = SqliteStore(path)
    wal = Path(str(path) + "-wal")
    pad = "x" * 3000
    biggest = 0
    written = 0
    try:
        # ~3 pages a commit: six times the limit in all, with no pause between commits.
        while written < 6 * sqlite_store.WAL_SIZE_LIMIT_BYTES:
            for i in range(200):
                store.run_transaction(lambda tx, i=i: tx.set(f"tenants/t/tasks/{i}", {"n": i, "pad": pad}))
            written += 200 * 3 * 4096
            biggest = max(biggest, wal.stat().st_size)
        assert store.get("tenants/t/tasks/199") == {"n": 199, "pad": pad}
    finally:
        store.close()
    assert biggest <= sqlite_store.WAL_SIZE_LIMIT_BYTES + 200 * 3 * 4096, biggest  # one loop's writes past it


def test_update_merges_into_what_the_transaction_read_or_wrote(store: SqliteStore) -> None:
    path = "tenants/t/tasks/a"
    store.run_transaction(lambda tx: tx.set(path, {"n": 1, "keep": "x"}))

    def read_then_update(tx: Transaction) -> None:
        seen = tx.get(path)
        assert seen is not None
        seen["keep"] = "changed in place"  # the caller's copy: not what update merges into
        tx.update(path, {"n": 2})

    store.run_transaction(read_then_update)
    assert store.get(path) == {"n": 2, "keep": "x"}

    def read_set_update(tx: Transaction) -> None:
        tx.get(path)
        tx.set(path, {"fresh": True})
        tx.update(path, {"n": 3})

    store.run_transaction(read_set_update)
    assert store.get(path) == {"fresh": True, "n": 3}, "update merges into the set, not the stale read"


def test_a_document_cannot_hold_a_non_finite_number(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="tenants/t/quota/q: a document cannot hold NaN or Infinity"):
        store.run_transaction(lambda tx: tx.set("tenants/t/quota/q", {"x": float("inf")}))
    assert store.get("tenants/t/quota/q") is None
