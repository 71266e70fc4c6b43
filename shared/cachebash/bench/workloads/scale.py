"""get_tasks and claim_task with 1,000 tasks queued, then with `--preload` (100,000).

The same agents measure both phases against one server; between them the queue is topped up
(through the store on a spawned server). Each phase claims the same number of tasks (a fifth
of the small queue at most), so the small queue stays near its size while it is measured.
"""

from __future__ import annotations

from typing import Any

from cachebash.bench.agents import Agent
from cachebash.bench.options import Options
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder, latency_summary
from cachebash.bench.workloads.common import ServerWatch, close_all, deadline, make_agents, timed

SMALL = 1_000


async def run(target: Target, opts: Options) -> dict[str, Any]:
    n = opts.agents_for("scale")
    group = f"scale-{target.run_id}"
    small = min(SMALL, opts.preload)
    recorder = Recorder()
    agents = await make_agents(target, opts.client, [f"scaler{i}-{target.run_id}" for i in range(n)], [group],
                               recorder)
    watch = ServerWatch(target)
    await watch.start()
    phases: dict[str, Any] = {}
    try:
        ids = await target.preload(small, group)
        phases[str(small)] = await _phase(agents, ids, small, small // 5, opts.duration)
        if opts.preload > small:
            ids = await target.preload(opts.preload - small, group)
            phases[str(opts.preload)] = await _phase(agents, ids, opts.preload, small // 5, opts.duration)
    finally:
        await close_all(agents)
    calls = sum(p["calls"] for p in phases.values())
    first, last = phases[str(small)], phases[str(max(small, opts.preload))]
    return {
        "agents": n, "phases": phases,
        "getTasksP99Ratio": _ratio(last["get_tasks"]["p99Ms"], first["get_tasks"]["p99Ms"]),
        "claimTaskP99Ratio": _ratio(last["claim_task"]["p99Ms"], first["claim_task"]["p99Ms"]),
        "server": await watch.finish(calls),
    }


async def _phase(agents: list[Agent], ids: list[str], queued: int, claims: int, duration: float) -> dict[str, Any]:
    """Every agent lists its queue for `duration`; between lists it claims tasks of its own
    share of `claims` (so claims never collide and the count is the same in each phase)."""
    recorder = Recorder()
    for agent in agents:
        agent.recorder = recorder
    shares = [ids[i::len(agents)][: max(1, claims // len(agents))] for i in range(len(agents))]
    running = deadline(duration)

    async def loop(agent: Agent, mine: list[str]) -> None:
        while running():
            await agent.call("get_tasks", limit=10)
            if mine:
                await agent.call("claim_task", taskId=mine.pop())

    elapsed = await timed([loop(a, s) for a, s in zip(agents, shares, strict=True)])
    return {"calls": recorder.calls, "queued": queued,
            **{op: latency_summary(recorder.samples[op], elapsed) for op in ("get_tasks", "claim_task")}}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None
