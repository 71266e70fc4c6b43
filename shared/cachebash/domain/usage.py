"""Usage counters: what each task transition adds, and how counters are named and read back.

Counters are kept per UTC day and program (the document, see services.usage), and inside it
per dimension: `all` (the program's total), `model`, `provider`, `project`, `type`. Every
count lands in every dimension (a missing value is `unknown`), so the rows of any grouping
add up to the total. A counter is one top-level field, `{dimension}__{key}__{metric}`, with
the key escaped to letters, digits and `_xx` hex bytes (`escape`): a plain field name on
every store, whatever a program or model is called.

What counts, and whose it is (the rule `counts` applies to a task's before and after):

- created: a new task, the creator's (`source`). What the plan's quota has used is not a usage
  figure: services.quota keeps the one counter that both admits tasks and is shown.
- attempts: every claim (the task's `claimToken` grows by one per claim), the claimer's.
- finishing (done or dead, once, since a finished task never changes again): completed,
  failed, dead, or cancelled (cancelled, skipped, expired); the tokens and cost the task
  finished with; claim-to-finish time for completed and failed tasks, as a sum, a count
  and a coarse histogram. The finisher's: `completedBy`, else the holder, else the last
  claimer in the history (a dead letter), else `unknown`.

A transient failure that is retried leaves its report on the task until the next report
replaces it, so it is counted (like on the task) only as the figures the task finishes with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from cachebash.domain.inputs import Input

UNKNOWN = "unknown"
ALL = "all"
DIMENSIONS = ("all", "model", "provider", "project", "type")
#: Upper bounds (seconds) of the claim-to-finish histogram's buckets; the last is open.
BUCKETS = (1, 10, 60, 300, 1800, 3600, 14400, 86400)
HISTOGRAM = (*(f"le{b}" for b in BUCKETS), "over")
COUNTS = ("created", "attempts", "completed", "failed", "dead", "cancelled")
METRICS = (*COUNTS, "tokensIn", "tokensOut", "costMicros", "durationMs", "durationCount", *HISTOGRAM)
_SEP = "__"
_KEY_MAX = 120
_OUTCOME = {"completed": "completed", "failed": "failed", "dead": "dead", "cancelled": "cancelled",
            "skipped": "cancelled", "expired": "cancelled"}
_TIMED = ("completed", "failed")
_FINISHED_PHASES = ("done", "dead")


@lru_cache(maxsize=4096)
def escape(key: str) -> str:
    """Letters and digits as they are, every other byte as `_xx`: never `__`, never empty.
    Cached: every counted call names ~15 counter fields from the same few models, providers
    and projects, and escaping them was a tenth of an embedded `complete_task`."""
    raw = key[:_KEY_MAX] or UNKNOWN
    return "".join(c if c.isascii() and c.isalnum() else "".join(f"_{b:02x}" for b in c.encode()) for c in raw)


def unescape(escaped: str) -> str:
    return re.sub(rb"_([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), escaped.encode()).decode(
        errors="replace")


def field_name(dimension: str, key: str, metric: str) -> str:
    return f"{dimension}{_SEP}{escape(key)}{_SEP}{metric}"


def parse_field(name: str) -> tuple[str, str, str] | None:
    """(dimension, key, metric) of a counter field; None for any other field of the document."""
    parts = name.split(_SEP)
    if len(parts) != 3 or parts[0] not in DIMENSIONS or parts[2] not in METRICS:
        return None
    return parts[0], unescape(parts[1]), parts[2]


@dataclass(frozen=True)
class Count:
    """What one transition adds for one program: `metrics` in each of the task's `keys`."""

    program: str
    keys: Mapping[str, str]  # dimension -> key
    metrics: Mapping[str, int]

    def fields(self) -> dict[str, int]:
        return {field_name(dim, key, metric): value for dim, key in self.keys.items()
                for metric, value in self.metrics.items() if value}


def label(value: Any) -> str:
    return value if isinstance(value, str) and value else UNKNOWN


def program_of(task: Mapping[str, Any]) -> str:
    """Who did the work: the finisher, else the holder, else the last claimer in the history
    (a dead letter has lost its holder); `unknown` if nobody ever claimed it."""
    for name in ("completedBy", "claimedBy"):
        if isinstance(task.get(name), str) and task[name]:
            return str(task[name])
    claims = [h.get("by") for h in task.get("history") or [] if isinstance(h, dict) and h.get("event") == "claim"]
    return label(claims[-1] if claims else None)


def keys_of(task: Mapping[str, Any]) -> dict[str, str]:
    return {"all": ALL, "model": label(task.get("model")), "provider": label(task.get("provider")),
            "project": label(task.get("projectId")), "type": label(task.get("type"))}


def counts(before: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> list[Count]:
    """What a task's change adds: `before` is the task as read (None: it is being created),
    `changes` what the transaction writes to it."""
    after = {**(before or {}), **changes}
    keys = keys_of(after)
    found: list[Count] = []
    if before is None:
        found.append(Count(label(after.get("source")), keys, {"created": 1}))
    claims = whole(after.get("claimToken")) - whole((before or {}).get("claimToken"))
    if claims > 0:
        found.append(Count(label(after.get("claimedBy")), keys, {"attempts": claims}))
    if finished(after) and not (before is not None and finished(before)):
        found.append(Count(program_of(after), keys, finish_metrics(after)))
    return found


def finished(task: Mapping[str, Any]) -> bool:
    return task.get("phase") in _FINISHED_PHASES


def finish_metrics(task: Mapping[str, Any]) -> dict[str, int]:
    metrics = {_OUTCOME.get(str(task.get("status")), "cancelled"): 1, "tokensIn": whole(task.get("tokensIn")),
               "tokensOut": whole(task.get("tokensOut")), "costMicros": micros(task.get("costUsd"))}
    took = duration_ms(task)
    if took is not None:
        metrics.update(durationMs=took, durationCount=1, **{bucket(took / 1000): 1})
    return metrics


def duration_ms(task: Mapping[str, Any]) -> int | None:
    """Claim to finish, for a task finished with an outcome by whoever held it."""
    start, end = task.get("claimedAt"), task.get("completedAt")
    if task.get("status") not in _TIMED or not isinstance(start, str) or not isinstance(end, str):
        return None
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return max(0, round(seconds * 1000))


def bucket(seconds: float) -> str:
    return next((f"le{b}" for b in BUCKETS if seconds <= b), "over")


def whole(value: Any) -> int:
    """Agents report usage; a missing or malformed figure counts as nothing rather than failing."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def micros(value: Any) -> int:
    """Cost in millionths of a dollar: whole numbers add up exactly, in any order, on any store."""
    return round(value * 1_000_000) if isinstance(value, int | float) and not isinstance(value, bool) \
        and value > 0 else 0


# --- reading counters back ---------------------------------------------------------------------

@dataclass
class Tally:
    """Summed counters of one row (a program, a model, a day...)."""

    values: dict[str, int] = field(default_factory=dict)

    def add(self, metric: str, value: int) -> None:
        self.values[metric] = self.values.get(metric, 0) + value

    def merge(self, other: Tally) -> None:
        for metric, value in other.values.items():
            self.add(metric, value)

    def __getitem__(self, metric: str) -> int:
        return self.values.get(metric, 0)

    def finished(self) -> int:
        return sum(self[m] for m in ("completed", "failed", "dead", "cancelled"))

    def figures(self) -> dict[str, Any]:
        """The row as get_usage shows it."""
        out: dict[str, Any] = {m: self[m] for m in COUNTS}
        out.update(tokensIn=self["tokensIn"], tokensOut=self["tokensOut"], costUsd=dollars(self["costMicros"]))
        count = self["durationCount"]
        mean = round(self["durationMs"] / count / 1000, 3) if count else None
        out["duration"] = {"count": count, "meanSeconds": mean,
                           "p50Seconds": self.percentile(0.5), "p90Seconds": self.percentile(0.9),
                           "histogram": {name: self[name] for name in HISTOGRAM}}
        return out

    def percentile(self, share: float) -> float | None:
        """The upper bound of the histogram bucket holding that share of durations (an upper
        estimate; None above the last bound or with no durations)."""
        count = self["durationCount"]
        if not count:
            return None
        seen = 0
        for bound, name in zip((*BUCKETS, None), HISTOGRAM, strict=True):
            seen += self[name]
            if seen >= share * count:
                return None if bound is None else float(bound)
        return None


def dollars(micros_: int) -> float:
    return round(micros_ / 1_000_000, 6)


def fold(docs: Iterable[Mapping[str, Any]], dimension: str) -> dict[str, Tally]:
    """The counters of `dimension` in `docs`, summed per key."""
    rows: dict[str, Tally] = {}
    for doc in docs:
        for name, value in doc.items():
            parsed = parse_field(name)
            if parsed is not None and parsed[0] == dimension and isinstance(value, int | float):
                rows.setdefault(parsed[1], Tally()).add(parsed[2], int(value))
    return rows


# --- get_usage's input -------------------------------------------------------------------------

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class Period(StrEnum):
    TODAY = "today"
    WEEK = "7d"
    THIRTY_DAYS = "30d"
    MONTH = "month"


class GroupBy(StrEnum):
    PROGRAM = "program"
    MODEL = "model"
    PROVIDER = "provider"
    PROJECT = "project"
    TYPE = "type"
    DAY = "day"


class GetUsage(Input):
    period: Period | None = Field(
        None, description="today, 7d, 30d (the last N UTC days, today included) or month (this UTC month to "
                          "date). Default 30d; leave it out when giving from_date/to_date.")
    from_date: Annotated[str, StringConstraints(pattern=DAY_PATTERN)] | None = Field(
        None, description="First UTC day, YYYY-MM-DD (with to_date; at most 366 days).")
    to_date: Annotated[str, StringConstraints(pattern=DAY_PATTERN)] | None = Field(
        None, description="Last UTC day, YYYY-MM-DD, included (default: today).")
    group_by: GroupBy = Field(GroupBy.PROGRAM, description="Rows per program, model, provider, project, task type "
                                                           "or day.")
