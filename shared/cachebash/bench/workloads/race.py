"""Every agent tries to claim every task of one shared set, in its own random order, and
completes what it wins. Afterwards each task is read back from the server: exactly one
claimer, completed. Anything else is a double claim or a lost task, and both must be 0."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from cachebash.bench.agents import Agent, LeanAgent
from cachebash.bench.options import Options
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder
from cachebash.bench.workloads.common import ServerWatch, close_all, make_agents, timed


async def run(target: Target, opts: Options) -> dict[str, Any]:
    n = opts.agents_for("race")
    group = f"racers-{target.run_id}"
    recorder = Recorder()
    racers = await make_agents(target, opts.client, [f"racer{i}-{target.run_id}" for i in range(n)], [group],
                               recorder)
    task_ids = await target.preload(opts.race_tasks, group)
    winners: dict[str, list[str]] = defaultdict(list)
    completed: set[str] = set()

    async def race(agent: Agent, seed: int) -> None:
        order = list(task_ids)
        random.Random(seed).shuffle(order)
        for task_id in order:
            if (await agent.call("claim_task", taskId=task_id))["success"]:
                winners[task_id].append(agent.program)
                if (await agent.call("complete_task", taskId=task_id, completed_status="SUCCESS"))["success"]:
                    completed.add(task_id)

    watch = ServerWatch(target)
    await watch.start()
    try:
        elapsed = await timed([race(a, i) for i, a in enumerate(racers)])
        server_view = await _read_back(target, task_ids)
    finally:
        await close_all(racers)
    summary = recorder.summary(elapsed)
    double = {t for t, w in winners.items() if len(w) > 1}
    double |= {t for t, (status, owner) in server_view.items() if owner is not None and winners.get(t) != [owner]}
    lost = {t for t in task_ids if t not in completed or server_view[t][0] != "completed"}
    return {
        "agents": n, "tasks": len(task_ids), **summary,
        "claimAttempts": len(recorder.samples["claim_task"]),
        "claimsWon": sum(len(w) for w in winners.values()),
        "doubleClaims": len(double), "lostTasks": len(lost),
        "server": await watch.finish(summary["calls"]),
    }


async def _read_back(target: Target, task_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """Each task's status and claimer as the server stores them (calls not counted in the figures)."""
    view: dict[str, tuple[str, str | None]] = {}
    key = (await target.issue_keys([f"auditor-{target.run_id}"], []))[0]
    auditor = LeanAgent(target.url, key, "auditor", Recorder())
    try:
        for task_id in task_ids:
            task = (await auditor.call("get_task", taskId=task_id))["task"]
            view[task_id] = (task["status"], task.get("claimedBy"))
    finally:
        await auditor.close()
    return view
