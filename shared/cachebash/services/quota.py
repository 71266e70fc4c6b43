"""The monthly task quota and the open-tasks limit, counted in the transaction that creates
(or finishes) the tasks they count, so no racing creator can pass them.

Two small counter documents per tenant:

- `tenants/{t}/quota/{YYYY-MM}` `{"tasks": n}`: tasks created in that UTC calendar month that
  count against the plan's `monthly_tasks`. A new month is a new document, so the quota resets
  at 00:00 UTC on the 1st with nothing to sweep.
- `tenants/{t}/quota/open` `{"open": n}` less `tenants/{t}/quota/closed` `{"closed": n}`: tasks
  created since this counter exists and not yet finished, against `max_open_tasks`. Each such
  task carries `countedOpen: true`; finishing it (every path that moves a task to a final status
  calls `closing`) counts it closed in the same transaction. (Until 2026-12-04 a finish took one
  off `open` itself; what it took off then stays taken off, so no migration is needed.) The
  closed count only grows and a create reads it only to subtract it, so a create reads it
  `growing` (`Transaction.get_all`): on Firestore a finish then never refuses or blocks a create.
  A maintained counter is exact on every store, where a count query is not
  transactional on Firestore and costs a read per 1,000 tasks; a task older than the counter
  was never counted, so it is never taken off either.

What counts against the monthly quota is one rule (`counts_monthly`): every new task but a
question to the human and a retry (the owner's retry of a finished task, a story's later run).
Every creating path calls `admit` (or `admit_some` for a sprint's unlocked stories), so no tool
name can go around it. Cost per task created: the plan and both counters in one batched read,
two writes; per task finished: one increment, no read. On Firestore a tenant's racing creates
collide on these documents and run again, as they must for an exact count; finishes do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachebash.domain import plans
from cachebash.domain.errors import Code, LimitExceeded
from cachebash.domain.plans import Plan
from cachebash.domain.programs import HUMAN
from cachebash.domain.task_states import Phase
from cachebash.domain.tasks import TaskType
from cachebash.ports.store import Transaction
from cachebash.services.plans import plan_path
from cachebash.services.runtime import Runtime, tenant_path

_OPEN_PHASES = (Phase.QUEUED.value, Phase.ACTIVE.value)


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def next_month_start(moment: datetime) -> datetime:
    at = moment.astimezone(UTC)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def month_path(tenant_id: str, month: str) -> str:
    return tenant_path(tenant_id, "quota", month)


def open_path(tenant_id: str) -> str:
    return tenant_path(tenant_id, "quota", "open")


def closed_path(tenant_id: str) -> str:
    return tenant_path(tenant_id, "quota", "closed")


def open_count(opened: Mapping[str, Any] | None, closed: Mapping[str, Any] | None) -> int:
    return max(int((opened or {}).get("open", 0)) - int((closed or {}).get("closed", 0)), 0)


def counts_monthly(task: Mapping[str, Any]) -> bool:
    """Questions to the human and retries are free; every other new task counts."""
    question = task.get("type") == TaskType.QUESTION.value and task.get("target") == HUMAN
    retry = bool(task.get("retryOf")) or int(task.get("storyRun") or 1) > 1
    return not (question or retry)


@dataclass
class Counters:
    """What one transaction read: the plan and both counters, as they stand in it."""

    tenant_id: str
    plan: Plan
    month: str
    resets_at: str
    used: int
    open: int

    def refusal(self, task: Mapping[str, Any], monthly: int = 0, opened: int = 0) -> LimitExceeded | None:
        """Why `task` cannot be admitted after `monthly`/`opened` others of this transaction, if it cannot."""
        limit = self.plan.monthly_tasks
        if counts_monthly(task) and limit is not None and self.used + monthly >= limit:
            return LimitExceeded(
                f"the '{self.plan.name}' plan allows {limit} tasks a month and {self.used} were created this month "
                f"(UTC); the quota resets at {self.resets_at}, or the owner raises the plan "
                "(`cachebash plan set`)", code=Code.QUOTA_EXCEEDED, plan=self.plan.name, limit=limit,
                used=self.used, resetsAt=self.resets_at)
        cap = self.plan.max_open_tasks
        if cap is not None and self.open + opened >= cap:
            return LimitExceeded(
                f"the '{self.plan.name}' plan allows {cap} open (queued or running) tasks and {self.open} are "
                "open; finish or cancel some first, or the owner raises the plan", field="max_open_tasks",
                plan=self.plan.name, limit="max_open_tasks", value=cap, used=self.open)
        return None


def read(tx: Transaction, rt: Runtime, tenant_id: str) -> Counters:
    """One batched read of the plan and both counters; call it after the transaction's other reads."""
    now = rt.clock.now()
    month = month_of(now)
    closed = closed_path(tenant_id)
    stored_plan, used, opened, finished = tx.get_all(
        [plan_path(tenant_id), month_path(tenant_id, month), open_path(tenant_id), closed], growing=[closed])
    return Counters(tenant_id, plans.resolve(stored_plan, rt.default_plan), month,
                    _iso(next_month_start(now)),
                    int((used or {}).get("tasks", 0)), open_count(opened, finished))


def admit_some(tx: Transaction, rt: Runtime, tenant_id: str,
               tasks: Sequence[dict[str, Any]]) -> tuple[int, LimitExceeded | None]:
    """Admit `tasks` in order while the plan allows; count and mark those admitted. Returns how
    many were (the first n: the caller writes only those) and why the next one was not. With no
    tasks it reads nothing, so a transaction that creates none never locks the counters."""
    if not tasks:
        return 0, None
    counters = read(tx, rt, tenant_id)
    monthly = 0
    refused: LimitExceeded | None = None
    for n, task in enumerate(tasks):
        if (refused := counters.refusal(task, monthly, n)) is not None:
            tasks = tasks[:n]
            break
        monthly += counts_monthly(task)
    for task in tasks:
        task["countedOpen"] = True
    if tasks:
        _write(tx, counters, monthly, len(tasks))
    return len(tasks), refused


def admit(tx: Transaction, rt: Runtime, tenant_id: str, tasks: Sequence[dict[str, Any]]) -> None:
    """All of `tasks` or none: raises QUOTA_EXCEEDED or LIMIT_EXCEEDED before anything is written."""
    _, refused = admit_some(tx, rt, tenant_id, tasks)
    if refused is not None:
        raise refused


def _write(tx: Transaction, counters: Counters, monthly: int, opened: int) -> None:
    # Increments of what was read (the read holds the counters for this transaction, so the sum
    # is exact), which also compose with `closing` when one transaction both admits and finishes.
    if monthly:
        tx.increment(month_path(counters.tenant_id, counters.month), {"tasks": monthly})
    tx.increment(open_path(counters.tenant_id), {"open": opened})


def closing(tx: Transaction, tenant_id: str, finished: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> None:
    """Take the tasks this transaction finishes off the open count: each a (task as read, task as
    it will be written) pair. It reads nothing, so it may come after the transaction's writes."""
    n = sum(1 for before, after in finished if before.get("countedOpen")
            and before.get("phase") in _OPEN_PHASES and after.get("phase") not in _OPEN_PHASES)
    if n:
        # An increment of a document of its own, not a read and a write: finishing tasks never
        # waits on (or locks) a counter, racing completions of one tenant do not queue behind each
        # other, and creates, which read this one as `growing`, are never refused for it. Only a
        # task admitted through the counter is counted, so the open count cannot go below zero.
        tx.increment(closed_path(tenant_id), {"closed": n})


def usage(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    """What is used of the plan now (`cachebash plan show`, the owner API). Plain reads, not a
    transaction: on Firestore a transaction's reads would lock the counters the creators need."""
    now = rt.clock.now()
    month = month_of(now)
    used = rt.store.get(month_path(tenant_id, month)) or {}
    opened, closed = rt.store.get(open_path(tenant_id)), rt.store.get(closed_path(tenant_id))
    return {"month": month, "tasksThisMonth": int(used.get("tasks", 0)), "openTasks": open_count(opened, closed),
            "resetsAt": _iso(next_month_start(now))}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
