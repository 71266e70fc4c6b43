"""Usage counted again from the tasks themselves, with no counter involved: what the usage
counters must equal after any workload."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from cachebash.domain import usage as rules
from cachebash.ports.store import Query, Store
from cachebash.services.runtime import tenant_path

FIGURES = ("created", "attempts", "completed", "failed", "dead", "cancelled", "tokensIn", "tokensOut")


def recount(store: Store, tenant: str) -> dict[str, Counter[str]]:
    """Per program: tasks it created, claims it made (the history's claims, which the task's
    claimToken confirms), and what it finished, with the figures each task finished with."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    after: tuple[Any, ...] | None = None
    base = Query(tenant_path(tenant, "tasks")).order("createdAt")
    while page := store.query(base.after(after).take(1000)):
        for doc in page:
            _recount_one(doc.data, found)
        if page[-1].cursor(base) == after:
            raise AssertionError("the store repeated a page: it ignored the start-after cursor")
        after = page[-1].cursor(base)
    return found


def _recount_one(task: dict[str, Any], found: dict[str, Counter[str]]) -> None:
    found[task["source"]]["created"] += 1
    claimers = [h["by"] for h in task["history"] if h["event"] == "claim" and h["by"] != "human"]
    assert len(claimers) == task["claimToken"], f"task {task['taskId']}: its history and claimToken disagree"
    for claimer in claimers:
        found[claimer]["attempts"] += 1
    if task["phase"] in ("done", "dead"):
        for metric, value in rules.finish_metrics(task).items():
            found[rules.program_of(task)][metric] += value


def mismatches(rows: dict[str, dict[str, Any]], expected: dict[str, Counter[str]]) -> list[str]:
    """Every figure where get_usage's rows by program differ from the recount."""
    wrong = []
    for program in sorted(set(rows) | set(expected)):
        row, want = rows.get(program), expected.get(program, Counter())
        if row is None:
            wrong.append(f"{program}: no row, the tasks say {dict(want)}")
            continue
        for metric in FIGURES:
            if row[metric] != want[metric]:
                wrong.append(f"{program} {metric}: counted {row[metric]}, the tasks say {want[metric]}")
        if row["costUsd"] != rules.dollars(want["costMicros"]):
            wrong.append(f"{program} costUsd: counted {row['costUsd']}, the tasks say {want['costMicros']} micro-USD")
        if row["duration"]["count"] != want["durationCount"]:
            wrong.append(f"{program} durations: counted {row['duration']['count']}, the tasks say "
                         f"{want['durationCount']}")
    return wrong
