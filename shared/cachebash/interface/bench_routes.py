"""Routes that exist only on a server started for benchmarking (CACHEBASH_BENCH_ROUTES=1,
which `cachebash bench --spawn` sets): they are no part of the product and never mounted
otherwise.

- `POST /bench/echo` parses the JSON body and answers with it: the same server stack as
  `/v1/mcp` (uvicorn, Starlette) without MCP or the store, i.e. the practical limit of the
  machine for one request. It needs no key, so it must not be reachable in production.
- `GET /bench/stats` reports the process's resident memory (current and peak), the CPU time it
  has used (every thread, user and system: what a call costs the machine, which a ratio of
  throughputs hides when the client shares the CPU), and, when the store adapter counts them,
  its remote RPCs, and the calls waiting (`wait_seconds`) and the
  tenants' change feeds open (listeners); `POST` also resets the peak.

The RPC counter is a duck-typed hook: a store adapter that talks to a remote service (the
Firestore adapter) exposes an integer `rpc_count` and adds one per RPC; SQLite has none.
"""

from __future__ import annotations

import resource
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachebash.services.runtime import Runtime


def memory() -> dict[str, int]:
    """VmRSS / VmHWM of this process from /proc; ru_maxrss where there is no /proc."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0]) * 1024
    except OSError:
        found["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rssBytes": found.get("VmRSS", 0), "peakRssBytes": found.get("VmHWM", 0)}


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs sets the peak-RSS mark back to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def register(server: Any, runtime: Runtime) -> None:
    async def echo(request: Request) -> Response:
        return JSONResponse(await request.json())

    async def stats(request: Request) -> Response:
        if request.method == "POST":
            reset_peak()
        count = getattr(runtime.store, "rpc_count", None)
        signals = getattr(runtime.signals, "stats", None)
        return JSONResponse({**memory(), "cpuSeconds": time.process_time(), "store": type(runtime.store).__name__,
                             "storeRpcs": count if isinstance(count, int) else None,
                             "signals": signals() if callable(signals) else None})

    server.custom_route("/bench/echo", methods=["POST"])(echo)
    server.custom_route("/bench/stats", methods=["GET", "POST"])(stats)
