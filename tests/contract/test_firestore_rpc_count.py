"""The Firestore adapter's `rpc_count` (what `cachebash bench` reports as store RPCs per tool
call) counts exactly the RPCs the client library issues: checked against a spy on the
library's own API object (the real client underneath, on both emulators), with the exact
figures for the common shapes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachebash.ports.store import Query, Store, Transaction

#: Every RPC the library's synchronous client can issue for what the adapter does.
RPCS = ("batch_get_documents", "run_query", "run_aggregation_query", "begin_transaction", "commit", "rollback",
        "list_documents", "list_collection_ids", "partition_query")


class Spy:
    """Counts the calls made on the library's API object (`Client._firestore_api`, the GAPIC
    client every RPC goes through), passing each on unchanged."""

    def __init__(self, api: Any) -> None:
        self.calls: Counter[str] = Counter()
        for name in RPCS:
            setattr(api, name, self._counting(name, getattr(api, name)))

    def _counting(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return call


@pytest.fixture
def spied(store: Store, backend: str) -> Iterator[tuple[Any, Spy]]:
    if backend == "sqlite":
        pytest.skip("SQLite makes no RPCs and has no rpc_count")
    assert not hasattr(Store, "rpc_count")
    store.run_transaction(lambda tx: tx.set("things/a", {"n": 1}))
    yield store, Spy(store.client._firestore_api)  # type: ignore[attr-defined]


def measured(pair: tuple[Any, Spy], action: Callable[[Store], object]) -> tuple[int, Counter[str]]:
    store, spy = pair
    before, calls_before = store.rpc_count, Counter(spy.calls)
    action(store)
    counted, made = store.rpc_count - before, spy.calls - calls_before
    assert counted == sum(made.values()), f"counted {counted}, the library made {dict(made)}"
    return counted, made


def test_a_get_a_query_and_a_count_are_one_rpc_each(spied: tuple[Any, Spy]) -> None:
    assert measured(spied, lambda s: s.get("things/a")) == (1, Counter(batch_get_documents=1))
    assert measured(spied, lambda s: s.get("things/missing")) == (1, Counter(batch_get_documents=1))
    assert measured(spied, lambda s: s.query(Query("things"))) == (1, Counter(run_query=1))
    assert measured(spied, lambda s: s.count(Query("things"))) == (1, Counter(run_aggregation_query=1))


def test_a_transaction_reading_one_document_and_writing_one_is_two(spied: tuple[Any, Spy]) -> None:
    """Its first read begins it (newTransaction): no BeginTransaction RPC."""
    def read_and_write(tx: Transaction) -> None:
        found = tx.get("things/a") or {}
        tx.set("things/b", {"n": found.get("n", 0) + 1})

    assert measured(spied, lambda s: s.run_transaction(read_and_write)) == (
        2, Counter(batch_get_documents=1, commit=1))
    spied[0].run_transaction(lambda tx: None)
    assert measured(spied, lambda s: s.run_transaction(lambda tx: tx.query(Query("things").where("n", ">=", 0)))) == (
        2, Counter(run_query=1, commit=1))
    # A transaction that only writes is one batch: no BeginTransaction; one that does nothing, no RPC.
    assert measured(spied, lambda s: s.run_transaction(lambda tx: tx.increment("things/c", {"n": 1}))) == (
        1, Counter(commit=1))
    assert measured(spied, lambda s: s.run_transaction(lambda tx: None)) == (0, Counter())


def test_a_transaction_that_fails_writes_nothing_and_needs_no_rollback(spied: tuple[Any, Spy]) -> None:
    """It read optimistically (no transaction to roll back); one that queries holds a
    transaction, which is rolled back, and that is counted."""
    def failing(store: Store) -> None:
        def body(tx: Transaction) -> None:
            tx.get("things/a")
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            store.run_transaction(body)

    assert measured(spied, failing) == (1, Counter(batch_get_documents=1))

    def failing_query(store: Store) -> None:
        def body(tx: Transaction) -> None:
            tx.query(Query("things").where("n", ">=", 0))
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            store.run_transaction(body)

    assert measured(spied, failing_query) == (2, Counter(run_query=1, rollback=1))


def test_a_rerun_that_writes_without_reading_still_commits(spied: tuple[Any, Spy]) -> None:
    """The port allows a function to take another path when it runs again: one that read on its
    write-only try and only writes when it runs again commits those writes (one RPC)."""
    runs: list[int] = []

    def reads_once(tx: Transaction) -> None:
        runs.append(1)
        if len(runs) == 1:
            tx.get("things/a")
        tx.set("things/once", {"runs": len(runs)})

    assert measured(spied, lambda s: s.run_transaction(reads_once)) == (1, Counter(commit=1))
    assert spied[0].get("things/once") == {"runs": 2}
