"""Dispatch rules over a real store: lifecycle, permissions, ordering, expiry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import CacheBashError, Conflict, Forbidden, NotFound
from cachebash.domain.inputs import parse
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask, GetTasks, ReportProgress, TaskRef
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services import claims, tasks
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller


def create(rt: Runtime, who: Caller, **args: Any) -> str:
    args.setdefault("title", "Fix type error in auth.ts")
    args.setdefault("target", "builder")
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(0.001)  # a hand-driven clock would otherwise give equal creation times
    return str(tasks.create_task(rt, who, parse(CreateTask, args))["taskId"])


def claim(rt: Runtime, who: Caller, task_id: str) -> dict[str, Any]:
    return claims.claim_task(rt, who, ClaimTask(taskId=task_id))


def complete(rt: Runtime, who: Caller, task_id: str, status: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return claims.complete_task(rt, who, parse(CompleteTask, {"taskId": task_id, "completed_status": status, **extra}))


def listing(rt: Runtime, who: Caller, **args: Any) -> list[str]:
    return [t["taskId"] for t in tasks.get_tasks(rt, who, parse(GetTasks, args))["tasks"]]


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return {
        "investigator": make_caller(runtime, "investigator"),
        "builder": make_caller(runtime, "builder", groups=("builders",)),
        "builder2": make_caller(runtime, "builder2", groups=("builders",)),
        "reviewer": make_caller(runtime, "reviewer"),
        "admin": make_caller(runtime, "admin", admin=True),
    }


def test_first_workflow_lifecycle(runtime: Runtime, team: dict[str, Caller]) -> None:
    inv, builder = team["investigator"], team["builder"]
    task_id = create(runtime, inv, priority="high", instructions="Line 42")
    assert listing(runtime, builder) == [task_id]
    claimed = claim(runtime, builder, task_id)
    assert claimed["status"] == "claimed" and claimed["instructions"] == "Line 42"
    assert listing(runtime, builder) == [], "claimed tasks leave the created queue"
    assert listing(runtime, builder, status="active") == [task_id]
    progress = claims.report_progress(runtime, builder, ReportProgress(taskId=task_id, progress=40, note="testing"))
    assert progress["status"] == "in_progress"
    done = complete(runtime, inv, task_id, tokens_in=12500, cost_usd=0.08, model="m")
    assert done["status"] == "completed" and done["completedStatus"] == "SUCCESS"
    task = tasks.get_task(runtime, inv, TaskRef(taskId=task_id))["task"]
    assert [h["to"] for h in task["history"]] == ["created", "claimed", "in_progress", "completed"]
    assert task["tokensIn"] == 12500 and task["costUsd"] == 0.08 and task["completedBy"] == "investigator"
    assert listing(runtime, builder, status="done") == [task_id]


def test_lifecycle_is_enforced(runtime: Runtime, team: dict[str, Caller]) -> None:
    inv, builder = team["investigator"], team["builder"]
    task_id = create(runtime, inv)
    with pytest.raises(Conflict, match="claim it"):
        complete(runtime, inv, task_id, "SUCCESS")
    with pytest.raises(Conflict, match="claim it"):
        complete(runtime, inv, task_id, "FAILED")
    claim(runtime, builder, task_id)
    claims.report_progress(runtime, builder, ReportProgress(taskId=task_id))
    with pytest.raises(Conflict, match="work has started"):
        complete(runtime, inv, task_id, "CANCELLED")
    complete(runtime, builder, task_id, "FAILED", error_code="tests_red", error_class="PERMANENT")
    with pytest.raises(Conflict) as again:
        complete(runtime, builder, task_id, "SUCCESS")
    assert again.value.code == "TASK_FINISHED"
    task = tasks.get_task(runtime, inv, TaskRef(taskId=task_id))["task"]
    assert task["status"] == "failed" and task["errorClass"] == "PERMANENT"


@pytest.mark.parametrize("outcome", ["CANCELLED", "SKIPPED"])
def test_cancel_or_skip_before_work(runtime: Runtime, team: dict[str, Caller], outcome: str) -> None:
    task_id = create(runtime, team["investigator"])
    assert complete(runtime, team["investigator"], task_id, outcome)["status"] == outcome.lower()
    with pytest.raises(Conflict):
        claim(runtime, team["builder"], task_id)


def test_who_may_claim_and_complete(runtime: Runtime, team: dict[str, Caller]) -> None:
    task_id = create(runtime, team["investigator"])
    with pytest.raises(Forbidden, match="is for 'builder'"):
        claim(runtime, team["reviewer"], task_id)
    claim(runtime, team["builder"], task_id)
    with pytest.raises(Forbidden, match="only the claimer or creator"):
        complete(runtime, team["reviewer"], task_id)
    with pytest.raises(Forbidden, match="only the claimer"):
        claims.report_progress(runtime, team["investigator"], ReportProgress(taskId=task_id))
    assert complete(runtime, team["admin"], task_id)["status"] == "completed"


def test_second_claim_names_the_owner(runtime: Runtime, team: dict[str, Caller]) -> None:
    task_id = create(runtime, team["investigator"], target="builders")
    claim(runtime, team["builder"], task_id)
    with pytest.raises(Conflict) as info:
        claim(runtime, team["builder2"], task_id)
    assert info.value.code == "ALREADY_CLAIMED" and "'builder'" in info.value.message
    assert info.value.details["claimedBy"] == "builder"


def test_group_tasks_reach_every_member(runtime: Runtime, team: dict[str, Caller]) -> None:
    group_task = create(runtime, team["investigator"], target="builders")
    all_task = create(runtime, team["investigator"], target="all")
    assert listing(runtime, team["builder"]) == [group_task, all_task]
    assert listing(runtime, team["builder2"]) == [group_task, all_task]
    assert listing(runtime, team["reviewer"]) == [all_task]
    assert listing(runtime, team["reviewer"], target="builders") == [group_task], "any queue can be inspected"


@pytest.mark.real_cursors
def test_priority_then_age_and_paging(runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    made: dict[str, str] = {}
    for name, priority in [("n1", "normal"), ("l1", "low"), ("h1", "high"), ("n2", "normal"), ("h2", "high")]:
        made[name] = create(runtime, team["investigator"], title=name, priority=priority)
        clock.advance(1)
    expected = [made[n] for n in ("h1", "h2", "n1", "n2", "l1")]
    assert listing(runtime, team["builder"], limit=50) == expected
    pages: list[str] = []
    cursor = None
    while True:
        page = tasks.get_tasks(runtime, team["builder"], parse(GetTasks, {"limit": 2, "cursor": cursor}))
        pages += [t["taskId"] for t in page["tasks"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == expected


def test_expired_tasks_are_not_offered_or_claimable(runtime: Runtime, team: dict[str, Caller],
                                                     clock: ManualClock) -> None:
    short = create(runtime, team["investigator"], ttl=60, title="short")
    keep = create(runtime, team["investigator"], title="keep")
    assert listing(runtime, team["builder"]) == [short, keep]
    clock.advance(61)
    assert listing(runtime, team["builder"]) == [keep]
    with pytest.raises(Conflict) as info:
        claim(runtime, team["builder"], short)
    assert info.value.code == "TASK_EXPIRED"


def test_source_must_be_the_caller(runtime: Runtime, team: dict[str, Caller]) -> None:
    with pytest.raises(Forbidden) as info:
        create(runtime, team["builder"], source="investigator")
    assert info.value.field == "source"
    task_id = create(runtime, team["builder"], source="builder", target="reviewer")
    assert tasks.get_task(runtime, team["builder"], TaskRef(taskId=task_id))["task"]["source"] == "builder"


def test_fallback_only_when_target_unknown(runtime: Runtime, team: dict[str, Caller]) -> None:
    routed = tasks.create_task(runtime, team["investigator"],
                               parse(CreateTask, {"title": "x", "target": "ghost", "fallback": "builder"}))
    assert routed["target"] == "builder" and "warning" not in routed
    direct = tasks.create_task(runtime, team["investigator"],
                               parse(CreateTask, {"title": "x", "target": "reviewer", "fallback": "builder"}))
    assert direct["target"] == "reviewer"
    unknown = tasks.create_task(runtime, team["investigator"], parse(CreateTask, {"title": "x", "target": "ghost"}))
    assert unknown["target"] == "ghost" and "ghost" in unknown["warning"]


def test_tenants_are_isolated(runtime: Runtime, team: dict[str, Caller]) -> None:
    task_id = create(runtime, team["investigator"])
    outsider = make_caller(runtime, "builder", tenant="other", groups=("builders",))
    assert listing(runtime, outsider) == []
    assert listing(runtime, outsider, status="all", type="all") == []
    for attempt in (lambda: claim(runtime, outsider, task_id),
                    lambda: tasks.get_task(runtime, outsider, TaskRef(taskId=task_id)),
                    lambda: complete(runtime, outsider, task_id, "CANCELLED")):
        with pytest.raises(NotFound):
            attempt()


@pytest.mark.real_transactions
def test_twenty_racing_claimers_one_winner(runtime: Runtime, team: dict[str, Caller],
                                           store_factory: Callable[[], Store], clock: ManualClock) -> None:
    """Each claimer has its own store connection, so the database itself arbitrates."""
    task_id = create(runtime, team["investigator"], target="builders")
    claimers = [make_caller(runtime, f"racer{i}", groups=("builders",)) for i in range(20)]
    barrier = threading.Barrier(len(claimers))
    outcomes: list[str] = []

    def race(who: Caller) -> None:
        rt = embedded_runtime(store_factory(), clock)
        barrier.wait()
        try:
            claim(rt, who, task_id)
            outcomes.append("won")
        except CacheBashError as exc:
            outcomes.append(exc.code)
        finally:
            rt.store.close()

    threads = [threading.Thread(target=race, args=(c,)) for c in claimers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ALREADY_CLAIMED"] * 19 + ["won"]
