"""get_usage (alias get_cost_summary): the counters of `services.usage` for a period, as totals
and rows, with the tenant's plan and how much of its monthly quota is used.

Who sees what comes from the key alone: an admin key the whole tenant, any other key its own
program's work (what it created, claimed and finished). The quota is the tenant's, so every
caller sees the same `quota`: tasks created this UTC month that the plan counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from cachebash.domain.errors import InvalidInput
from cachebash.domain.usage import GetUsage, GroupBy, Period, Tally, fold
from cachebash.services import plans, quota, usage
from cachebash.services.runtime import Caller, Runtime


def window(rt: Runtime, cmd: GetUsage) -> tuple[str, date, date]:
    """The period's name and its first and last UTC days."""
    last = usage.today(rt)
    if cmd.from_date is None and cmd.to_date is None:
        period = cmd.period or Period.THIRTY_DAYS
        first = {Period.TODAY: last, Period.WEEK: last - timedelta(days=6),
                 Period.THIRTY_DAYS: last - timedelta(days=29), Period.MONTH: last.replace(day=1)}[period]
        return period.value, first, last
    if cmd.period is not None:
        raise InvalidInput("period: give either a period or from_date/to_date, not both", field="period")
    if cmd.from_date is None:
        raise InvalidInput("from_date: required with to_date (YYYY-MM-DD)", field="from_date")
    first = _day(cmd.from_date, "from_date")
    end = _day(cmd.to_date, "to_date") if cmd.to_date else last
    if end < first:
        raise InvalidInput(f"to_date: {end} is before from_date {first}", field="to_date")
    if (end - first).days + 1 > usage.MAX_DAYS:
        raise InvalidInput(f"to_date: at most {usage.MAX_DAYS} days from from_date", field="to_date")
    return "range", first, end


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name}: '{text}' is not a calendar day (YYYY-MM-DD)", field=name) from None


def get_usage(rt: Runtime, caller: Caller, cmd: GetUsage) -> dict[str, Any]:
    period, first, last = window(rt, cmd)
    program = None if caller.admin else caller.program_id
    docs = usage.read(rt, caller.tenant_id, first, last, program)
    rows = _rows(docs, cmd.group_by, first, last)
    return {"success": True, "period": period, "from": first.isoformat(), "to": last.isoformat(),
            "groupBy": cmd.group_by.value, "scope": "tenant" if program is None else "program",
            "programId": program, "totals": usage.totals(docs).figures(), "rows": rows,
            **plan_and_quota(rt, caller.tenant_id)}


def _rows(docs: list[dict[str, Any]], group_by: GroupBy, first: date, last: date) -> list[dict[str, Any]]:
    if group_by is GroupBy.DAY:
        return [{"key": day, **tally.figures()} for day, tally in usage.by_day(docs, first, last)]
    tallies: Mapping[str, Tally] = usage.by_program(docs) if group_by is GroupBy.PROGRAM \
        else fold(docs, group_by.value)
    order = sorted(tallies.items(), key=lambda kv: (-kv[1]["costMicros"], -kv[1]["created"] - kv[1].finished(),
                                                    kv[0]))
    return [{"key": key, **tally.figures()} for key, tally in order]


def plan_and_quota(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    """The tenant's plan, and this month's quota as services.quota enforces it: the very counter
    that admits tasks, so what an agent reads as remaining is what the next create_task meets."""
    plan = plans.plan_of(rt, tenant_id)
    now = quota.usage(rt, tenant_id)
    used, limit = now["tasksThisMonth"], plan.monthly_tasks
    return {"plan": plan.to_dict(), "quota": {"month": now["month"], "used": used, "limit": limit,
                                              "remaining": None if limit is None else max(0, limit - used),
                                              "resetsAt": now["resetsAt"], "openTasks": now["openTasks"],
                                              "openLimit": plan.max_open_tasks}}
