"""Usage: counters kept as work happens, so reading a month costs a few documents, not a scan.

Every task transition that counts (created, claimed, finished; domain.usage says what each
adds) bumps counters in the same transaction as the task's own change: `count(tx, ...)` at
each transition site, so the figures never drift from the tasks and a re-run transaction
counts nothing twice (it starts again from nothing).

Where they live: `tenants/{t}/usage/{day}-{program}-{shard}`, one document per UTC day,
program and shard, written with the store's `increment` (Firestore `Increment` transforms:
no read, so counting never makes a transition contend). The shard is a hash of the task's
id, so the transitions of many tasks spread over `shards(rt)` documents (16 on Firestore, 1
on SQLite, which has no per-document write limit) and no document takes more than a
program's rate divided by that. Readers query the days they want and add up what exists.

Past days stop changing, so the sweeper folds the shards of each day before yesterday into
one document per day and program (`{day}-{program}`, `compacted`), deleting the shards in
the same transaction: exactly once, whatever runs twice.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, timedelta
from functools import partial
from typing import Any

from cachebash.domain import usage as rules
from cachebash.domain.errors import InvalidInput
from cachebash.domain.usage import ALL, Tally, dollars, escape, fold
from cachebash.ports.store import Query, Transaction
from cachebash.services.runtime import Runtime, tenant_path

COLLECTION = "usage"
MAX_DAYS = 366
PAGE_SIZE = 1000
REMOTE_SHARDS = 16
#: Days before yesterday are folded, at most this many (day, program) groups per sweep.
COMPACT_BATCH = 50


def shards(rt: Runtime) -> int:
    return rt.usage_shards or (REMOTE_SHARDS if rt.store.blocking_io else 1)


def doc_path(tenant_id: str, day: str, program: str, shard: int | None) -> str:
    suffix = "" if shard is None else f"-{shard}"
    return tenant_path(tenant_id, COLLECTION, f"{day}-{escape(program)}{suffix}")


# --- counting ------------------------------------------------------------------------------------

def count(tx: Transaction, rt: Runtime, tenant_id: str, before: Mapping[str, Any] | None,
          changes: Mapping[str, Any]) -> None:
    """Count a task's change (`before` None: its creation) with the change, in its transaction."""
    after = {**(before or {}), **changes}
    found = rules.counts(before, changes)
    if found:
        _write(tx, tenant_id, _day(rt, after), _shard(rt, str(after.get("taskId"))), found)


def count_copies(tx: Transaction, rt: Runtime, tenant_id: str, template: Mapping[str, Any], copies: int) -> None:
    """`copies` more tasks created like `template` (the benchmark's preload writes them in bulk)."""
    found = [rules.Count(c.program, c.keys, {m: v * copies for m, v in c.metrics.items()})
             for c in rules.counts(None, template)]
    _write(tx, tenant_id, _day(rt, template), _shard(rt, str(template.get("taskId"))), found)


def _write(tx: Transaction, tenant_id: str, day: str, shard: int, found: Iterable[rules.Count]) -> None:
    per_program: dict[str, dict[str, int]] = {}
    for item in found:
        fields = per_program.setdefault(item.program, {})
        for name, value in item.fields().items():
            fields[name] = fields.get(name, 0) + value
    for program, deltas in per_program.items():
        tx.increment(doc_path(tenant_id, day, program, shard), deltas,
                     {"day": day, "program": program, "shard": shard, "compacted": False})


def _day(rt: Runtime, task: Mapping[str, Any]) -> str:
    """The day of the transition: the task's `updatedAt`, which every change writes as its now."""
    moment = task.get("updatedAt")
    return moment[:10] if isinstance(moment, str) and len(moment) >= 10 else rt.clock.iso()[:10]


def _shard(rt: Runtime, task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % shards(rt)


# --- reading ---------------------------------------------------------------------------------------

def read(rt: Runtime, tenant_id: str, first: date, last: date, program: str | None = None) -> list[dict[str, Any]]:
    """Every counter document of the days from `first` to `last` (inclusive), of one program or all."""
    base = Query(tenant_path(tenant_id, COLLECTION))
    if program is not None:
        base = base.where("program", "==", program)
    base = base.where("day", ">=", first.isoformat()).where("day", "<=", last.isoformat()).order("day")
    found: list[dict[str, Any]] = []
    after: tuple[Any, ...] | None = None
    while True:
        page = rt.store.query(base.after(after).take(PAGE_SIZE))
        found += [doc.data for doc in page]
        if len(page) < PAGE_SIZE:
            return found
        after = page[-1].cursor(base)


def totals(docs: Iterable[Mapping[str, Any]]) -> Tally:
    return fold(docs, "all").get(ALL, Tally())


def by_program(docs: Iterable[Mapping[str, Any]]) -> dict[str, Tally]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for doc in docs:
        grouped.setdefault(str(doc.get("program")), []).append(doc)
    return {program: totals(group) for program, group in grouped.items()}


def by_day(docs: Iterable[Mapping[str, Any]], first: date, last: date) -> list[tuple[str, Tally]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for doc in docs:
        grouped.setdefault(str(doc.get("day")), []).append(doc)
    return [(day, totals(grouped.get(day, []))) for day in days_between(first, last)]


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def today(rt: Runtime) -> date:
    return rt.clock.now().astimezone(UTC).date()


# --- the console's summary -------------------------------------------------------------------------

def summary(rt: Runtime, tenant_id: str, *, days: int = 30) -> dict[str, Any]:
    """The console's Usage page: the last `days` UTC days (today included) by day, program,
    model and provider, and the current UTC month to date."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days: must be a whole number from 1 to {MAX_DAYS}, not {days!r}", field="days")
    last = today(rt)
    first = last - timedelta(days=days - 1)
    month_start = last.replace(day=1)
    docs = read(rt, tenant_id, min(first, month_start), last)
    window = [d for d in docs if str(d.get("day")) >= first.isoformat()]
    month = [d for d in docs if str(d.get("day")) >= month_start.isoformat()]
    return {"success": True, "from": first.isoformat(), "to": last.isoformat(),
            "days": [{"day": day, **_outcomes(t)} for day, t in by_day(window, first, last)],
            "byProgram": _ranked(by_program(window)), "byModel": _ranked(fold(window, "model")),
            "byProvider": _ranked(fold(window, "provider")), "month": _outcomes(totals(month)),
            "totals": _outcomes(totals(window)), "truncated": False}


def _outcomes(t: Tally) -> dict[str, Any]:
    return {"tokensIn": t["tokensIn"], "tokensOut": t["tokensOut"], "costUsd": dollars(t["costMicros"]),
            "completed": t["completed"], "failed": t["failed"] + t["dead"]}


def _ranked(rows: Mapping[str, Tally]) -> list[dict[str, Any]]:
    """Finished work per key, costliest first (groups with nothing finished are left out)."""
    kept = [(key, t) for key, t in rows.items() if t.finished()]
    kept.sort(key=lambda kv: (-kv[1]["costMicros"], -kv[1].finished(), kv[0]))
    return [{"key": key, "tokensIn": t["tokensIn"], "tokensOut": t["tokensOut"], "costUsd": dollars(t["costMicros"]),
             "tasks": t.finished()} for key, t in kept]


# --- folding past days -------------------------------------------------------------------------------

def compact(rt: Runtime, tenant_id: str) -> int:
    """Fold the shards of days before yesterday into one document per day and program; returns
    how many shard documents were folded."""
    cutoff = (today(rt) - timedelta(days=1)).isoformat()
    due = (Query(tenant_path(tenant_id, COLLECTION)).where("compacted", "==", False).where("day", "<", cutoff)
           .order("day").take(COMPACT_BATCH * 4))
    groups: dict[tuple[str, str], list[str]] = {}
    for doc in rt.store.query(due):
        groups.setdefault((str(doc.data["day"]), str(doc.data["program"])), []).append(doc.path)
    return sum(rt.store.run_transaction(partial(_fold, tenant_id=tenant_id, day=day, program=program, paths=paths))
               for (day, program), paths in list(groups.items())[:COMPACT_BATCH])


def _fold(tx: Transaction, *, tenant_id: str, day: str, program: str, paths: list[str]) -> int:
    target = doc_path(tenant_id, day, program, None)
    target_doc, *shard_docs = tx.get_all([target, *paths])
    merged: dict[str, Any] = dict(target_doc or {})
    live = [(p, d) for p, d in zip(paths, shard_docs, strict=True) if d is not None]
    for _, doc in live:
        for name, value in doc.items():
            if rules.parse_field(name) is not None:
                merged[name] = int(merged.get(name, 0)) + int(value)
    merged.update(day=day, program=program, shard=None, compacted=True)
    if live:
        tx.set(target, merged)
        for path, _ in live:
            tx.delete(path)
    return len(live)
