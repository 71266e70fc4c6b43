"""Group commit on SQLite (SqliteStore.group_commits, interface.runners.GroupWait): calls made in
one event-loop turn share one COMMIT, and none is answered before its writes are durable; a
failing call undoes only its own writes; no other thread ever sees writes not yet committed.
Checked through a second connection to the same file, which sees only what was committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.domain.errors import NotFound
from cachebash.interface.runners import make_runner
from cachebash.ports.store import Transaction


def _committed(path: Path) -> set[str]:
    """The ids another process would read now."""
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM docs WHERE collection = 'items'")}


def _writer(store: SqliteStore, doc_id: str, fail: bool = False) -> Any:
    def work() -> dict[str, Any]:
        def write(tx: Transaction) -> None:
            tx.set(f"items/{doc_id}", {"n": doc_id})
            tx.set(f"items/{doc_id}-twin", {"n": doc_id})
            if fail:
                raise NotFound(f"{doc_id} fails after writing")

        store.run_transaction(write)
        return {"id": doc_id}

    return work


def test_calls_in_one_turn_share_a_commit_and_each_answer_follows_it(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path)
    run = make_runner(False, store)
    answered_before_commit: list[str] = []

    async def call(doc_id: str) -> None:
        await run(_writer(store, doc_id))
        if doc_id not in _committed(path):
            answered_before_commit.append(doc_id)

    async def main() -> None:
        await asyncio.gather(*(call(f"d{i}") for i in range(10)))

    asyncio.run(main())
    assert answered_before_commit == []
    assert store.group_mark() - 1 < 10, "ten calls in one turn should share fewer than ten commits"
    assert _committed(path) == {f"d{i}{twin}" for i in range(10) for twin in ("", "-twin")}
    store.close()


def test_a_failing_call_undoes_only_its_own_writes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path)
    run = make_runner(False, store)

    async def main() -> list[Any]:
        return await asyncio.gather(run(_writer(store, "a")), run(_writer(store, "bad", fail=True)),
                                    run(_writer(store, "c")), return_exceptions=True)

    results = asyncio.run(main())
    assert results[0] == {"id": "a"} and results[2] == {"id": "c"}
    assert isinstance(results[1], NotFound)
    assert _committed(path) == {"a", "a-twin", "c", "c-twin"}
    store.close()


def test_another_threads_read_commits_the_open_group_first(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path)
    run = make_runner(False, store)
    seen: dict[str, Any] = {}

    async def main() -> None:
        pending = asyncio.ensure_future(run(_writer(store, "x")))
        await asyncio.sleep(0)  # the call ran its transaction; its group's COMMIT is the next turn's
        seen["before"] = _committed(path)

        def read() -> None:  # e.g. the console's worker thread
            seen["doc"] = store.get("items/x")
            seen["after"] = _committed(path)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        await pending

    asyncio.run(main())
    assert seen["before"] == set(), "the group is still open: nothing is committed yet"
    assert seen["doc"] == {"n": "x"}
    assert seen["after"] == {"x", "x-twin"}, "the other thread's read committed the group before reading"
    store.close()


def test_without_a_running_loop_a_transaction_commits_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path)
    asyncio.run(make_runner(False, store)(_writer(store, "in-loop")))  # binds this thread to groups
    _writer(store, "script")()  # no loop now: e.g. shutdown work
    assert _committed(path) == {"in-loop", "in-loop-twin", "script", "script-twin"}
    store.close()


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_groups_commit_under_both_durabilities(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path, durability=durability)
    run = make_runner(False, store)

    async def main() -> None:
        await asyncio.gather(*(run(_writer(store, f"d{i}")) for i in range(4)))

    asyncio.run(main())
    assert len(_committed(path)) == 8
    store.close()
