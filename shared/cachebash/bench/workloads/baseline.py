"""The practical limit of this machine for one request: the same client, the same request
bytes, the same server process and framework, but a route that only echoes the body back
(no MCP, no store). Every other figure is reported as a ratio to this one."""

from __future__ import annotations

from typing import Any

from cachebash.bench.agents import EchoAgent, ProtocolError
from cachebash.bench.server import Target
from cachebash.bench.stats import Recorder, latency_summary
from cachebash.bench.workloads.common import ServerWatch, deadline, timed

UNAVAILABLE = "no /bench/echo on this server: start it with CACHEBASH_BENCH_ROUTES=1 for the baseline"


async def run(target: Target, agents: int, duration: float, client: str) -> dict[str, Any]:
    recorder = Recorder()
    echoes = [EchoAgent(target.base, "bench-echo", recorder, client) for _ in range(agents)]
    try:
        await echoes[0].echo()
    except (ProtocolError, OSError):
        for agent in echoes:
            await agent.close()
        return {"agents": agents, "client": client, "requests": 0, "requestsPerSecond": None, "p50Ms": None,
                "p95Ms": None, "p99Ms": None, "note": UNAVAILABLE}
    recorder = Recorder()
    for agent in echoes:
        agent.recorder = recorder
    running = deadline(duration)

    async def loop(agent: EchoAgent) -> None:
        while running():
            await agent.echo()

    watch = ServerWatch(target)
    await watch.start()
    try:
        elapsed = await timed([loop(a) for a in echoes])
        summary = latency_summary(recorder.samples["echo"], elapsed)
        server = await watch.finish(summary["count"])
    finally:
        for agent in echoes:
            await agent.close()
    return {"agents": agents, "client": client, "requests": summary["count"],
            "requestsPerSecond": summary["perSecond"], **{k: summary[k] for k in ("p50Ms", "p95Ms", "p99Ms")},
            "cpuUsPerRequest": server["cpuUsPerCall"]}
