"""The console's usage summary over a real store: tasks finished through the real services on different
days, counted as they finished and added up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cachebash.domain.errors import InvalidInput
from cachebash.domain.inputs import parse
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask
from cachebash.interface import charts
from cachebash.ports.clock import ManualClock
from cachebash.services import claims, tasks, usage
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller

ZERO = {"tokensIn": 0, "tokensOut": 0, "costUsd": 0.0, "completed": 0, "failed": 0}


def at(clock: ManualClock, iso: str) -> None:
    moment = datetime.fromisoformat(iso).replace(tzinfo=UTC)
    assert moment >= clock.now(), "the clock only moves forward"
    clock.advance((moment - clock.now()).total_seconds())


def finish(rt: Runtime, clock: ManualClock, creator: Caller, worker: Caller | None, when: str,
           status: str = "SUCCESS", **usage_fields: Any) -> str:
    """A task created and claimed a minute before `when`, finished at exactly `when`."""
    at(clock, when)
    clock.advance(-60)
    max_attempts = usage_fields.pop("max_attempts", None)
    args = {"title": "work", "target": worker.program_id if worker else "nobody", "max_attempts": max_attempts}
    task_id = str(tasks.create_task(rt, creator, parse(CreateTask, args))["taskId"])
    if worker is not None:
        claims.claim_task(rt, worker, ClaimTask(taskId=task_id))
    at(clock, when)
    finisher = worker or creator
    claims.complete_task(rt, finisher, parse(CompleteTask, {"taskId": task_id, "completed_status": status,
                                                            **usage_fields}))
    return task_id


@pytest.fixture
def history(runtime: Runtime, clock: ManualClock) -> ManualClock:
    """Finished work from 27 January to 3 February 2026, then the clock at noon on 3 February."""
    lead, b1, b2 = (make_caller(runtime, name) for name in ("lead", "b1", "b2"))
    finish(runtime, clock, lead, b1, "2026-01-27T23:59:59.999999", tokens_in=100, tokens_out=50, cost_usd=0.1,
           model="m-small", provider="anthropic")
    finish(runtime, clock, lead, b2, "2026-01-28T00:00:00", tokens_in=1000, tokens_out=200, cost_usd=0.25,
           model="m-large", provider="openai")
    finish(runtime, clock, lead, b1, "2026-01-28T23:59:59", "FAILED", tokens_in=10, tokens_out=0, cost_usd=0.01,
           error_class="PERMANENT")
    finish(runtime, clock, lead, b1, "2026-02-02T10:00:00", "FAILED", error_class="TRANSIENT", max_attempts=1,
           tokens_in=5, tokens_out=5, cost_usd=0.02, model="m-small", provider="anthropic")  # dead-lettered
    finish(runtime, clock, lead, None, "2026-02-02T10:00:00", "CANCELLED", cost_usd=0.005)
    finish(runtime, clock, lead, b2, "2026-02-03T09:00:00", tokens_in=2000, tokens_out=1000, cost_usd=0.5,
           model="m-large", provider="openai")
    # Neither an open task nor another tenant's finished work counts.
    tasks.create_task(runtime, lead, parse(CreateTask, {"title": "still open", "target": "b1"}))
    other_lead, other_worker = make_caller(runtime, "lead", tenant="other"), make_caller(runtime, "b1", tenant="other")
    finish(runtime, clock, other_lead, other_worker, "2026-02-03T10:00:00", cost_usd=99.0)
    at(clock, "2026-02-03T12:00:00")
    return clock


def test_a_week_by_day_with_empty_days_filled(runtime: Runtime, history: ManualClock) -> None:
    week = usage.summary(runtime, "default", days=7)
    assert (week["success"], week["from"], week["to"], week["truncated"]) == (True, "2026-01-28", "2026-02-03", False)
    assert [row["day"] for row in week["days"]] == [
        "2026-01-28", "2026-01-29", "2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02", "2026-02-03"]
    rows = {row.pop("day"): row for row in week["days"]}
    assert rows["2026-01-28"] == {"tokensIn": 1010, "tokensOut": 200, "costUsd": 0.26, "completed": 1, "failed": 1}
    assert all(rows[day] == ZERO for day in ("2026-01-29", "2026-01-30", "2026-01-31", "2026-02-01"))
    assert rows["2026-02-02"] == {"tokensIn": 5, "tokensOut": 5, "costUsd": 0.025, "completed": 0, "failed": 1}, \
        "the dead letter counts as failed; the cancelled task in neither, but its cost counts"
    assert rows["2026-02-03"] == {"tokensIn": 2000, "tokensOut": 1000, "costUsd": 0.5, "completed": 1, "failed": 0}
    assert week["totals"] == {"tokensIn": 3015, "tokensOut": 1205, "costUsd": 0.785, "completed": 2, "failed": 2}


def test_groups_by_program_model_and_provider(runtime: Runtime, history: ManualClock) -> None:
    week = usage.summary(runtime, "default", days=7)
    assert week["byProgram"] == [
        {"key": "b2", "tokensIn": 3000, "tokensOut": 1200, "costUsd": 0.75, "tasks": 2},
        {"key": "b1", "tokensIn": 15, "tokensOut": 5, "costUsd": 0.03, "tasks": 2},  # the dead letter: last claimer
        {"key": "lead", "tokensIn": 0, "tokensOut": 0, "costUsd": 0.005, "tasks": 1},
    ]
    assert [(g["key"], g["costUsd"], g["tasks"]) for g in week["byModel"]] == [
        ("m-large", 0.75, 2), ("m-small", 0.02, 1), ("unknown", 0.015, 2)]
    assert [(g["key"], g["costUsd"], g["tasks"]) for g in week["byProvider"]] == [
        ("openai", 0.75, 2), ("anthropic", 0.02, 1), ("unknown", 0.015, 2)]


def test_the_month_to_date_does_not_follow_the_window(runtime: Runtime, history: ManualClock) -> None:
    today = usage.summary(runtime, "default", days=1)
    assert [row["day"] for row in today["days"]] == ["2026-02-03"]
    assert today["totals"] == {"tokensIn": 2000, "tokensOut": 1000, "costUsd": 0.5, "completed": 1, "failed": 0}
    february = {"tokensIn": 2005, "tokensOut": 1005, "costUsd": 0.525, "completed": 1, "failed": 1}
    assert today["month"] == february, "the month reaches back past a one-day window"
    assert today["byProgram"] == [{"key": "b2", "tokensIn": 2000, "tokensOut": 1000, "costUsd": 0.5, "tasks": 1}]
    assert usage.summary(runtime, "default", days=7)["month"] == february


def test_the_default_window_is_thirty_days(runtime: Runtime, history: ManualClock) -> None:
    month = usage.summary(runtime, "default")
    assert (month["from"], month["to"], len(month["days"])) == ("2026-01-05", "2026-02-03", 30)
    assert month["days"][22] == {"day": "2026-01-27", "tokensIn": 100, "tokensOut": 50, "costUsd": 0.1,
                                 "completed": 1, "failed": 0}, "the microsecond before the 7-day window"
    assert month["totals"]["tokensIn"] == 3115 and month["totals"]["completed"] == 3


@pytest.mark.real_cursors
def test_counter_documents_are_read_a_page_at_a_time(
        runtime: Runtime, history: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = usage.summary(runtime, "default", days=7)
    monkeypatch.setattr(usage, "PAGE_SIZE", 2)  # cursors across pages, ties on day included
    assert usage.summary(runtime, "default", days=7) == whole
    assert whole["truncated"] is False and whole["totals"]["costUsd"] == 0.785


def test_a_tenant_with_no_work_gets_zero_rows(runtime: Runtime, clock: ManualClock) -> None:
    empty = usage.summary(runtime, "default", days=3)
    assert [row["day"] for row in empty["days"]] == ["2025-12-30", "2025-12-31", "2026-01-01"]
    assert all(row == {"day": row["day"], **ZERO} for row in empty["days"])
    assert empty["totals"] == ZERO and empty["month"] == ZERO
    assert (empty["byProgram"], empty["byModel"], empty["byProvider"]) == ([], [], [])


@pytest.mark.parametrize("days", [0, -1, 367, True, 7.5, "7"])
def test_days_is_validated(runtime: Runtime, days: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        usage.summary(runtime, "default", days=days)
    assert refused.value.field == "days" and "1 to 366" in refused.value.message


def test_a_whole_year_is_allowed(runtime: Runtime, history: ManualClock) -> None:
    year = usage.summary(runtime, "default", days=366)
    assert len(year["days"]) == 366 and year["days"][-1]["day"] == "2026-02-03"
    assert year["totals"]["costUsd"] == 0.885


def test_the_console_charts_draw_a_real_summary(runtime: Runtime, history: ManualClock) -> None:
    drawn = charts.usage_charts(usage.summary(runtime, "default", days=7))
    assert drawn["costByDay"].count('class="bar"') == 7
    assert "b2: $0.75" in drawn["costByProgram"] and "No data yet" not in drawn["tasksByDay"]
