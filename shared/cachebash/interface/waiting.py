"""Run a tool, and for tools that can wait (`wait_seconds`), wait for work instead of
returning empty: subscribe first, look, and look again on each wake-up until something
is there or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from cachebash.interface.tools import ToolSpec
from cachebash.services.runtime import Caller, Runtime

Runner = Callable[[Callable[[], dict[str, Any]]], Awaitable[dict[str, Any]]]


def _empty(result: dict[str, Any]) -> bool:
    return result.get("count") == 0 or result.get("claimed") is False


async def run_tool(spec: ToolSpec, runtime: Runtime, run: Runner, caller: Caller, cmd: Any) -> dict[str, Any]:
    def once() -> dict[str, Any]:
        return spec.handler(runtime, caller, cmd)

    wait = float(getattr(cmd, "wait_seconds", 0) or 0)
    if spec.wait_keys is None or wait <= 0 or runtime.signals is None:
        return await run(once)
    deadline = time.monotonic() + wait
    with runtime.signals.subscribe(caller.tenant_id, spec.wait_keys(caller, cmd)) as subscription:
        result = await run(once)
        while _empty(result) and not runtime.closing.is_set() and (remaining := deadline - time.monotonic()) > 0:
            await subscription.wait(remaining)
            result = await run(once)
    return result
