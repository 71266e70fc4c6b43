"""What every workload does: make agents with their own keys, run them until a deadline,
and read the server's memory and store RPC counters around the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cachebash.bench.agents import Agent, open_agent
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder


async def make_agents(target: Target, client: str, programs: Sequence[str], groups: list[str],
                      recorder: Recorder) -> list[Agent]:
    keys = await target.issue_keys(list(programs), groups)
    # One after another, in this task: the SDK client must be closed by the task that opened it.
    return [await open_agent(client, target.url, k, p, recorder) for k, p in zip(keys, programs, strict=True)]


async def close_all(agents: Sequence[Agent]) -> None:
    """Newest first: each SDK client holds a task group, and those nest like a stack."""
    for agent in reversed(agents):
        await agent.close()


async def timed(runs: Sequence[Awaitable[None]]) -> float:
    """Run the agents' loops together; returns wall-clock seconds until the last one stopped."""
    started = time.perf_counter()
    await asyncio.gather(*runs)
    return time.perf_counter() - started


def deadline(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


#: Calls of each tool in `rpcs_per_tool`'s quiet phase.
PROBE_CALLS = 10


async def rpcs_per_tool(target: Target, steps: Sequence[tuple[str, Callable[[], Awaitable[Any]]]]) -> dict[str, Any]:
    """Store RPCs per call of each tool, on a store that counts them (empty otherwise): after the
    timed run, each step's call is made `PROBE_CALLS` times in a row by one agent, alone, between
    two reads of the server's counter. So a figure is one tool's own RPCs (what the server does
    in the background meanwhile, rarely anything, is counted too), which the mixed run's overall
    figure cannot split."""
    found: dict[str, Any] = {}
    for tool, call in steps:
        before = (await target.stats()).get("storeRpcs")
        if not isinstance(before, int):
            return {}  # a store that does not count (SQLite): no probe
        for _ in range(PROBE_CALLS):
            await call()
        after = (await target.stats())["storeRpcs"]
        found[tool] = round((after - before) / PROBE_CALLS, 1)
    return found


class ServerWatch:
    """Peak RSS, store RPCs and server CPU time per call over one workload, from the server's
    `/bench/stats` (the CPU figure includes the server's own background threads, as it should)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.before: dict[str, Any] = {}

    async def start(self) -> None:
        self.before = await self.target.stats(reset_peak=True)

    async def finish(self, tool_calls: int) -> dict[str, Any]:
        after = await self.target.stats()
        peak = after.get("peakRssBytes")
        rpcs_before, rpcs_after = self.before.get("storeRpcs"), after.get("storeRpcs")
        per_call = None
        if isinstance(rpcs_before, int) and isinstance(rpcs_after, int) and tool_calls:
            per_call = round((rpcs_after - rpcs_before) / tool_calls, 2)
        cpu_before, cpu_after = self.before.get("cpuSeconds"), after.get("cpuSeconds")
        cpu = None
        if isinstance(cpu_before, float) and isinstance(cpu_after, float) and tool_calls:
            cpu = round((cpu_after - cpu_before) / tool_calls * 1e6)
        return {
            "peakRssMb": round(peak / 2**20, 1) if isinstance(peak, int) else None,
            "store": after.get("store"),
            "storeRpcsPerCall": per_call,
            "cpuUsPerCall": cpu,
        }
