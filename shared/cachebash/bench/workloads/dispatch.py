"""Producers queue tasks for a group; workers get_tasks -> claim_task -> complete_task.

A quarter of the agents produce (at least one), the rest work. Producers hold back when the
backlog passes a few hundred tasks, so the queue stays the size a busy team would have rather
than growing for the length of the run. Workers call get_tasks as an agent would (default
page) and try the tasks listed starting at an offset of their own, as agents that do not
talk to each other would; a lost claim race is counted (`refused`), not hidden. Workers report
tokens and cost on completing, as agents do, so usage counters are part of what is measured.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from cachebash.bench.agents import Agent
from cachebash.bench.options import Options
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder
from cachebash.bench.workloads.common import ServerWatch, close_all, deadline, make_agents, rpcs_per_tool, timed

MAX_BACKLOG = 256
#: What a worker reports on completing, as an agent would: so the run counts usage too.
USAGE_REPORT = {"tokens_in": 1200, "tokens_out": 300, "cost_usd": 0.0042, "model": "bench-model",
                "provider": "bench"}


async def run(target: Target, opts: Options) -> dict[str, Any]:
    n = opts.agents_for("dispatch")
    producers_n = max(1, n // 4)
    group = f"workers-{target.run_id}"
    recorder = Recorder()
    producers = await make_agents(target, opts.client, [f"producer{i}-{target.run_id}" for i in range(producers_n)],
                                  [], recorder)
    workers = await make_agents(target, opts.client, [f"worker{i}-{target.run_id}" for i in range(n - producers_n)],
                                [group], recorder)
    state = {"created": 0, "claimed": 0, "completed": 0}
    winners: dict[str, list[str]] = defaultdict(list)
    running = deadline(opts.duration)

    async def produce(agent: Agent) -> None:
        while running():
            if state["created"] - state["claimed"] >= MAX_BACKLOG:
                await asyncio.sleep(0.001)
                continue
            body = await agent.call("create_task", title=f"task {state['created']}", target=group,
                                    instructions="Benchmark work item: claim it and complete it.")
            state["created"] += body["success"]

    async def work(agent: Agent, offset: int) -> None:
        while running():
            listed = (await agent.call("get_tasks"))["tasks"]
            if not listed:
                await asyncio.sleep(0.001)
                continue
            start = offset % len(listed)
            for task in listed[start:] + listed[:start]:
                if (await agent.call("claim_task", taskId=task["taskId"]))["success"]:
                    state["claimed"] += 1
                    winners[task["taskId"]].append(agent.program)
                    done = await agent.call("complete_task", taskId=task["taskId"], completed_status="SUCCESS",
                                            **USAGE_REPORT)
                    state["completed"] += done["success"]
                    break

    watch = ServerWatch(target)
    await watch.start()
    try:
        elapsed = await timed([produce(p) for p in producers] + [work(w, i) for i, w in enumerate(workers)])
        summary = recorder.summary(elapsed)
        server = await watch.finish(summary["calls"])
        server["storeRpcsPerTool"] = await rpcs_per_tool(target, probe_steps(producers[0], workers[0]))
    finally:
        await close_all(producers + workers)
    return {
        "agents": n, "producers": producers_n, "workers": n - producers_n, **summary,
        "tasksCreated": state["created"], "tasksCompleted": state["completed"],
        "tasksCompletedPerSecond": round(state["completed"] / elapsed, 1),
        "doubleClaims": sum(1 for w in winners.values() if len(w) > 1),
        "server": server,
    }


def probe_steps(producer: Agent, worker: Agent) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """The dispatch cycle one tool at a time, for `rpcs_per_tool`: tasks for the worker itself,
    each claimed and completed."""
    made: list[str] = []
    claimed: list[str] = []

    async def create() -> None:
        made.append((await producer.call("create_task", title="probe", target=worker.program,
                                         instructions="Benchmark probe."))["taskId"])

    async def get() -> None:
        await worker.call("get_tasks")

    async def claim() -> None:
        task_id = made.pop()
        if (await worker.call("claim_task", taskId=task_id))["success"]:
            claimed.append(task_id)

    async def complete() -> None:
        if claimed:
            await worker.call("complete_task", taskId=claimed.pop(), completed_status="SUCCESS", **USAGE_REPORT)

    return [("create_task", create), ("get_tasks", get), ("claim_task", claim), ("complete_task", complete)]
