"""Work that survives crashed agents: leases, fencing, retries with back-off, dead letters."""

from __future__ import annotations

from typing import Any

import pytest

from cachebash.domain.errors import Conflict
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages
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
from cachebash.services import claims, relay, sweeper, tasks
from cachebash.services.runtime import Caller, Runtime
from support.callers import lead_and_builders


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return lead_and_builders(runtime)


def create(rt: Runtime, who: Caller, **args: Any) -> str:
    args = {"title": "work", "target": "builders", **args}
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(0.001)
    return str(tasks.create_task(rt, who, parse(CreateTask, args))["taskId"])


def claim(rt: Runtime, who: Caller, task_id: str, **args: Any) -> dict[str, Any]:
    return claims.claim_task(rt, who, parse(ClaimTask, {"taskId": task_id, **args}))


def complete(rt: Runtime, who: Caller, task_id: str, **args: Any) -> dict[str, Any]:
    return claims.complete_task(rt, who, parse(CompleteTask, {"taskId": task_id, **args}))


def task(rt: Runtime, who: Caller, task_id: str) -> dict[str, Any]:
    return dict(tasks.get_task(rt, who, TaskRef(taskId=task_id))["task"])


def queue(rt: Runtime, who: Caller, **args: Any) -> list[str]:
    return [t["taskId"] for t in tasks.get_tasks(rt, who, parse(GetTasks, args))["tasks"]]


def test_claim_grants_a_lease_and_a_token(runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claimed = claim(runtime, team["b1"], task_id)
    assert claimed["claimToken"] == 1 and claimed["attempt"] == 1
    assert claimed["leaseExpiresAt"] == clock.iso(900)
    other = create(runtime, team["lead"])
    assert claim(runtime, team["b1"], other, lease_seconds=60)["leaseExpiresAt"] == clock.iso(60)
    third = create(runtime, team["lead"])
    assert claim(runtime, team["b1"], third, lease_seconds=86_400)["leaseExpiresAt"] == clock.iso(7200), "capped"


def test_crashed_holder_task_is_offered_again_once_and_stale_completion_refused(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    clock.advance(59)
    assert sweeper.sweep(runtime)["leasesExpired"] == 0
    clock.advance(2)  # b1 "crashed": no heartbeat
    assert sweeper.sweep(runtime)["leasesExpired"] == 1
    assert sweeper.sweep(runtime)["leasesExpired"] == 0, "a second sweep finds nothing more to do"
    requeued = task(runtime, team["lead"], task_id)
    assert (requeued["status"], requeued["attempt"]) == ("created", 2)
    assert "lease expired" in requeued["lastError"] and "claimedBy" not in requeued
    assert [h["event"] for h in requeued["history"]] == ["create", "claim", "retry"]
    assert queue(runtime, team["b2"]) == [], "not offered during the back-off"
    with pytest.raises(Conflict) as early:
        claim(runtime, team["b2"], task_id)
    assert early.value.code == "NOT_AVAILABLE_YET"
    clock.advance(runtime.policy.backoff(1))
    assert queue(runtime, team["b2"]) == [task_id], "offered again, exactly once"
    second = claim(runtime, team["b2"], task_id)
    assert (second["claimToken"], second["attempt"]) == (2, 2)
    with pytest.raises(Conflict) as stale:
        complete(runtime, team["b1"], task_id)
    assert stale.value.code == "CLAIM_LOST" and "now held by 'b2'" in stale.value.message
    with pytest.raises(Conflict) as stale_token:
        claims.report_progress(runtime, team["b2"], ReportProgress(taskId=task_id, claim_token=1))
    assert stale_token.value.code == "CLAIM_LOST"
    done = complete(runtime, team["b2"], task_id, claim_token=2)
    assert done["status"] == "completed"
    assert task(runtime, team["lead"], task_id)["attempt"] == 2


def test_heartbeats_keep_the_lease(runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id, lease_seconds=60)
    clock.advance(50)
    renewed = claims.renew_claim(runtime, team["b1"], RenewClaim(taskId=task_id, claim_token=1))
    assert renewed["leaseExpiresAt"] == clock.iso(60)
    clock.advance(50)
    progress = claims.report_progress(runtime, team["b1"], ReportProgress(taskId=task_id, progress=70))
    assert progress["status"] == "in_progress" and progress["leaseExpiresAt"] == clock.iso(60)
    clock.advance(50)
    assert sweeper.sweep(runtime)["leasesExpired"] == 0
    assert complete(runtime, team["b1"], task_id)["status"] == "completed"


def test_release_hands_back_without_using_an_attempt(runtime: Runtime, team: dict[str, Caller]) -> None:
    task_id = create(runtime, team["lead"])
    claim(runtime, team["b1"], task_id)
    released = claims.release_task(runtime, team["b1"], ReleaseTask(taskId=task_id, reason="out of context"))
    assert released["status"] == "created"
    view = task(runtime, team["lead"], task_id)
    assert view["attempt"] == 1 and view["history"][-1]["note"] == "out of context"
    assert queue(runtime, team["b2"]) == [task_id], "offered at once: no back-off for a release"
    with pytest.raises(Conflict) as lost:
        claims.report_progress(runtime, team["b1"], ReportProgress(taskId=task_id))
    assert lost.value.code == "CLAIM_LOST" and "back in the queue" in lost.value.message
    assert claim(runtime, team["b2"], task_id)["claimToken"] == 2


def test_dead_letter_after_max_attempts_tells_the_creator(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    task_id = create(runtime, team["lead"], max_attempts=2, title="flaky job")
    for holder in ("b1", "b2"):
        clock.advance(runtime.policy.backoff_cap_seconds)
        claim(runtime, team[holder], task_id, lease_seconds=30)
        clock.advance(31)
        sweeper.sweep(runtime)
    dead = task(runtime, team["lead"], task_id)
    assert dead["status"] == "dead" and dead["attempt"] == 2
    assert queue(runtime, team["b1"], status="dead") == [task_id]
    assert queue(runtime, team["b1"]) == []
    inbox = relay.get_messages(runtime, team["lead"], GetMessages())["messages"]
    assert [(m["source"], m["message_type"]) for m in inbox] == [("cachebash", "RESULT")]
    assert "flaky job" in inbox[0]["message"] and "dead-lettered after 2" in inbox[0]["message"]
    sweeper.sweep(runtime)
    assert relay.get_messages(runtime, team["lead"], GetMessages())["count"] == 0, "told once"


def test_transient_failures_retry_permanent_ones_do_not(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    flaky = create(runtime, team["lead"], max_attempts=2)
    claim(runtime, team["b1"], flaky)
    retried = complete(runtime, team["b1"], flaky, completed_status="FAILED", error_class="TRANSIENT",
                       error_code="rate_limited")
    assert retried["status"] == "created" and retried["attempt"] == 2
    clock.advance(runtime.policy.backoff(1))
    claim(runtime, team["b2"], flaky)
    final = complete(runtime, team["b2"], flaky, completed_status="FAILED", error_class="TRANSIENT")
    assert final["status"] == "dead"
    broken = create(runtime, team["lead"])
    claim(runtime, team["b1"], broken)
    assert complete(runtime, team["b1"], broken, completed_status="FAILED",
                    error_class="PERMANENT")["status"] == "failed"


def test_claim_next_takes_the_best_task_atomically(runtime: Runtime, team: dict[str, Caller]) -> None:
    low = create(runtime, team["lead"], priority="low")
    high = create(runtime, team["lead"], priority="high")
    first = claims.claim_next(runtime, team["b1"], ClaimNext())
    second = claims.claim_next(runtime, team["b2"], ClaimNext())
    assert (first["taskId"], second["taskId"]) == (high, low)
    assert first["task"]["claimToken"] == 1
    assert claims.claim_next(runtime, team["b1"], ClaimNext()) == {"success": True, "claimed": False, "task": None}


def test_ttl_expired_tasks_are_closed_by_the_sweeper(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    short = create(runtime, team["lead"], ttl=30)
    clock.advance(31)
    assert sweeper.sweep(runtime)["tasksExpired"] == 1
    assert task(runtime, team["lead"], short)["status"] == "expired"
