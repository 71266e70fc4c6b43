"""The `mcp` Cloud Function's cold start: seconds from starting `functions-framework --target mcp`
(as Cloud Run starts an instance, the deploy's environment: Firestore store, Pub/Sub bus) to its
first 200 for `GET /health`, and, from a second fresh process, to its first 200 for a `tools/call`
(get_tasks, the official client's 2026-07-28 request, through the fast path, on an admin key
issued into the store beforehand). The baseline, in the same run: a bare functions-framework
target that answers every request with `{}` (what functions-framework itself costs); and the
floor: the same target importing the Firestore client library on its first request (what the
required stack costs before a first store call, which no code of ours can go under).

The store is Google's Firestore emulator, started once for the workload (a few seconds of Java);
each figure is the median of `RUNS` runs, baseline and both cold starts taken in turn in each run,
after one unmeasured warm-up start of each (which writes CacheBash's bytecode caches, so that no
measured start compiles source, and warms the emulator). Requests are retried every 5 ms until the port answers.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachebash.bench.agents import request_body
from cachebash.bench.options import Options
from cachebash.bench.server import free_port, stop_process

RUNS = 3
POLL_SECONDS = 0.005
START_TIMEOUT_S = 60.0
PROJECT = "demo-bench-coldstart"
HELLO_SOURCE = Path(__file__).resolve().parent.parent / "hello_function.py"
_CALL_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                 "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "get_tasks"}


@dataclass(frozen=True)
class Start:
    """One way to start a function and the request whose first 200 ends the measurement."""

    name: str
    target: str
    source: Path
    request: Callable[[str], urllib.request.Request]


def _health(base: str) -> urllib.request.Request:
    return urllib.request.Request(base + "/health")


def _call(key: str) -> Callable[[str], urllib.request.Request]:
    def request(base: str) -> urllib.request.Request:
        return urllib.request.Request(base + "/v1/mcp", data=request_body(1, "get_tasks", {}),
                                      headers={**_CALL_HEADERS, "Authorization": f"Bearer {key}"})
    return request


async def run(opts: Options) -> dict[str, Any]:
    return await asyncio.to_thread(_measure, opts.coldstart_runs)


def _measure(runs: int) -> dict[str, Any]:
    from cachebash.cloud_local.emulators import missing, start_firestore
    from cachebash.cloud_local.functions import MAIN

    if why := missing(need_pubsub=False):
        raise SystemExit(f"cachebash bench: the coldstart workload needs Google's Firestore emulator: {why}")
    logs = Path(tempfile.mkdtemp(prefix="cachebash-coldstart-"))
    emulator = start_firestore(logs)
    try:
        emulator.wait_ready()
        env = _function_env(emulator.host)
        key = _issue_key(env)
        starts = [Start("baseline", "hello", HELLO_SOURCE, _health),
                  Start("storeClient", "hello_with_firestore", HELLO_SOURCE, _health),
                  Start("health", "mcp", MAIN, _health), Start("toolCall", "mcp", MAIN, _call(key))]
        for start in starts:  # warm-up: bytecode caches written, the emulator's JIT warm
            _first_200(start, env, logs / "warm-up.log")
        seconds: dict[str, list[float]] = {s.name: [] for s in starts}
        for _ in range(runs):
            for start in starts:
                seconds[start.name].append(_first_200(start, env, logs / f"{start.name}.log"))
    finally:
        emulator.child.stop()
    return {"runs": runs, "store": "Google's Firestore emulator", "request": "tools/call get_tasks (2026-07-28)",
            **{name: _summary(values) for name, values in seconds.items()},
            "storeClientOverBaselineS": _over(seconds["storeClient"], seconds["baseline"]),
            "healthOverBaselineS": _over(seconds["health"], seconds["baseline"]),
            "toolCallOverBaselineS": _over(seconds["toolCall"], seconds["baseline"])}


def _function_env(firestore_host: str) -> dict[str, str]:
    """What `cachebash deploy` sets, with the emulator for Firestore, the log notifier, and a
    Pub/Sub host nothing listens on (a get_tasks publishes nothing); bytecode caches allowed."""
    from cachebash.cloud_local.functions import function_env

    env = function_env(PROJECT, firestore_host, "127.0.0.1:9")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _issue_key(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "cachebash.cli", "keys", "create", "--program", "coldstart",
                           "--admin"], env=env, capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.strip()


def _first_200(start: Start, env: dict[str, str], log: Path) -> float:
    """Seconds from starting the process to the first 200 for its request (its output in `log`)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "functions_framework", "--target", start.target, "--source", str(start.source),
               "--host", "127.0.0.1", "--port", str(port)]
    with log.open("a") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
    try:
        while True:
            status = _status(start.request(base))
            if status == 200:
                return time.perf_counter() - started
            if status is not None:
                raise RuntimeError(f"{start.name}: HTTP {status} from {start.target}")
            if proc.poll() is not None or time.perf_counter() - started > START_TIMEOUT_S:
                raise RuntimeError(f"{start.name}: {start.target} did not answer (log {log}):\n"
                                   + log.read_text(errors="replace")[-3000:])
            time.sleep(POLL_SECONDS)
    finally:
        stop_process(proc)


def _status(request: urllib.request.Request) -> int | None:
    """The HTTP status, or None while nothing listens on the port yet."""
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
            if request.data is not None and "result" not in json.loads(body):
                return 599  # a JSON-RPC error is not the tool call we are timing
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _summary(values: list[float]) -> dict[str, Any]:
    return {"medianS": round(statistics.median(values), 3), "minS": round(min(values), 3),
            "maxS": round(max(values), 3), "allS": [round(v, 3) for v in values]}


def _over(values: list[float], base: list[float]) -> float:
    return round(statistics.median(values) - statistics.median(base), 3)

