"""What waiting calls cost everyone else: a few agents make plain calls (send_message to a
peer, get_messages of their own inbox) for `--duration`, first alone, then while `--waiters`
other agents each hold a `get_messages(wait_seconds=--wait-seconds)` open (calling again
whenever one returns empty). The figure is the plain calls' p99 with the waiters against their
p99 without, measured on the same server in the same run; a third phase without waiters, after
them, shows how far the machine itself drifted meanwhile.

Each waiter's first wait is drawn from (0.5 s, S], so that their calls again (each a call with
authentication and a first look) spread over time as independent agents' would; started all at
once with the same S they would come back as one herd every S seconds, and the phase would measure
that burst of calls rather than what waiting costs. The timed phase with waiters starts once the
server reports 90% of them waiting at once (`/bench/stats`; a server without the bench routes gets
a fixed pause instead). Afterwards each waiter is sent one message, which must end its wait;
`waitersReleased` counts those that got it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from typing import Any

from cachebash.bench.agents import Agent
from cachebash.bench.options import Options
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder, latency_summary
from cachebash.bench.workloads.common import ServerWatch, close_all, deadline, make_agents, timed

SETTLE_TIMEOUT_S = 180.0
SETTLED_SHARE = 0.9
RELEASE_TIMEOUT_S = 180.0
_FIGURES = ("count", "perSecond", "p50Ms", "p95Ms", "p99Ms", "maxMs")


async def run(target: Target, opts: Options) -> dict[str, Any]:
    n = opts.agents_for("waiters")
    plain_recorder = Recorder()
    plain = await make_agents(target, opts.client, [f"plain{i}-{target.run_id}" for i in range(n)], [], plain_recorder)
    holders = await make_agents(target, opts.client, [f"hold{i}-{target.run_id}" for i in range(opts.waiters)], [],
                                Recorder())
    watch = ServerWatch(target)
    await watch.start()
    try:
        without = await _plain_phase(plain, opts.duration)
        holding: dict[str, Any] = {"released": 0, "codes": Counter()}
        held = [asyncio.create_task(_hold(h, opts.wait_seconds, holding)) for h in holders]
        settled = await _settle(target, opts.waiters)
        during = await target.stats()
        with_waiters = await _plain_phase(plain, opts.duration)
        await _release(plain, holders)
        await asyncio.wait_for(asyncio.gather(*held), RELEASE_TIMEOUT_S)
        after = await _plain_phase(plain, opts.duration)
        server = await watch.finish(plain_recorder.calls)
    finally:
        await close_all([*holders, *plain])
    base, loaded = without["p99Ms"], with_waiters["p99Ms"]
    return {
        "agents": n, "waiters": opts.waiters, "waitSeconds": opts.wait_seconds, "settleSeconds": settled,
        "withoutWaiters": without, "withWaiters": with_waiters, "afterWaiters": after,
        "p99Ratio": round(loaded / base, 2) if loaded is not None and base else None,
        "waitersReleased": holding["released"], "waiterErrors": sum(holding["codes"].values()),
        "waiterErrorCodes": dict(holding["codes"]),
        "signals": during.get("signals"), "server": server,
    }


async def _plain_phase(agents: list[Agent], duration: float) -> dict[str, Any]:
    """Every plain call's latency, all tools together (they are all the same kind of call)."""
    latencies: list[float] = []
    running = deadline(duration)

    async def timed_call(agent: Agent, tool: str, **arguments: Any) -> None:
        started = time.perf_counter()
        await agent.call(tool, **arguments)
        latencies.append(time.perf_counter() - started)

    async def loop(agent: Agent, peer: Agent) -> None:
        while running():
            await timed_call(agent, "send_message", target=peer.program, message="plain", message_type="STATUS")
            await timed_call(agent, "get_messages", limit=50)

    elapsed = await timed([loop(a, agents[(i + 1) % len(agents)]) for i, a in enumerate(agents)])
    summary = latency_summary(latencies, elapsed)
    return {k: summary[k] for k in _FIGURES}


async def _hold(agent: Agent, wait_seconds: float, holding: dict[str, Any]) -> None:
    """Wait, and wait again, until the message that releases this waiter arrives."""
    wait = round(random.uniform(0.5, wait_seconds), 1)
    while True:
        body = await agent.call("get_messages", limit=1, wait_seconds=wait)
        wait = wait_seconds
        if not body["success"]:
            holding["codes"][str((body.get("error") or {}).get("code"))] += 1
            return
        if body["count"]:
            holding["released"] += 1
            return


async def _settle(target: Target, waiters: int) -> float | None:
    """Seconds until the server reports most waiters waiting (None: it does not say; paused 2 s)."""
    started = time.monotonic()
    enough = math.ceil(SETTLED_SHARE * waiters)
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        signals = (await target.stats()).get("signals")
        if not isinstance(signals, dict):
            await asyncio.sleep(2.0)
            return None
        if signals.get("waitingCalls", 0) >= enough:
            return round(time.monotonic() - started, 2)
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the server did not report {enough} waiting calls within {SETTLE_TIMEOUT_S:g} s")


async def _release(plain: list[Agent], holders: list[Agent]) -> None:
    """One message to each waiter, sent by the plain agents in turns."""
    async def send(agent: Agent, targets: list[Agent]) -> None:
        for holder in targets:
            await agent.call("send_message", target=holder.program, message="release", message_type="STATUS")

    await asyncio.gather(*(send(agent, holders[i::len(plain)]) for i, agent in enumerate(plain)))
