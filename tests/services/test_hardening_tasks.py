"""Issue #11, tasks and claims: claim_next finds work behind a queue head in back-off, a lease
is lost the moment it runs out (not when the sweeper looks), groups are capped where keys are
made, crafted cursors and ids are refused naming the field, and a store that stays locked
answers CONTENTION in seconds. Every test runs on each backend its finding applies to."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import CacheBashError, Contention, InvalidInput, NotFound
from cachebash.domain.inputs import MAX_INT, parse
from cachebash.domain.messages import GetMessages, GetThread, SendMessage
from cachebash.domain.programs import MAX_GROUPS_PER_PROGRAM, CreateKey
from cachebash.domain.tasks import (
    ClaimNext,
    ClaimTask,
    CompleteTask,
    CreateTask,
    GetTasks,
    ReleaseTask,
    RenewClaim,
    ReportProgress,
    TaskRef,
)
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services import claims, keys, relay, sweeper, tasks
from cachebash.services.idempotency import record_path
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import lead_and_builders, make_caller


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return lead_and_builders(runtime)


def create(rt: Runtime, who: Caller, **args: Any) -> str:
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(0.001)  # distinct creation times, so the queue order is the creation order
    return str(tasks.create_task(rt, who, parse(CreateTask, {"title": "work", "target": "builders", **args}))["taskId"])


def claim(rt: Runtime, who: Caller, task_id: str, **args: Any) -> dict[str, Any]:
    return claims.claim_task(rt, who, parse(ClaimTask, {"taskId": task_id, **args}))


def claim_next(rt: Runtime, who: Caller, **args: Any) -> dict[str, Any]:
    return claims.claim_next(rt, who, parse(ClaimNext, args))


def stored(rt: Runtime, task_id: str) -> dict[str, Any]:
    task = rt.store.get(tenant_path("default", "tasks", task_id))
    assert task is not None
    return task


def queue(rt: Runtime, who: Caller, **args: Any) -> list[str]:
    return [t["taskId"] for t in tasks.get_tasks(rt, who, parse(GetTasks, args))["tasks"]]


def refused(call: Callable[[], Any]) -> CacheBashError:
    with pytest.raises(CacheBashError) as info:
        call()
    return info.value


def backing_off(rt: Runtime, lead: Caller, worker: Caller, count: int, **args: Any) -> list[str]:
    """`count` tasks, each failed once TRANSIENT: queued again, but waiting out the back-off."""
    made = []
    for _ in range(count):
        task_id = create(rt, lead, **args)
        claim(rt, worker, task_id)
        claims.complete_task(rt, worker, parse(CompleteTask, {"taskId": task_id, "completed_status": "FAILED",
                                                              "error_class": "TRANSIENT"}))
        made.append(task_id)
    return made


# ------------------------------------------------------------- 1. claim_next looks past back-offs


@pytest.mark.real_cursors
def test_claim_next_finds_work_behind_a_page_of_tasks_in_back_off(
        runtime: Runtime, team: dict[str, Caller]) -> None:
    waiting = backing_off(runtime, team["lead"], team["b1"], claims.CLAIM_PAGE + 5, priority="high")
    ready = create(runtime, team["lead"], priority="low")
    assert queue(runtime, team["b2"]) == [ready], "get_tasks lists it"
    taken = claim_next(runtime, team["b2"])
    assert taken["claimed"] is True and taken["taskId"] == ready
    assert claim_next(runtime, team["b2"]) == {"success": True, "claimed": False, "task": None}
    assert all(stored(runtime, t)["status"] == "created" for t in waiting), "back-offs are left alone"


@pytest.mark.real_cursors
def test_claim_next_gives_up_after_its_scan_limit_and_says_so(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims, "CLAIM_PAGE", 2)
    monkeypatch.setattr(claims, "CLAIM_SCAN_LIMIT", 4)
    backing_off(runtime, team["lead"], team["b1"], 4, priority="high")
    beyond = create(runtime, team["lead"], priority="low")
    answer = claim_next(runtime, team["b2"])
    assert answer["claimed"] is False and "first 4 tasks" in answer["note"]
    assert stored(runtime, beyond)["status"] == "created"
    clock.advance(runtime.policy.backoff(1))
    assert claim_next(runtime, team["b2"])["claimed"] is True, "once the back-offs end, the head is claimable"


@pytest.mark.real_transactions
def test_racing_claim_next_workers_take_each_task_once(
        runtime: Runtime, team: dict[str, Caller], store_factory: Callable[[], Store], clock: ManualClock) -> None:
    """Each worker has its own store connection, so the database itself arbitrates."""
    made = {create(runtime, team["lead"]) for _ in range(4)}
    workers = [make_caller(runtime, f"w{i}", groups=("builders",)) for i in range(10)]
    barrier = threading.Barrier(len(workers))
    won: list[tuple[str, int]] = []
    empty: list[str] = []

    def work(who: Caller) -> None:
        rt = embedded_runtime(store_factory(), clock)
        barrier.wait()
        try:
            answer = claims.claim_next(rt, who, ClaimNext())
            if answer["claimed"]:
                won.append((answer["taskId"], answer["task"]["claimToken"]))
            else:
                empty.append(who.program_id)
        finally:
            rt.store.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted((task_id, 1) for task_id in made), "every task once, by one claim"
    assert len(empty) == len(workers) - len(made)
    claimers = {stored(runtime, t)["claimedBy"] for t in made}
    assert len(claimers) == len(made)


# ---------------------------------------------------------- 2. a lease is lost when it runs out


def test_a_claim_takes_over_a_lapsed_lease_before_any_sweep(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    clock.advance(60 + runtime.policy.backoff(1))
    taken = claim(runtime, team["b2"], task_id)
    assert (taken["claimedBy"], taken["claimToken"], taken["attempt"]) == ("b2", 2, 2)
    task = stored(runtime, task_id)
    assert [h["event"] for h in task["history"]] == ["create", "claim", "retry", "claim"]
    assert "lease expired" in task["lastError"] and "'b1'" in task["lastError"]
    assert sweeper.sweep(runtime)["leasesExpired"] == 0, "b2's lease is fresh; nothing left for the sweeper"
    stale = refused(lambda: claims.complete_task(runtime, team["b1"], CompleteTask(taskId=task_id)))
    assert stale.code == "CLAIM_LOST" and "now held by 'b2'" in stale.message


def test_a_lapsed_lease_backs_off_from_when_it_lapsed(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    lapsed_at, available_at = clock.iso(60), clock.iso(60 + runtime.policy.backoff(1))
    clock.advance(61)
    early = refused(lambda: claim(runtime, team["b2"], task_id))
    assert early.code == "NOT_AVAILABLE_YET" and early.details["availableAt"] == available_at
    assert stored(runtime, task_id)["claimedBy"] == "b1", "a refused claim writes nothing"
    assert sweeper.sweep(runtime)["leasesExpired"] == 1
    swept = stored(runtime, task_id)
    assert swept["availableAt"] == available_at and swept["attempt"] == 2, "the sweeper records the same lapse"
    assert lapsed_at in swept["lastError"]


def test_a_sweep_long_after_the_lapse_offers_the_task_at_once(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    clock.advance(600)  # the sweeper was late (a cloud schedule, a busy host)
    sweeper.sweep(runtime)
    assert queue(runtime, team["b2"]) == [task_id], "the back-off ran from the lapse, so it is over"


@pytest.mark.parametrize("with_token", [True, False])
def test_the_stale_holder_is_fenced_the_moment_its_lease_lapses(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock, with_token: bool) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    token = {"claim_token": 1} if with_token else {}
    clock.advance(59.999)
    assert claims.renew_claim(runtime, team["b1"], RenewClaim(taskId=task_id, lease_seconds=60, **token))
    clock.advance(60)  # exactly at leaseExpiresAt: lapsed
    calls = {
        "renew": lambda: claims.renew_claim(runtime, team["b1"], RenewClaim(taskId=task_id, **token)),
        "progress": lambda: claims.report_progress(runtime, team["b1"], ReportProgress(taskId=task_id, **token)),
        "complete": lambda: claims.complete_task(runtime, team["b1"], CompleteTask(taskId=task_id, **token)),
        "fail": lambda: claims.complete_task(runtime, team["b1"], parse(CompleteTask, {
            "taskId": task_id, "completed_status": "FAILED", "error_class": "TRANSIENT", **token})),
        "release": lambda: claims.release_task(runtime, team["b1"], ReleaseTask(taskId=task_id, reason="x", **token)),
    }
    for name, call in calls.items():
        error = refused(call)
        assert error.code == "CLAIM_LOST", name
        assert "lease expired" in error.message and "back in the queue" in error.message, name
    task = stored(runtime, task_id)
    assert (task["status"], task["claimedBy"], task["attempt"]) == ("claimed", "b1", 1), "refusals write nothing"


def test_a_lapse_on_the_last_attempt_is_a_dead_letter_for_everyone(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"], max_attempts=1, title="one shot")
    claim(runtime, team["b1"], task_id, lease_seconds=30)
    clock.advance(31)
    assert refused(lambda: claim(runtime, team["b2"], task_id)).code == "TASK_FINISHED"
    assert refused(lambda: claims.complete_task(runtime, team["b1"], CompleteTask(taskId=task_id, claim_token=1)))\
        .code == "TASK_FINISHED"
    counts = sweeper.sweep(runtime)
    assert counts["deadLettered"] == 1 and stored(runtime, task_id)["status"] == "dead"
    inbox = relay.get_messages(runtime, team["lead"], GetMessages())["messages"]
    assert [m["message_type"] for m in inbox] == ["RESULT"] and "one shot" in inbox[0]["message"]


def test_the_creator_may_cancel_a_lapsed_task_and_the_lapse_is_recorded(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    claims.report_progress(runtime, team["b1"], ReportProgress(taskId=task_id))
    clock.advance(61)
    done = claims.complete_task(runtime, team["lead"], CompleteTask(taskId=task_id, completed_status="CANCELLED"))
    assert done["status"] == "cancelled", "in progress no more: its lease lapsed, so it was back in the queue"
    task = stored(runtime, task_id)
    assert [h["event"] for h in task["history"]][-2:] == ["retry", "CANCELLED"] and task["attempt"] == 2


# ------------------------------------------------------------------------ 3. groups are capped


def test_a_program_in_the_most_groups_reads_and_claims_its_queue(runtime: Runtime, team: dict[str, Caller]) -> None:
    groups = tuple(f"g{i}" for i in range(MAX_GROUPS_PER_PROGRAM))
    wide = make_caller(runtime, "wide", groups=groups)
    assert len(wide.addresses) == 30
    task_id = create(runtime, team["lead"], target=groups[-1])
    assert queue(runtime, wide) == [task_id]
    assert claim_next(runtime, wide)["taskId"] == task_id


def test_groups_are_capped_where_keys_are_made(runtime: Runtime) -> None:
    admin = make_caller(runtime, "admin", admin=True)
    too_many = [f"g{i}" for i in range(MAX_GROUPS_PER_PROGRAM + 1)]
    error = refused(lambda: keys.create_key(runtime, admin, parse(CreateKey, {"programId": "p", "groups": too_many})))
    assert isinstance(error, InvalidInput) and error.field == "groups"
    keys.create_key(runtime, admin, parse(CreateKey, {"programId": "p", "groups": too_many[:20]}))
    more = parse(CreateKey, {"programId": "p", "groups": too_many[15:]})  # 9 new ones: 29 in all
    error = refused(lambda: keys.create_key(runtime, admin, more))
    assert isinstance(error, InvalidInput) and error.field == "groups"
    assert f"at most {MAX_GROUPS_PER_PROGRAM} groups" in error.message and "is in 20" in error.message
    program = runtime.store.get(tenant_path("default", "programs", "p"))
    assert program is not None and len(program["groups"]) == 20, "a refused key changes nothing"
    assert len(keys.list_keys(runtime, admin)["keys"]) == 2, "and makes no key"
    assert keys.create_key(runtime, admin, parse(CreateKey, {"programId": "p", "groups": too_many[12:28]}))


def test_a_program_over_the_cap_from_before_is_told_to_name_a_queue(runtime: Runtime, team: dict[str, Caller]) -> None:
    groups = [f"g{i}" for i in range(MAX_GROUPS_PER_PROGRAM + 3)]
    runtime.store.run_transaction(lambda tx: tx.set(tenant_path("default", "programs", "old"),
                                                    {"programId": "old", "groups": groups, "createdAt": "x"}))
    old = Caller(tenant_id="default", program_id="old", groups=tuple(groups))
    task_id = create(runtime, team["lead"], target="g30")
    error = refused(lambda: queue(runtime, old))
    assert isinstance(error, InvalidInput) and error.field == "target" and "pass target" in error.message
    assert refused(lambda: claim_next(runtime, old)).code == "VALIDATION_ERROR"
    assert queue(runtime, old, target="g30") == [task_id]
    assert claim_next(runtime, old, target="g30")["taskId"] == task_id


def test_a_program_named_like_one_of_its_groups(runtime: Runtime, team: dict[str, Caller]) -> None:
    twin = make_caller(runtime, "twin", groups=("twin",))
    task_id = create(runtime, team["lead"], target="twin")
    assert queue(runtime, twin) == [task_id]


# ----------------------------------------------------------- 4. crafted cursors, ids and numbers


def _cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# Each makes a cursor for a query with `n` order-by fields (one value each, then a document id).
CRAFTED_CURSORS: dict[str, Callable[[int], str]] = {
    "huge int": lambda n: _cursor([2**70] * n + ["abc"]),
    "int64 overflow": lambda n: _cursor([2**63] * n + ["abc"]),
    "list value": lambda n: _cursor([[1]] * n + ["abc"]),
    "object value": lambda n: _cursor([{"a": 1}] * n + ["abc"]),
    "NaN value": lambda n: _raw("[" + "NaN," * n + '"abc"]'),
    "lone surrogate value": lambda n: _raw("[" + '"\\ud800",' * n + '"abc"]'),
    "id not text": lambda n: _cursor([1] * n + [5]),
    "id with slash": lambda n: _cursor([1] * n + ["a/b"]),
    "empty id": lambda n: _cursor([1] * n + [""]),
    "dot dot id": lambda n: _cursor([1] * n + [".."]),
    "reserved id": lambda n: _cursor([1] * n + ["__x__"]),
    "too short": lambda n: _cursor(["abc"] * n),
    "too long": lambda n: _cursor([1] * (n + 1) + ["abc"]),
    "not a list": lambda n: _cursor({"a": 1}),
    "not base64": lambda n: "%%%",
    "deeply nested": lambda n: _raw("[" * 140),  # as deep as 200 characters (the cursor's limit) go
}


@pytest.mark.parametrize("kind", sorted(CRAFTED_CURSORS))
def test_crafted_cursors_are_refused_naming_the_cursor(runtime: Runtime, team: dict[str, Caller], kind: str) -> None:
    craft = CRAFTED_CURSORS[kind]
    create(runtime, team["lead"])
    listing = {"cursor": craft(2)}  # priorityRank, createdAt
    error = refused(lambda: tasks.get_tasks(runtime, team["b1"], parse(GetTasks, listing)))
    assert isinstance(error, InvalidInput) and error.field == "cursor", kind
    relay.send_message(runtime, team["lead"], parse(SendMessage, {"target": "b1", "message": "hi", "threadId": "t"}))
    thread = {"threadId": "t", "cursor": craft(1)}  # createdAt
    error = refused(lambda: relay.get_thread(runtime, team["b1"], parse(GetThread, thread)))
    assert isinstance(error, InvalidInput) and error.field == "cursor", kind


@pytest.mark.parametrize("bad", [".", "..", "__x__", "_a", ".a", "-a", "a/b", "", "x" * 129])
def test_ids_no_store_takes_are_refused_at_the_input(bad: str) -> None:
    for model in (TaskRef, ClaimTask, CompleteTask):
        with pytest.raises(InvalidInput) as info:
            parse(model, {"taskId": bad})
        assert info.value.field == "taskId"


@pytest.mark.parametrize("odd", ["a", "a.", "a..", "a__", "a__b__", "A-1_.:z", "x" * 128])
def test_every_id_the_input_takes_is_one_the_store_takes(runtime: Runtime, team: dict[str, Caller], odd: str) -> None:
    for call in (lambda: tasks.get_task(runtime, team["b1"], parse(TaskRef, {"taskId": odd})),
                 lambda: claim(runtime, team["b1"], odd),
                 lambda: claims.complete_task(runtime, team["b1"], parse(CompleteTask, {"taskId": odd})),
                 lambda: claims.renew_claim(runtime, team["b1"], parse(RenewClaim, {"taskId": odd}))):
        assert isinstance(refused(call), NotFound)


@pytest.mark.parametrize(("field", "value"), [
    ("claim_token", MAX_INT + 1), ("claim_token", 2**63), ("tokens_in", 2**63), ("tokens_out", 2**64),
    ("cost_usd", float("inf")), ("cost_usd", float("nan")), ("cost_usd", 1e308), ("claim_token", True),
    ("tokens_in", "5"), ("tokens_in", 5.0),
])
def test_numbers_no_store_takes_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(CompleteTask, {"taskId": "t1", field: value})
    assert info.value.field == field


def test_the_largest_numbers_taken_are_stored_and_read_back(runtime: Runtime, team: dict[str, Caller]) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id)
    claims.complete_task(runtime, team["b1"], parse(CompleteTask, {
        "taskId": task_id, "claim_token": 1, "tokens_in": MAX_INT, "tokens_out": MAX_INT, "cost_usd": 1_000_000}))
    task = tasks.get_task(runtime, team["lead"], TaskRef(taskId=task_id))["task"]
    assert (task["tokensIn"], task["tokensOut"], task["costUsd"]) == (MAX_INT, MAX_INT, 1_000_000)
    lost = refused(lambda: claims.renew_claim(runtime, team["b1"], parse(RenewClaim, {
        "taskId": task_id, "claim_token": MAX_INT})))
    assert lost.code == "TASK_FINISHED"


# ---------------------------------------------------------- 6. a locked store answers CONTENTION

# Short deadlines keep the suite fast; on Google's emulator long enough for a retry after the
# first commit's 2 s lock wait, so the retry loop and its turns are exercised too.
DEADLINES_S = {"sqlite": 1.0, "firestore-google": 3.0}


def deadline_for(backend: str) -> float:
    return DEADLINES_S.get(backend, 3.0)


class _Released(Exception):
    pass


@pytest.fixture
def hurried(backend: str, store_factory: Callable[[], Store], sqlite_path: Path,
            clock: ManualClock) -> Iterator[Runtime]:
    """A runtime whose store gives up on a locked document after `deadline_for(backend)`."""
    if backend == "sqlite":
        store: Store = SqliteStore(sqlite_path, busy_timeout_s=deadline_for(backend))
    else:
        store = store_factory()
        store.transaction_deadline_s = deadline_for(backend)  # type: ignore[attr-defined]
    rt = embedded_runtime(store, clock, strict=True)
    yield rt
    store.close()


Hold = Callable[[str], Callable[[], None]]


@pytest.fixture
def crashed_holder(backend: str, store_factory: Callable[[], Store], sqlite_path: Path) -> Iterator[Hold]:
    """`release = hold(path)`: a transaction elsewhere takes `path`'s lock and never finishes, as a
    process killed mid-transaction leaves it (Firestore keeps such a lock until it expires it,
    about a minute on Google's emulator; SQLite keeps the write lock of a hung process)."""
    releases: list[Callable[[], None]] = []

    def hold_sqlite() -> Callable[[], None]:
        other = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")

        def release() -> None:
            other.execute("ROLLBACK")
            other.close()
        return release

    def hold_firestore(path: str) -> Callable[[], None]:
        """A locking transaction of the client library (what a process killed while its
        transaction read leaves behind; this adapter's own transactions take such locks only
        when they query, the others read without locks and commit under preconditions)."""
        other = store_factory()
        client = other.client  # type: ignore[attr-defined]
        native = client.transaction()
        native._begin()
        client.document(path).get(transaction=native)  # its read lock, held until rollback or expiry

        def release() -> None:
            native._rollback()  # as Firestore's expiry eventually would
            other.close()
        return release

    def hold(path: str) -> Callable[[], None]:
        release = hold_sqlite() if backend == "sqlite" else hold_firestore(path)
        once = _once(release)
        releases.append(once)
        return once

    yield hold
    for release in releases:
        release()


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    called = False

    def run() -> None:
        nonlocal called
        if not called:
            called = True
            fn()
    return run


@pytest.mark.real_transactions
def test_a_call_blocked_by_a_dead_transaction_answers_contention_in_seconds_and_its_retry_succeeds(
        hurried: Runtime, crashed_holder: Hold, backend: str) -> None:
    deadline = deadline_for(backend)
    lead = make_caller(hurried, "lead")
    worker = make_caller(hurried, "b1", groups=("builders",))
    call = parse(CreateTask, {"title": "work", "target": "builders", "idempotency_key": "job-1"})
    release = crashed_holder(record_path(lead, "create_task", "job-1"))
    started = time.monotonic()
    with pytest.raises(Contention) as info:
        tasks.create_task(hurried, lead, call)
    waited = time.monotonic() - started
    assert deadline - 0.5 < waited < deadline + 3.0, f"the deadline, plus at most one commit's lock wait: {waited}"
    body = info.value.to_dict()
    assert body["code"] == "CONTENTION" and body["retryAfterSeconds"] > 0 and "nothing was changed" in body["message"]
    release()  # the dead transaction's lock is gone (expired, on Firestore)
    assert queue(hurried, worker) == [], "the refused call wrote nothing"
    first = tasks.create_task(hurried, lead, call)
    assert tasks.create_task(hurried, lead, call)["taskId"] == first["taskId"], "and it is still idempotent"
    assert queue(hurried, worker) == [first["taskId"]]


def test_contention_is_an_error_an_agent_can_act_on() -> None:
    error = Contention("busy", retry_after_seconds=5)
    assert error.to_dict() == {"code": "CONTENTION", "message": "busy", "retryAfterSeconds": 5}
