"""Prometheus metrics for `cachebash serve` (CACHEBASH_METRICS=1): tool calls, errors and latency by
tool, queue depths, waiting calls, the outbox's backlog and the sweeper's work.

Tool calls are counted where every call passes, at the HTTP edge (`ApiKeyAuth`), from the JSON-RPC
request and the answer's `isError`, so the fast path and the MCP SDK's path count the same way.
Depths are read from the store when Prometheus scrapes, never kept in step by hand. One registry
per app, so tests and several apps in one process never share counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cachebash.ports.store import Query
from cachebash.services.runtime import Runtime, tenant_path

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_LIMIT = 10_000  # documents counted per state and tenant at one scrape
_STATES = ("queued", "active", "done", "dead")


class _Depths(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _tenants(self) -> list[str]:
        from cachebash.services.sweeper import tenant_ids

        return tenant_ids(self.runtime)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self.runtime.store
        tasks = GaugeMetricFamily("cachebash_tasks", "Tasks by board state (counted up to 10000)",
                                  labels=["tenant", "state"])
        outbox = GaugeMetricFamily("cachebash_outbox_pending", "Events committed and not yet delivered",
                                   labels=["tenant"])
        for tenant in self._tenants():
            for state in _STATES:
                query = Query(tenant_path(tenant, "tasks")).where("phase", "==", state).order(
                    "createdAt", descending=True).take(SCRAPE_LIMIT)
                tasks.add_metric([tenant, state], len(store.query(query)))
            outbox.add_metric([tenant], len(store.query(Query(tenant_path(tenant, "outbox")).take(SCRAPE_LIMIT))))
        yield tasks
        yield outbox
        waiting = getattr(self.runtime.signals, "waiting", None)
        gauge = GaugeMetricFamily("cachebash_waiting_calls", "Calls waiting for work (wait_seconds, long polls)")
        gauge.add_metric([], waiting() if callable(waiting) else 0)
        yield gauge


class Metrics:
    def __init__(self, runtime: Runtime, tools: Iterable[str]) -> None:
        self.tools = frozenset(tools)  # a label per known tool only: names sent by clients are not labels
        self.registry = CollectorRegistry()
        self.calls = Counter("cachebash_tool_calls", "Tool calls by tool", ["tool"], registry=self.registry)
        self.errors = Counter("cachebash_tool_errors", "Tool calls answered with an error, by tool",
                              ["tool"], registry=self.registry)
        self.seconds = Histogram("cachebash_tool_seconds", "Tool call latency (a waiting call's wait included)",
                                 ["tool"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.sweeps = Counter("cachebash_sweeper", "What the sweeper did (leases taken back, events redelivered, ...)",
                              ["what"], registry=self.registry)
        self.registry.register(_Depths(runtime))

    def tool_call(self, tool: str, seconds: float, error: bool) -> None:
        tool = tool if tool in self.tools else "unknown"
        self.calls.labels(tool).inc()
        self.seconds.labels(tool).observe(seconds)
        if error:
            self.errors.labels(tool).inc()

    def swept(self, counts: dict[str, int]) -> None:
        for what, count in counts.items():
            if count:
                self.sweeps.labels(what).inc(count)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


def tool_of(request: Any) -> str | None:
    """The tool a JSON-RPC request calls (a batch is not a tool call)."""
    if isinstance(request, dict) and request.get("method") == "tools/call":
        name = (request.get("params") or {}).get("name")
        return name if isinstance(name, str) else "unknown"
    return None


def is_error(body_parts: Iterable[bytes]) -> bool:
    body = b"".join(body_parts)
    return b'"isError":true' in body or b'"isError": true' in body or b'"error":{' in body[:200]
