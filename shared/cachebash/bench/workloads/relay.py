"""Agents in a ring: each sends a message to the next and fetches its own inbox, in turn.

Send->receive latency is from the moment the sender issued send_message to the moment the
receiver's get_messages returned it, so it includes the receiver's polling interval, as it
would for a real agent. After the timed phase every inbox is drained, so a message that was
never delivered shows up as lost.

A second phase measures waiting instead of polling: half the agents sit in
`get_messages(wait_seconds=...)`, the other half send to them at random intervals, so the
latency is how fast a waiting reader is woken by a send."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from cachebash.bench.agents import Agent
from cachebash.bench.options import Options
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder, latency_summary
from cachebash.bench.workloads.common import ServerWatch, close_all, deadline, make_agents, timed


async def run(target: Target, opts: Options) -> dict[str, Any]:
    n = opts.agents_for("relay")
    recorder = Recorder()
    agents = await make_agents(target, opts.client, [f"relay{i}-{target.run_id}" for i in range(n)], [], recorder)
    latencies: list[float] = []
    counts = {"sent": 0, "received": 0}
    running = deadline(opts.duration)

    def receive(messages: list[dict[str, Any]]) -> None:
        now = time.perf_counter()
        for message in messages:
            latencies.append(now - json.loads(message["message"])["sentAt"])
        counts["received"] += len(messages)

    async def loop(agent: Agent, peer: Agent) -> None:
        while running():
            body = json.dumps({"sentAt": time.perf_counter()})
            sent = await agent.call("send_message", target=peer.program, message=body, message_type="STATUS")
            counts["sent"] += sent["success"]  # read after the await: `x += await ...` would lose updates
            receive((await agent.call("get_messages", limit=50))["messages"])

    watch = ServerWatch(target)
    await watch.start()
    try:
        elapsed = await timed([loop(a, agents[(i + 1) % n]) for i, a in enumerate(agents)])
        summary = recorder.summary(elapsed)
        for agent in agents:  # drain: whatever is still queued was sent, so it must arrive
            while batch := (await agent.call("get_messages", limit=50))["messages"]:
                receive(batch)
    finally:
        await close_all(agents)
    end_to_end = latency_summary(latencies, elapsed)
    waiters = await make_agents(target, opts.client, [f"waiter{i}-{target.run_id}" for i in range(max(2, n))], [],
                                Recorder())
    try:
        waiting = await _waiting_phase(waiters, min(opts.duration, 5.0))
    finally:
        await close_all(waiters)
    return {
        "agents": n, **summary,
        "messagesSent": counts["sent"], "messagesReceived": counts["received"],
        "messagesLost": counts["sent"] - counts["received"],
        "messagesPerSecond": round(counts["sent"] / elapsed, 1),
        "sendToReceive": {k: end_to_end[k] for k in ("p50Ms", "p95Ms", "p99Ms", "maxMs")},
        "sendToReceiveWaiting": waiting,
        "server": await watch.finish(summary["calls"]),
    }


WAIT_SECONDS = 2


async def _waiting_phase(agents: list[Agent], duration: float) -> dict[str, Any]:
    """Readers wait server-side (`wait_seconds`); writers send at random moments."""
    pairs = len(agents) // 2
    readers, writers = agents[:pairs], agents[pairs:2 * pairs]
    latencies: list[float] = []
    counts = {"sent": 0, "received": 0}
    running = deadline(duration)

    def receive(messages: list[dict[str, Any]]) -> None:
        now = time.perf_counter()
        latencies.extend(now - json.loads(m["message"])["sentAt"] for m in messages)
        counts["received"] += len(messages)

    async def read(agent: Agent) -> None:
        while running():
            receive((await agent.call("get_messages", limit=50, wait_seconds=WAIT_SECONDS))["messages"])

    async def write(agent: Agent, reader: Agent) -> None:
        while running():
            await asyncio.sleep(random.uniform(0.02, 0.1))  # let the reader be waiting when it arrives
            body = json.dumps({"sentAt": time.perf_counter()})
            sent = await agent.call("send_message", target=reader.program, message=body, message_type="STATUS")
            counts["sent"] += sent["success"]

    elapsed = await timed([*(read(r) for r in readers), *(write(w, r) for w, r in zip(writers, readers, strict=True))])
    for reader in readers:
        while batch := (await reader.call("get_messages", limit=50))["messages"]:
            receive(batch)
    summary = latency_summary(latencies, elapsed)
    return {"waitSeconds": WAIT_SECONDS, "messagesSent": counts["sent"],
            "messagesLost": counts["sent"] - counts["received"],
            **{k: summary[k] for k in ("p50Ms", "p95Ms", "p99Ms", "maxMs")}}
