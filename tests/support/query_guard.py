"""Every query the services issue during the suite, checked against the declared indexes.

Firestore refuses a query that needs a composite index nobody deployed, and only in
production (emulators serve anything). So the suite watches the services' queries: in
process through `Store.observers`, and in `cachebash serve` subprocesses through the
CACHEBASH_QUERY_LOG file they append to. Any query without its index fails the test that
issued it; the session summary says how many were checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachebash.ports.indexes import needs_composite, serving_index
from cachebash.ports.store import Filter, Order, Query


def missing_index(query: Query) -> str | None:
    """A description of `query` when no declared index serves it, else None."""
    if not needs_composite(query) or serving_index(query) is not None:
        return None
    return describe(query)


def describe(query: Query) -> str:
    group = query.collection.rpartition("/")[2]
    where = ", ".join(f"{f.field} {f.op}" for f in query.filters) or "-"
    order = ", ".join(f"{o.field}{' desc' if o.descending else ''}" for o in query.order_by) or "-"
    return f"{group}: where {where}; order by {order}"


def from_log_line(line: str) -> Query:
    """Rebuild a query from a CACHEBASH_QUERY_LOG line (values are not logged; shapes are)."""
    shape: dict[str, Any] = json.loads(line)
    filters = tuple(Filter(name, op, [0] if op == "in" else 0) for name, op in shape["filters"])
    orders = tuple(Order(name, bool(desc)) for name, desc in shape["order_by"])
    return Query(shape["collection"], filters, orders)


@dataclass
class QueryRecorder:
    log_path: Path
    seen: list[Query] = field(default_factory=list)
    _log_offset: int = 0

    def observe(self, query: Query) -> None:
        self.seen.append(query)

    def take(self) -> list[Query]:
        """Queries recorded since the last call, from this process and from servers' logs."""
        taken, self.seen = self.seen, []
        if self.log_path.exists():
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                lines = log.readlines()
            if lines and not lines[-1].endswith(b"\n"):
                lines.pop()  # a server is mid-write; read it next time
            self._log_offset += sum(len(line) for line in lines)
            taken += [from_log_line(line.decode()) for line in lines if line.strip()]
        return taken


@dataclass
class IndexReport:
    checked: int = 0
    shapes: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)  # description -> first test that issued it

    def add(self, queries: list[Query], test_id: str) -> list[str]:
        fresh: list[str] = []
        for query in queries:
            self.checked += 1
            self.shapes.add(describe(query))
            problem = missing_index(query)
            if problem is not None:
                fresh.append(problem)
                self.missing.setdefault(problem, test_id)
        return fresh
