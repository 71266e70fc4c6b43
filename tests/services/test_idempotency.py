"""A retried call with the same idempotency_key returns the first result and writes nothing new."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import Conflict
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, SendMessage
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask, GetTasks
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services import claims, relay, sweeper, tasks
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller


@pytest.fixture
def lead(runtime: Runtime) -> Caller:
    return make_caller(runtime, "lead")


@pytest.fixture
def builder(runtime: Runtime) -> Caller:
    return make_caller(runtime, "builder")


def all_tasks(rt: Runtime, who: Caller) -> list[dict[str, Any]]:
    return list(tasks.get_tasks(rt, who, parse(GetTasks, {"target": "builder", "status": "all", "limit": 50}))["tasks"])


def test_create_task_retry_writes_once(runtime: Runtime, lead: Caller, builder: Caller) -> None:
    cmd = parse(CreateTask, {"title": "once", "target": "builder", "idempotency_key": "k-1"})
    first = tasks.create_task(runtime, lead, cmd)
    again = tasks.create_task(runtime, lead, cmd)
    assert again == first
    assert [t["taskId"] for t in all_tasks(runtime, builder)] == [first["taskId"]]
    with pytest.raises(Conflict) as reused:
        tasks.create_task(runtime, lead, parse(CreateTask, {"title": "other", "target": "builder",
                                                            "idempotency_key": "k-1"}))
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED" and reused.value.field == "idempotency_key"
    mine = tasks.create_task(runtime, builder, parse(CreateTask, {"title": "once", "target": "builder",
                                                                  "idempotency_key": "k-1"}))
    assert mine["taskId"] != first["taskId"], "keys are per program"


def test_send_message_retry_delivers_once(runtime: Runtime, lead: Caller, builder: Caller) -> None:
    cmd = parse(SendMessage, {"target": "builder", "message": "hi", "idempotency_key": "m-1"})
    assert relay.send_message(runtime, lead, cmd) == relay.send_message(runtime, lead, cmd)
    assert relay.get_messages(runtime, builder, GetMessages())["count"] == 1


def test_claim_and_complete_retries_return_the_first_result(runtime: Runtime, lead: Caller, builder: Caller) -> None:
    task_id = tasks.create_task(runtime, lead, parse(CreateTask, {"title": "x", "target": "builder"}))["taskId"]
    claim = parse(ClaimTask, {"taskId": task_id, "idempotency_key": "c-1"})
    first = claims.claim_task(runtime, builder, claim)
    assert claims.claim_task(runtime, builder, claim) == first, "not ALREADY_CLAIMED by itself"
    with pytest.raises(Conflict):
        claims.claim_task(runtime, builder, parse(ClaimTask, {"taskId": task_id}))
    done = parse(CompleteTask, {"taskId": task_id, "idempotency_key": "d-1"})
    result = claims.complete_task(runtime, builder, done)
    assert claims.complete_task(runtime, builder, done) == result, "not TASK_FINISHED on the retry"


def test_records_are_kept_a_day_then_purged(runtime: Runtime, lead: Caller, clock: ManualClock) -> None:
    cmd = parse(CreateTask, {"title": "x", "target": "builder", "idempotency_key": "k"})
    first = tasks.create_task(runtime, lead, cmd)
    clock.advance(23 * 3600)
    assert tasks.create_task(runtime, lead, cmd) == first
    clock.advance(3600 + 1)
    assert sweeper.sweep(runtime)["idempotencyPurged"] == 1
    assert tasks.create_task(runtime, lead, cmd)["taskId"] != first["taskId"]


@pytest.mark.real_transactions
def test_concurrent_retries_write_once(runtime: Runtime, lead: Caller, builder: Caller,
                                       store_factory: Callable[[], Store], clock: ManualClock) -> None:
    cmd = parse(CreateTask, {"title": "raced", "target": "builder", "idempotency_key": "race"})
    barrier = threading.Barrier(8)
    results: list[str] = []

    def retry() -> None:
        rt = embedded_runtime(store_factory(), clock)
        barrier.wait()
        try:
            results.append(tasks.create_task(rt, lead, cmd)["taskId"])
        finally:
            rt.store.close()

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert [t["taskId"] for t in all_tasks(runtime, builder)] == results[:1]
