"""Issue #13, tier limits: the monthly task quota holds exactly (racing creators included), resets
at the month's start, counts sprint unlocks but not questions or retries, and writes nothing when
it refuses; the open-task, inbox and size limits refuse naming the limit and the field."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import Code, Conflict, LimitExceeded
from cachebash.domain.inputs import parse
from cachebash.domain.messages import SendMessage
from cachebash.domain.sprints import CreateSprint, SprintRef, UpdateSprintStory
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query, Store
from cachebash.services import claims, owner_tasks, plans, quota, relay, replies, sprints, sweeper, tasks
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import make_caller

T = "default"


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return {"lead": make_caller(runtime, "lead"), "b1": make_caller(runtime, "b1", groups=("builders",)),
            "b2": make_caller(runtime, "b2", groups=("builders",))}


def create(rt: Runtime, who: Caller, **args: Any) -> dict[str, Any]:
    return tasks.create_task(rt, who, parse(CreateTask, {"title": "work", "target": "builders", **args}))


def finish(rt: Runtime, who: Caller, task_id: str, **args: Any) -> None:
    claims.claim_task(rt, who, ClaimTask(taskId=task_id))
    claims.complete_task(rt, who, parse(CompleteTask, {"taskId": task_id, "completed_status": "SUCCESS", **args}))


def task_count(rt: Runtime) -> int:
    return len(rt.store.query(Query(tenant_path(T, "tasks"))))


def counters(rt: Runtime) -> dict[str, Any]:
    return quota.usage(rt, T)


def limit(rt: Runtime, **overrides: int | None) -> None:
    plans.set_plan(rt, T, name="free", overrides=overrides)


# ------------------------------------------------------------------------- the monthly quota


def test_the_quota_admits_its_limit_then_refuses_naming_plan_limit_and_reset(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    limit(runtime, monthly_tasks=3)
    for _ in range(3):
        create(runtime, team["lead"])
    before = task_count(runtime)
    with pytest.raises(LimitExceeded) as refused:
        create(runtime, team["lead"], idempotency_key="k-over")
    error = refused.value.to_dict()
    assert error["code"] == Code.QUOTA_EXCEEDED
    assert (error["plan"], error["limit"], error["used"], error["resetsAt"]) == ("free", 3, 3, "2026-02-01T00:00:00Z")
    assert "3 tasks a month" in error["message"] and "2026-02-01T00:00:00Z" in error["message"]
    assert task_count(runtime) == before and counters(runtime)["tasksThisMonth"] == 3, "nothing written"
    # The refused call left no idempotency record: the same key is admitted once there is room.
    limit(runtime, monthly_tasks=4)
    assert create(runtime, team["lead"], idempotency_key="k-over")["success"]


def test_the_quota_resets_at_the_start_of_the_utc_month(runtime: Runtime, team: dict[str, Caller],
                                                        clock: ManualClock) -> None:
    limit(runtime, monthly_tasks=1)
    clock.advance((datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC) - clock.now()).total_seconds())
    create(runtime, team["lead"])
    with pytest.raises(LimitExceeded):
        create(runtime, team["lead"])
    clock.advance(1)  # 2026-02-01T00:00:00Z
    assert create(runtime, team["lead"])["success"]
    assert counters(runtime) == {"month": "2026-02", "tasksThisMonth": 1, "openTasks": 2,
                                 "resetsAt": "2026-03-01T00:00:00Z"}


def test_questions_to_the_human_and_retries_do_not_count(runtime: Runtime, team: dict[str, Caller]) -> None:
    limit(runtime, monthly_tasks=1)
    failing = create(runtime, team["lead"], max_attempts=1)["taskId"]
    for _ in range(3):
        create(runtime, team["lead"], type="question", target="human")
    claims.claim_task(runtime, team["b1"], ClaimTask(taskId=failing))
    claims.complete_task(runtime, team["b1"], parse(CompleteTask, {"taskId": failing, "completed_status": "FAILED",
                                                                   "error_class": "TRANSIENT"}))
    assert owner_tasks.retry(runtime, T, failing)["status"] == "created"
    assert counters(runtime)["tasksThisMonth"] == 1
    with pytest.raises(LimitExceeded) as refused:  # a question to an agent is work like any other
        create(runtime, team["lead"], type="question", target="b1")
    assert refused.value.code == Code.QUOTA_EXCEEDED


def test_the_self_hosted_default_has_no_quota_and_the_cloud_default_is_free(
        runtime: Runtime, team: dict[str, Caller], store: Store, clock: ManualClock) -> None:
    assert plans.plan_of(runtime, T).name == "self-hosted"
    runtime.store.run_transaction(lambda tx: tx.set(quota.month_path(T, "2026-01"), {"tasks": 10_000}))
    assert create(runtime, team["lead"])["success"]
    cloud = embedded_runtime(store, clock, strict=True)
    cloud.default_plan = "free"
    with pytest.raises(LimitExceeded) as refused:
        create(cloud, team["lead"])
    assert refused.value.details["plan"] == "free" and refused.value.details["limit"] == 500


# ------------------------------------------------------------------------- sprints


def sprint(rt: Runtime, who: Caller, stories: list[dict[str, Any]]) -> str:
    return str(sprints.create_sprint(rt, who, parse(CreateSprint, {"projectName": "Quota", "target": "builders",
                                                                   "stories": stories}))["sprintId"])


TWO_WAVES = [{"id": "s1", "title": "one", "wave": 1}, {"id": "s2", "title": "two", "wave": 2},
             {"id": "s3", "title": "three", "wave": 2}]


def story_views(rt: Runtime, who: Caller, sprint_id: str) -> dict[str, dict[str, Any]]:
    view = sprints.get_sprint(rt, who, SprintRef(sprintId=sprint_id))
    return {s["storyId"]: s for wave in view["waves"] for s in wave["stories"]}


def test_sprint_unlocks_count_and_those_over_quota_wait_with_a_reason(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    limit(runtime, monthly_tasks=2)
    lead, b1 = team["lead"], team["b1"]
    sprint_id = sprint(runtime, lead, TWO_WAVES)
    assert counters(runtime)["tasksThisMonth"] == 1  # wave 1's one story
    finish(runtime, b1, f"{sprint_id}:s1:1")  # unlocks s2 and s3: room for one
    stories = story_views(runtime, lead, sprint_id)
    assert stories["s2"]["taskId"] == f"{sprint_id}:s2:1" and stories["s3"].get("taskId") is None
    assert "2 tasks a month" in stories["s3"]["heldReason"] and stories["s3"]["status"] == "queued"
    assert counters(runtime)["tasksThisMonth"] == 2
    with pytest.raises(Conflict) as held:
        sprints.update_sprint_story(runtime, b1, parse(UpdateSprintStory, {"sprintId": sprint_id, "storyId": "s3",
                                                                           "status": "active"}))
    assert held.value.code == Code.NOT_AVAILABLE_YET and "held back by the plan" in held.value.message
    sweeper.sweep(runtime)  # still over quota: nothing moves, nothing is written twice
    assert story_views(runtime, lead, sprint_id)["s3"].get("taskId") is None
    limit(runtime, monthly_tasks=3)  # the owner raises the plan: the next sweep hands the story out
    assert sweeper.sweep(runtime)["sprintsRepaired"] == 1
    stories = story_views(runtime, lead, sprint_id)
    assert stories["s3"]["taskId"] == f"{sprint_id}:s3:1" and "heldReason" not in stories["s3"]


def test_a_held_story_goes_out_when_the_month_turns(runtime: Runtime, team: dict[str, Caller],
                                                    clock: ManualClock) -> None:
    limit(runtime, monthly_tasks=1)
    sprint_id = sprint(runtime, team["lead"], TWO_WAVES[:2])
    finish(runtime, team["b1"], f"{sprint_id}:s1:1")
    assert story_views(runtime, team["lead"], sprint_id)["s2"].get("taskId") is None
    clock.advance(31 * 86400)
    sweeper.sweep(runtime)
    assert story_views(runtime, team["lead"], sprint_id)["s2"]["taskId"] == f"{sprint_id}:s2:1"


def test_a_held_story_decided_by_hand_shows_no_reason(runtime: Runtime, team: dict[str, Caller]) -> None:
    limit(runtime, monthly_tasks=1)
    sprint_id = sprint(runtime, team["lead"], TWO_WAVES[:2])
    finish(runtime, team["b1"], f"{sprint_id}:s1:1")
    assert story_views(runtime, team["lead"], sprint_id)["s2"]["heldReason"]
    sprints.update_sprint_story(runtime, team["lead"], parse(UpdateSprintStory, {"sprintId": sprint_id,
                                                                                "storyId": "s2", "status": "skipped"}))
    view = sprints.get_sprint(runtime, team["lead"], SprintRef(sprintId=sprint_id))
    assert "heldReason" not in story_views(runtime, team["lead"], sprint_id)["s2"]
    assert view["sprint"]["status"] == "completed" and task_count(runtime) == 1


def test_a_sprint_whose_first_wave_is_over_quota_is_refused_whole(runtime: Runtime, team: dict[str, Caller]) -> None:
    limit(runtime, monthly_tasks=1)
    with pytest.raises(LimitExceeded) as refused:
        sprint(runtime, team["lead"], [{"id": "a", "title": "a", "wave": 1}, {"id": "b", "title": "b", "wave": 1}])
    assert refused.value.code == Code.QUOTA_EXCEEDED
    assert runtime.store.query(Query(tenant_path(T, "sprints"))) == [] and task_count(runtime) == 0


def test_a_story_retry_does_not_count(runtime: Runtime, team: dict[str, Caller]) -> None:
    limit(runtime, monthly_tasks=1)
    sprint_id = sprint(runtime, team["lead"], [{"id": "a", "title": "a", "wave": 1, "maxRetries": 2}])
    claims.claim_task(runtime, team["b1"], ClaimTask(taskId=f"{sprint_id}:a:1"))
    claims.complete_task(runtime, team["b1"], parse(CompleteTask, {"taskId": f"{sprint_id}:a:1",
                                                                   "completed_status": "FAILED"}))
    assert story_views(runtime, team["lead"], sprint_id)["a"]["taskId"] == f"{sprint_id}:a:2"
    assert counters(runtime)["tasksThisMonth"] == 1


# ------------------------------------------------------------------------- open tasks


def test_open_tasks_are_capped_and_every_way_of_finishing_makes_room(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    limit(runtime, max_open_tasks=3)
    done = create(runtime, team["lead"])["taskId"]
    cancelled = create(runtime, team["lead"])["taskId"]
    question = create(runtime, team["lead"], type="question", target="human")["taskId"]
    with pytest.raises(LimitExceeded) as refused:
        create(runtime, team["lead"])
    error = refused.value.to_dict()
    assert (error["code"], error["field"], error["limit"], error["value"], error["used"]) == (
        Code.LIMIT_EXCEEDED, "max_open_tasks", "max_open_tasks", 3, 3)
    finish(runtime, team["b1"], done)
    owner_tasks.cancel(runtime, T, cancelled, owner_tasks.CancelTask())
    replies.reply(runtime, T, parse(replies.HumanReply, {"replyTo": question, "message": "yes"}))
    assert counters(runtime)["openTasks"] == 0
    expiring = create(runtime, team["lead"], ttl=60)["taskId"]
    create(runtime, team["lead"])
    create(runtime, team["lead"])
    clock.advance(61)
    sweeper.sweep(runtime)
    assert tasks.get_task(runtime, team["lead"], parse(tasks.TaskRef, {"taskId": expiring}))["task"]["status"] \
        == "expired"
    assert counters(runtime)["openTasks"] == 2
    with pytest.raises(Conflict):  # finishing a finished task again is refused, and changes no count
        claims.complete_task(runtime, team["lead"], parse(CompleteTask, {"taskId": done,
                                                                         "completed_status": "SUCCESS"}))
    assert counters(runtime)["openTasks"] == 2


def test_a_cancelled_sprint_frees_its_open_story_tasks(runtime: Runtime, team: dict[str, Caller]) -> None:
    sprint_id = sprint(runtime, team["lead"], [{"id": "a", "title": "a", "wave": 1}, {"id": "b", "title": "b"}])
    assert counters(runtime)["openTasks"] == 2
    sprints.complete_sprint(runtime, team["lead"], parse(sprints.CompleteSprint, {"sprintId": sprint_id,
                                                                                 "cancel": True}))
    assert counters(runtime)["openTasks"] == 0


# ------------------------------------------------------------------------- messages and sizes


def send(rt: Runtime, who: Caller, target: str, text: str = "hi") -> dict[str, Any]:
    return relay.send_message(rt, who, parse(SendMessage, {"target": target, "message": text}))


def test_sizes_are_counted_in_utf8_bytes_and_refused_naming_the_field(runtime: Runtime,
                                                                      team: dict[str, Caller]) -> None:
    limit(runtime, max_message_bytes=10, max_instruction_bytes=10)
    assert send(runtime, team["lead"], "b1", "é" * 5)["success"]  # 10 bytes
    with pytest.raises(LimitExceeded) as big:
        send(runtime, team["lead"], "b1", "é" * 5 + "x")
    assert (big.value.field, big.value.details["limit"], big.value.details["size"]) == ("message",
                                                                                     "max_message_bytes", 11)
    with pytest.raises(LimitExceeded) as long:
        create(runtime, team["lead"], instructions="€" * 4)  # 12 bytes
    assert long.value.field == "instructions" and long.value.details["value"] == 10
    assert task_count(runtime) == 0


def test_a_full_inbox_refuses_direct_messages_and_is_left_out_of_group_ones(runtime: Runtime,
                                                                            team: dict[str, Caller]) -> None:
    limit(runtime, max_inbox_undelivered=2)
    send(runtime, team["lead"], "b1")
    send(runtime, team["lead"], "b1")
    with pytest.raises(LimitExceeded) as full:
        send(runtime, team["lead"], "b1")
    assert (full.value.field, full.value.details["limit"], full.value.details["value"]) == (
        "target", "max_inbox_undelivered", 2)
    sent = send(runtime, team["lead"], "builders")
    assert sent["recipients"] == ["b2"] and sent["inboxFull"] == ["b1"] and "b1" in sent["warning"]
    relay.get_messages(runtime, team["b1"], parse(relay.GetMessages, {"limit": 50}))
    assert send(runtime, team["lead"], "b1")["success"]  # read: room again


# ------------------------------------------------------------------------- racing creators


RACERS = 64


@pytest.mark.real_transactions
def test_racing_creators_at_499_of_500_admit_exactly_one(
        runtime: Runtime, team: dict[str, Caller], store_factory: Callable[[], Store], clock: ManualClock,
        backend: str) -> None:
    """Each racer has its own store connection, so the database itself arbitrates the counter."""
    limit(runtime)  # the free plan: 500 a month
    runtime.store.run_transaction(lambda tx: tx.set(quota.month_path(T, "2026-01"), {"tasks": 499}))
    barrier = threading.Barrier(RACERS)
    admitted: list[str] = []
    refused: list[str] = []
    others: list[BaseException] = []

    def race(i: int) -> None:
        rt = embedded_runtime(store_factory(), clock)
        try:
            barrier.wait()
            admitted.append(create(rt, team["lead"], title=f"racer {i}")["taskId"])
        except LimitExceeded as exc:
            refused.append(str(exc.code))
        except BaseException as exc:  # noqa: BLE001 - reported below
            others.append(exc)
        finally:
            rt.store.close()

    started = time.monotonic()
    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert others == []
    assert len(admitted) == 1 and refused == [Code.QUOTA_EXCEEDED] * (RACERS - 1), f"{elapsed:.1f} s"
    assert counters(runtime)["tasksThisMonth"] == 500 and task_count(runtime) == 1
    print(f"{RACERS} racers on {backend}: {elapsed:.2f} s")


@pytest.mark.real_transactions
def test_creators_racing_a_sprint_unlock_share_one_count(
        runtime: Runtime, team: dict[str, Caller], store_factory: Callable[[], Store], clock: ManualClock) -> None:
    """At 497 of 500 with a sprint's wave 2 (two stories) unlocking as eight creators race it:
    three get in, whichever they are, and the count ends at exactly 500."""
    limit(runtime)
    sprint_id = sprint(runtime, team["lead"], TWO_WAVES)
    claims.claim_task(runtime, team["b1"], ClaimTask(taskId=f"{sprint_id}:s1:1"))
    runtime.store.run_transaction(lambda tx: tx.set(quota.month_path(T, "2026-01"), {"tasks": 497}))
    barrier = threading.Barrier(9)
    created: list[str] = []
    others: list[BaseException] = []

    def creator(i: int) -> None:
        rt = embedded_runtime(store_factory(), clock)
        try:
            barrier.wait()
            created.append(create(rt, team["lead"], title=f"racer {i}")["taskId"])
        except LimitExceeded:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            others.append(exc)
        finally:
            rt.store.close()

    def finisher() -> None:
        rt = embedded_runtime(store_factory(), clock)
        try:
            barrier.wait()
            claims.complete_task(rt, team["b1"], parse(CompleteTask, {"taskId": f"{sprint_id}:s1:1",
                                                                      "completed_status": "SUCCESS"}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            others.append(exc)
        finally:
            rt.store.close()

    threads = [threading.Thread(target=creator, args=(i,)) for i in range(8)] + [threading.Thread(target=finisher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert others == []
    sweeper.sweep(runtime)  # whatever the race left held stays held: the month is full
    stories = story_views(runtime, team["lead"], sprint_id)
    released = [sid for sid in ("s2", "s3") if stories[sid].get("taskId")]
    assert len(created) + len(released) == 3, (created, released)
    assert all(stories[sid].get("heldReason") for sid in ("s2", "s3") if sid not in released)
    assert counters(runtime)["tasksThisMonth"] == 500 and task_count(runtime) == 1 + len(created) + len(released)


def test_set_plan_applies_at_once_in_this_process(runtime: Runtime) -> None:
    assert plans.plan_of(runtime, T).name == "self-hosted"
    done = plans.set_plan(runtime, T, name="pro", overrides={"monthly_tasks": 9})
    assert done["plan"]["monthly_tasks"] == 9 and plans.plan_of(runtime, T).monthly_tasks == 9
    plans.set_plan(runtime, T, overrides={"max_open_tasks": None})
    kept = plans.plan_of(runtime, T)
    assert (kept.name, kept.monthly_tasks, kept.max_open_tasks) == ("pro", 9, None)
    cleared = plans.set_plan(runtime, T, clear=True)
    assert cleared["overrides"] == {} and plans.plan_of(runtime, T) == plans.plans.preset("pro")
    assert runtime.store.run_transaction(lambda tx: plans.plan_in(tx, runtime, T)).name == "pro"


def test_two_runtimes_never_share_cached_plans(runtime: Runtime, store: Store, clock: ManualClock) -> None:
    plans.set_plan(runtime, T, name="free")
    other = embedded_runtime(store, clock)
    other.default_plan = "unlimited"
    assert plans.plan_of(other, "elsewhere").name == "unlimited"
    assert plans.plan_of(runtime, "elsewhere").name == "self-hosted"



