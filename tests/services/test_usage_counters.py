"""Usage counters kept as work happens, over a real store: get_usage's periods, groupings and
visibility, the plan's quota, sharding, folding past days, and a recount: after a mixed
workload every figure equals what the tasks themselves say."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from cachebash.domain import usage as rules
from cachebash.domain.errors import InvalidInput
from cachebash.domain.inputs import parse
from cachebash.domain.sprints import CompleteSprint, CreateSprint, UpdateSprintStory
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask, GetTasks
from cachebash.domain.usage import GetUsage
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query
from cachebash.services import claims, owner_tasks, plans, quota, replies, sprints, sweeper, tasks, usage, usage_report
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import make_caller
from support.usage_recount import mismatches, recount


def at(clock: ManualClock, iso: str) -> None:
    moment = datetime.fromisoformat(iso).replace(tzinfo=UTC)
    assert moment >= clock.now(), "the clock only moves forward"
    clock.advance((moment - clock.now()).total_seconds())


def create(rt: Runtime, who: Caller, target: str, **args: Any) -> str:
    return str(tasks.create_task(rt, who, parse(CreateTask, {"title": "work", "target": target, **args}))["taskId"])


def claim(rt: Runtime, who: Caller, task_id: str) -> None:
    claims.claim_task(rt, who, ClaimTask(taskId=task_id))


def complete(rt: Runtime, who: Caller, task_id: str, status: str = "SUCCESS", **args: Any) -> dict[str, Any]:
    return claims.complete_task(rt, who, parse(CompleteTask, {"taskId": task_id, "completed_status": status,
                                                              **args}))


def get(rt: Runtime, who: Caller, **args: Any) -> dict[str, Any]:
    return usage_report.get_usage(rt, who, parse(GetUsage, args))


def rows(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in answer["rows"]}


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return {"lead": make_caller(runtime, "lead"), "b1": make_caller(runtime, "b1", groups=("builders",)),
            "b2": make_caller(runtime, "b2", groups=("builders",)), "admin": make_caller(runtime, "boss", admin=True)}


def test_a_task_counts_when_created_claimed_and_finished(runtime: Runtime, clock: ManualClock,
                                                         team: dict[str, Caller]) -> None:
    task_id = create(runtime, team["lead"], "b1", projectId="site")
    claim(runtime, team["b1"], task_id)
    clock.advance(42)
    complete(runtime, team["b1"], task_id, tokens_in=1200, tokens_out=300, cost_usd=0.0123, model="opus-4.5",
             provider="anthropic")
    answer = get(runtime, team["admin"], period="today", group_by="program")
    assert answer["scope"] == "tenant" and answer["period"] == "today"
    by = rows(answer)
    assert (by["lead"]["created"], by["lead"]["attempts"], by["lead"]["completed"]) == (1, 0, 0)
    assert (by["b1"]["created"], by["b1"]["attempts"], by["b1"]["completed"]) == (0, 1, 1)
    assert (by["b1"]["tokensIn"], by["b1"]["tokensOut"], by["b1"]["costUsd"]) == (1200, 300, 0.0123)
    assert by["b1"]["duration"] == {"count": 1, "meanSeconds": 42.0, "p50Seconds": 60.0, "p90Seconds": 60.0,
                                    "histogram": {**dict.fromkeys(rules.HISTOGRAM, 0), "le60": 1}}
    totals = answer["totals"]
    assert (totals["created"], totals["attempts"], totals["completed"], totals["costUsd"]) == (1, 1, 1, 0.0123)
    models = rows(get(runtime, team["admin"], group_by="model"))
    assert models["opus-4.5"]["completed"] == 1 and models["unknown"]["created"] == 1, \
        "the model is known once the task finishes; what came before counts under unknown"
    assert rows(get(runtime, team["admin"], group_by="project"))["site"]["created"] == 1
    assert rows(get(runtime, team["admin"], group_by="type"))["task"]["completed"] == 1


def test_an_agent_sees_its_own_work_and_an_admin_the_tenants(runtime: Runtime, team: dict[str, Caller]) -> None:
    for worker in ("b1", "b1", "b2"):
        task_id = create(runtime, team["lead"], worker)
        claim(runtime, team[worker], task_id)
        complete(runtime, team[worker], task_id, cost_usd=1.5)
    mine = get(runtime, team["b1"], group_by="program")
    assert (mine["scope"], mine["programId"]) == ("program", "b1")
    assert list(rows(mine)) == ["b1"] and mine["totals"]["completed"] == 2 and mine["totals"]["costUsd"] == 3.0
    assert get(runtime, team["lead"])["totals"]["created"] == 3
    everyone = get(runtime, team["admin"])
    assert everyone["totals"]["costUsd"] == 4.5 and set(rows(everyone)) == {"lead", "b1", "b2"}


def test_periods_and_days_follow_utc_boundaries(runtime: Runtime, clock: ManualClock,
                                                 team: dict[str, Caller]) -> None:
    at(clock, "2026-01-31T23:59:59.999")
    create(runtime, team["lead"], "b1")
    at(clock, "2026-02-01T00:00:00")
    create(runtime, team["lead"], "b1")
    create(runtime, team["lead"], "b1")
    at(clock, "2026-02-03T12:00:00")
    admin = team["admin"]
    assert get(runtime, admin, period="month")["totals"]["created"] == 2, "January's last millisecond is not February"
    assert (get(runtime, admin, period="month")["from"], get(runtime, admin, period="7d")["from"]) == (
        "2026-02-01", "2026-01-28")
    assert get(runtime, admin, period="7d")["totals"]["created"] == 3
    assert get(runtime, admin, period="today")["totals"]["created"] == 0
    days = get(runtime, admin, from_date="2026-01-31", to_date="2026-02-02", group_by="day")
    assert [(r["key"], r["created"]) for r in days["rows"]] == [("2026-01-31", 1), ("2026-02-01", 2),
                                                               ("2026-02-02", 0)]
    assert (days["period"], days["from"], days["to"]) == ("range", "2026-01-31", "2026-02-02")
    assert len(get(runtime, admin, group_by="day")["rows"]) == 30, "the default period is 30d"


@pytest.mark.parametrize(("args", "field"), [
    ({"period": "7d", "from_date": "2026-01-01"}, "period"),
    ({"to_date": "2026-01-01"}, "from_date"),
    ({"from_date": "2026-02-30"}, "from_date"),
    ({"from_date": "2026-01-02", "to_date": "2026-01-01"}, "to_date"),
    ({"from_date": "2024-01-01", "to_date": "2025-01-01"}, "to_date"),
    ({"period": "year"}, "period"),
    ({"group_by": "colour"}, "group_by"),
    ({"from_date": "1 Jan"}, "from_date"),
])
def test_bad_periods_name_the_field(runtime: Runtime, team: dict[str, Caller], args: dict[str, Any],
                                    field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        get(runtime, team["admin"], **args)
    assert refused.value.field == field


def test_the_quota_counts_created_tasks_but_questions_and_retries(
        runtime: Runtime, clock: ManualClock, team: dict[str, Caller], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plans, "CACHE_SECONDS", 0.0)  # the plan changes below, within the cache's 5 s
    at(clock, "2026-01-31T12:00:00")
    create(runtime, team["lead"], "b1")  # last month: not this month's quota
    at(clock, "2026-02-02T12:00:00")
    failed = create(runtime, team["lead"], "b1")
    claim(runtime, team["b1"], failed)
    complete(runtime, team["b1"], failed, "FAILED", error_class="PERMANENT")
    owner_tasks.retry(runtime, "default", failed)  # an owner's retry: a new task, not a new one for the quota
    create(runtime, team["lead"], "human", type="question")
    answer = get(runtime, team["b2"])  # any key sees the tenant's quota
    assert answer["plan"]["name"] == "self-hosted"
    # open: January's task, the retry and the question
    quota = {"month": "2026-02", "resetsAt": "2026-03-01T00:00:00Z", "openTasks": 3}
    assert answer["quota"] == {**quota, "used": 1, "limit": None, "remaining": None, "openLimit": 100_000}
    runtime.default_plan = "free"  # the cloud's default (a stored plan is services.plans' to test)
    assert get(runtime, team["admin"], period="today")["quota"] == {**quota, "used": 1, "limit": 500,
                                                                     "remaining": 499, "openLimit": 500}
    assert get(runtime, team["admin"], period="month")["totals"]["created"] == 3


def test_shards_spread_the_writes_and_add_up_the_same(runtime: Runtime, team: dict[str, Caller]) -> None:
    runtime.usage_shards = 4
    made = []
    for _ in range(12):
        task_id = create(runtime, team["lead"], "b1")
        claim(runtime, team["b1"], task_id)
        complete(runtime, team["b1"], task_id, tokens_in=10, cost_usd=0.001)
        made.append(task_id)
    docs = runtime.store.query(Query(tenant_path("default", "usage")).order("day"))
    shards = {(d.data["program"], d.data["shard"]) for d in docs}
    expected = {zlib.crc32(task_id.encode()) % 4 for task_id in made}  # ids are random: usually all four
    assert {s for p, s in shards if p == "lead"} == expected and len(expected) > 1, "each task's id picks its shard"
    answer = get(runtime, team["admin"])
    assert (answer["totals"]["created"], answer["totals"]["completed"], answer["totals"]["tokensIn"],
            answer["totals"]["costUsd"]) == (12, 12, 120, 0.012)


def test_the_sweeper_folds_past_days_once(runtime: Runtime, clock: ManualClock, team: dict[str, Caller]) -> None:
    runtime.usage_shards = 3
    at(clock, "2026-02-01T10:00:00")
    for _ in range(16):  # a task's shard is a hash of its random id: 6 all fell in one shard 1 time in 243
        task_id = create(runtime, team["lead"], "b1")
        claim(runtime, team["b1"], task_id)
        complete(runtime, team["b1"], task_id, tokens_out=5)
    at(clock, "2026-02-02T10:00:00")
    create(runtime, team["lead"], "b1")
    before = get(runtime, team["admin"], period="7d", group_by="day")
    assert usage.compact(runtime, "default") == 0, "yesterday may still be written: not folded yet"
    at(clock, "2026-02-03T10:00:00")
    shards = [d.data for d in runtime.store.query(Query(tenant_path("default", "usage")).order("day"))
              if d.data["day"] == "2026-02-01"]
    assert len(shards) > 2 and all(not d["compacted"] for d in shards)
    assert sweeper.sweep(runtime)["usageFolded"] == len(shards)
    docs = [d.data for d in runtime.store.query(Query(tenant_path("default", "usage")).order("day"))]
    first = [(d["program"], d["compacted"]) for d in docs if d["day"] == "2026-02-01"]
    assert sorted(first) == [("b1", True), ("lead", True)]
    after = get(runtime, team["admin"], period="7d", group_by="day")
    assert after["rows"][:-1] == before["rows"][1:] and after["totals"] == before["totals"]
    assert usage.compact(runtime, "default") == 0, "nothing left to fold"


def test_odd_names_are_safe_as_counter_fields() -> None:
    for key in ("claude-opus-4.5", "a_b", "a__b", "`x`", "über/模型", "", "__name__"):
        field = rules.field_name("model", key, "tokensIn")
        assert rules.parse_field(field) == ("model", key or rules.UNKNOWN, "tokensIn")
        assert field.replace("_", "").isalnum() and "." not in field


# --- the recount ---------------------------------------------------------------------------------

def mixed_workload(rt: Runtime, clock: ManualClock, team: dict[str, Caller]) -> None:
    """Every kind of transition, over two days: done, failed, retried, dead, expired, cancelled,
    answered, sprint stories taken and finished, a sprint cancelled."""
    lead, b1, b2 = team["lead"], team["b1"], team["b2"]
    at(clock, "2026-03-01T22:00:00")
    for n in range(6):
        task_id = create(rt, lead, "builders", projectId=f"p{n % 2}")
        claim(rt, b1 if n % 2 else b2, task_id)
        clock.advance(7 * n)
        complete(rt, b1 if n % 2 else b2, task_id, tokens_in=100 * n, tokens_out=n, cost_usd=0.01 * n,
                 model=f"m{n % 3}", provider="anthropic" if n % 2 else "openai")
    hard = create(rt, lead, "b1")
    claim(rt, b1, hard)
    complete(rt, b1, hard, "FAILED", error_class="PERMANENT", tokens_in=9, cost_usd=0.5)
    flaky = create(rt, lead, "builders", max_attempts=2)
    claim(rt, b2, flaky)
    complete(rt, b2, flaky, "FAILED", error_class="TRANSIENT", tokens_in=50)  # retried
    at(clock, "2026-03-02T01:00:00")  # past midnight, past the back-off
    claim(rt, b1, flaky)
    complete(rt, b1, flaky, "FAILED", error_class="TRANSIENT", tokens_in=70, model="m9")  # dead-lettered
    lost = create(rt, lead, "b1", max_attempts=1)
    claim(rt, b1, lost)
    create(rt, lead, "nobody", ttl=60)
    cancelled = create(rt, lead, "b2")
    owner_tasks.cancel(rt, "default", cancelled, owner_tasks.CancelTask(reason="no"))
    owner_tasks.retry(rt, "default", hard)
    question = create(rt, lead, "human", type="question")
    replies.reply(rt, "default", replies.HumanReply(replyTo=question, message="yes"))
    sprint = str(sprints.create_sprint(rt, lead, parse(CreateSprint, {"projectName": "P", "stories": [
        {"id": "s1", "title": "one", "wave": 1}, {"id": "s2", "title": "two", "wave": 1},
        {"id": "s3", "title": "three", "wave": 2}, {"id": "s4", "title": "four", "wave": 1},
        {"id": "s5", "title": "five", "wave": 1}]}))["sprintId"])
    queued = {t["storyId"]: t["taskId"] for t in tasks.get_tasks(rt, b1, parse(GetTasks, {"type": "sprint-story"}))
              ["tasks"]}
    sprints.update_sprint_story(rt, b1, parse(UpdateSprintStory, {"sprintId": sprint, "storyId": "s1",
                                                                  "status": "active"}))
    clock.advance(90)
    complete(rt, b1, queued["s1"], tokens_in=5, cost_usd=0.2, model="m1")
    claim(rt, b2, queued["s2"])
    sprints.update_sprint_story(rt, lead, parse(UpdateSprintStory, {"sprintId": sprint, "storyId": "s2",
                                                                    "status": "complete"}))
    sprints.update_sprint_story(rt, lead, parse(UpdateSprintStory, {"sprintId": sprint, "storyId": "s5",
                                                                    "status": "skipped"}))
    sprints.complete_sprint(rt, lead, parse(CompleteSprint, {"sprintId": sprint, "cancel": True}))
    clock.advance(3600)
    sweeper.sweep(rt)  # the lapsed lease dead-letters `lost`; the ttl closes the queued one


@pytest.mark.real_cursors
def test_the_counters_equal_a_recount_of_the_tasks(runtime: Runtime, clock: ManualClock,
                                                   team: dict[str, Caller]) -> None:
    runtime.usage_shards = 3
    mixed_workload(runtime, clock, team)
    expected = recount(runtime.store, "default")
    answer = get(runtime, team["admin"], from_date="2026-03-01", group_by="program")
    assert mismatches(rows(answer), expected) == []
    made = [d.data for d in runtime.store.query(Query(tenant_path("default", "tasks")).order("createdAt"))]
    status = Counter(task["status"] for task in made)
    totals = answer["totals"]
    assert (totals["completed"], totals["failed"], totals["dead"]) == (
        status["completed"], status["failed"], status["dead"])
    assert totals["cancelled"] == status["cancelled"] + status["skipped"] + status["expired"]
    assert (totals["dead"], status["expired"], status["skipped"], status["cancelled"]) == (2, 1, 1, 2)
    assert answer["quota"]["used"] == sum(1 for task in made if quota.counts_monthly(task))
    by_day = get(runtime, team["admin"], from_date="2026-03-01", to_date="2026-03-02", group_by="day")
    assert sum(r["created"] for r in by_day["rows"]) == totals["created"] and by_day["rows"][0]["created"] == 8
    for dimension in ("model", "provider", "project", "type"):
        grouped = get(runtime, team["admin"], from_date="2026-03-01", group_by=dimension)["rows"]
        assert sum(r["costUsd"] for r in grouped) == pytest.approx(totals["costUsd"]), dimension
        assert sum(r["created"] for r in grouped) == totals["created"], dimension


@pytest.mark.real_cursors
def test_the_benchmarks_bulk_preload_is_counted(runtime: Runtime, team: dict[str, Caller]) -> None:
    from cachebash.bench.preload import preload_store

    preload_store(runtime, "default", "b1", 40)
    answer = get(runtime, team["admin"])
    assert answer["totals"]["created"] == 40
    assert mismatches(rows(answer), recount(runtime.store, "default")) == []
