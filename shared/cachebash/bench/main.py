"""Run the chosen workloads, each against its own fresh server (or the one at `--url`)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from cachebash.bench import report
from cachebash.bench.options import Options
from cachebash.bench.server import RemoteServer, SpawnedServer, Target, read_admin_key
from cachebash.bench.workloads import baseline, coldstart, dispatch, race, relay, scale, waiters

WORKLOADS: dict[str, Callable[[Target, Options], Awaitable[dict[str, Any]]]] = {
    "dispatch": dispatch.run, "race": race.run, "relay": relay.run, "scale": scale.run, "waiters": waiters.run,
}
#: Workloads that start their own processes, each with its own baseline in the same run.
SERVERLESS: dict[str, Callable[[Options], Awaitable[dict[str, Any]]]] = {"coldstart": coldstart.run}
NO_ECHO = {"requestsPerSecond": None, "note": "not run: the workloads chosen measure against their own baseline"}


def open_target(opts: Options) -> Target:
    if opts.url:
        assert opts.keys is not None
        return RemoteServer(opts.url, read_admin_key(opts.keys))
    return SpawnedServer().start()


async def run(opts: Options) -> dict[str, Any]:
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                               "machine": report.machine(), "client": opts.client,
                               "command": "cachebash bench " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["bench"]
                               else "cachebash bench", "workloads": {}}
    results["server"], results["baseline"] = "none (functions-framework processes)", NO_ECHO
    if set(opts.workloads) - SERVERLESS.keys():
        target = open_target(opts)
        try:
            results["server"] = target.label
            results["baseline"] = await baseline.run(target, opts.agents_for("dispatch"), opts.duration, opts.client)
        finally:
            target.close()
    for name in opts.workloads:
        print(f"cachebash bench: {name} ...", file=sys.stderr, flush=True)
        if name in SERVERLESS:
            results["workloads"][name] = await SERVERLESS[name](opts)
            continue
        target = open_target(opts)
        try:
            results["workloads"][name] = await WORKLOADS[name](target, opts)
        finally:
            target.close()
    results["targets"] = report.targets(results)
    return results


def _run_loop(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """On uvloop when installed (it is a dependency): the load generator's own overhead is
    part of every figure, the baseline's included, so it should be as small as it can be."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def main(opts: Options) -> int:
    results = _run_loop(run(opts))
    print(report.render(results))
    if opts.json_out:
        with open(opts.json_out, "w") as out:
            json.dump(results, out, indent=2)
    return 0
