"""Usage: tokens, cost and outcomes of finished tasks, by day, program, model and provider.

An interim implementation: `summary` scans the tasks that finished in the window and adds
them up on every call. Issue #13 will keep these totals as aggregates, updated as work
finishes, so reading them costs a few documents however busy the tenant is. The
signature of `summary` and the shape it returns are the contract the web console's Usage
page (and a future `get_usage` tool) read, so the internals can be swapped without either
noticing. Until then the scan is bounded (`MAX_TASKS`) and says so (`truncated`).

The scan reads newest first, so when the cap is hit it is the oldest days that are
incomplete (`oldestRead` says from where), not today.

Two queries, one per finished phase (done, dead), each a range on `completedAt` ordered
newest first, merged here. Every terminal transition (complete, cancel, skip, expire, dead
letter, a sprint closing its story's task) writes `completedAt`, and a finished task is never
reopened (a retry is a new task), so this is exactly "finished in the window". One `in` over
both phases would do on Firestore, but the SQLite adapter merges `in` queries in ascending
order only, and newest first is what keeps a truncated answer useful.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cachebash.domain.errors import InvalidInput
from cachebash.domain.task_states import Phase, TaskStatus
from cachebash.ports.clock import to_iso
from cachebash.ports.store import Doc, Query
from cachebash.services.runtime import Runtime, tenant_path

MAX_DAYS = 366
MAX_TASKS = 20_000  # a hard cap on documents read per call; see the module docstring
PAGE_SIZE = 500
UNKNOWN = "unknown"
_FINISHED_PHASES = (Phase.DONE.value, Phase.DEAD.value)
_FAILED = (TaskStatus.FAILED.value, TaskStatus.DEAD.value)


@dataclass
class Tally:
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    completed: int = 0
    failed: int = 0
    tasks: int = 0

    def add(self, task: dict[str, Any]) -> None:
        self.tokens_in += _whole(task.get("tokensIn"))
        self.tokens_out += _whole(task.get("tokensOut"))
        self.cost_usd += _amount(task.get("costUsd"))
        status = task.get("status")
        self.completed += int(status == TaskStatus.COMPLETED.value)
        self.failed += int(status in _FAILED)
        self.tasks += 1

    def outcomes(self) -> dict[str, Any]:
        return {"tokensIn": self.tokens_in, "tokensOut": self.tokens_out, "costUsd": round(self.cost_usd, 6),
                "completed": self.completed, "failed": self.failed}

    def group(self, key: str) -> dict[str, Any]:
        return {"key": key, "tokensIn": self.tokens_in, "tokensOut": self.tokens_out,
                "costUsd": round(self.cost_usd, 6), "tasks": self.tasks}


def _whole(value: Any) -> int:
    """Agents report usage; a missing or malformed figure counts as nothing rather than failing the page."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def _amount(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0.0


def summary(rt: Runtime, tenant_id: str, *, days: int = 30) -> dict[str, Any]:
    """Usage for the last `days` UTC days (today included) and for the current UTC month to date."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days: must be a whole number from 1 to {MAX_DAYS}, not {days!r}", field="days")
    today = rt.clock.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    month_start = today.replace(day=1)
    scan = _Scan(first.isoformat(), month_start.isoformat())
    tasks, truncated = _finished_since(rt, tenant_id, min(first, month_start), today + timedelta(days=1))
    for task in tasks:
        scan.add(task)
    result = {"success": True, "from": first.isoformat(), "to": today.isoformat(),
              "days": scan.day_rows(first, today), **scan.groups(),
              "month": scan.month.outcomes(), "totals": scan.totals.outcomes(), "truncated": truncated}
    if truncated:
        result["oldestRead"] = scan.oldest
    return result


class _Scan:
    """The running sums of one `summary` call."""

    def __init__(self, window_start: str, month_start: str) -> None:
        self.window_start, self.month_start = window_start, month_start
        self.by_day: dict[str, Tally] = {}
        self.by: dict[str, dict[str, Tally]] = {"byProgram": {}, "byModel": {}, "byProvider": {}}
        self.month, self.totals = Tally(), Tally()
        self.oldest: str | None = None

    def add(self, task: dict[str, Any]) -> None:
        finished = str(task["completedAt"])
        self.oldest = finished if self.oldest is None else min(self.oldest, finished)
        day = finished[:10]
        if day >= self.month_start:
            self.month.add(task)
        if day < self.window_start:
            return
        self.totals.add(task)
        self.by_day.setdefault(day, Tally()).add(task)
        keys = {"byProgram": program_of(task), "byModel": _label(task.get("model")),
                "byProvider": _label(task.get("provider"))}
        for name, key in keys.items():
            self.by[name].setdefault(key, Tally()).add(task)

    def day_rows(self, first: date, last: date) -> list[dict[str, Any]]:
        rows = []
        for offset in range((last - first).days + 1):
            day = (first + timedelta(days=offset)).isoformat()
            rows.append({"day": day, **self.by_day.get(day, Tally()).outcomes()})
        return rows

    def groups(self) -> dict[str, list[dict[str, Any]]]:
        def ranked(tallies: dict[str, Tally]) -> list[dict[str, Any]]:
            order = sorted(tallies.items(), key=lambda kv: (-round(kv[1].cost_usd, 6), -kv[1].tasks, kv[0]))
            return [tally.group(key) for key, tally in order]

        return {name: ranked(tallies) for name, tallies in self.by.items()}


def _label(value: Any) -> str:
    return value if isinstance(value, str) and value else UNKNOWN


def program_of(task: dict[str, Any]) -> str:
    """Who did the work: the finisher, else the holder. A dead-lettered task has neither (losing
    the attempt clears `claimedBy` and no one completed it), so its last claimer is taken from
    the history; a task nobody ever claimed (expired in the queue) is `unknown`."""
    for name in ("completedBy", "claimedBy"):
        if isinstance(task.get(name), str) and task[name]:
            return str(task[name])
    claims = [h.get("by") for h in task.get("history") or [] if isinstance(h, dict) and h.get("event") == "claim"]
    return _label(claims[-1] if claims else None)


def _finished_since(rt: Runtime, tenant_id: str, first: date, end: date) -> tuple[list[dict[str, Any]], bool]:
    """Tasks finished from `first` (inclusive) to `end` (exclusive), newest first; True if the cap cut it short."""
    streams = [_pages(rt, finished_query(tenant_id, phase, first, end)) for phase in _FINISHED_PHASES]
    found: list[dict[str, Any]] = []
    for read, doc in enumerate(heapq.merge(*streams, key=_recency, reverse=True)):
        if read == MAX_TASKS:
            return found, True
        found.append(doc.data)
    return found, False


def finished_query(tenant_id: str, phase: str, first: date, end: date) -> Query:
    """One phase's finished tasks in the range, newest first (index: phase, completedAt descending)."""
    return (Query(tenant_path(tenant_id, "tasks")).where("phase", "==", phase)
            .where("completedAt", ">=", _midnight(first)).where("completedAt", "<", _midnight(end))
            .order("completedAt", descending=True))


def _recency(doc: Doc) -> tuple[str, str]:
    """The store's own order: completedAt, ties by document id, both descending."""
    return str(doc.data.get("completedAt")), doc.id


def _midnight(day: date) -> str:
    return to_iso(datetime(day.year, day.month, day.day, tzinfo=UTC))


def _pages(rt: Runtime, base: Query) -> Iterator[Doc]:
    """What `base` matches, a page at a time from the last page's cursor, up to MAX_TASKS + 1
    documents: one past the cap, so the caller can tell "exactly the cap" from "more"."""
    after: tuple[Any, ...] | None = None
    left = MAX_TASKS + 1
    while left > 0:
        want = min(PAGE_SIZE, left)
        page = rt.store.query(base.after(after).take(want))
        yield from page
        left -= len(page)
        if len(page) < want:
            return
        after = page[-1].cursor(base)
