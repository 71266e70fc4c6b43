"""Run a tool, and for tools that can wait (`wait_seconds`), wait for work instead of
returning empty: subscribe first, look, and look again on each wake-up until something
is there or the deadline passes (at the deadline it looks a last time, unless a live feed
watched the whole wait and announced nothing, in which case there is nothing to find). Before
each later look the call reads its API key again, and it also wakes when that key is revoked:
a revoked key's waiting call ends with UNAUTHENTICATED and never claims or delivers anything
afterwards. A waiting call's looks run on the waiting calls' own worker threads
(`interface.runners`), so waiters never hold the threads plain calls need."""

from __future__ import annotations

import time
from typing import Any

import anyio

from cachebash.interface.runners import Runner
from cachebash.interface.tools import ToolSpec
from cachebash.services import presence, rate_limits, revocation
from cachebash.services.runtime import Caller, Runtime


def _empty(result: dict[str, Any]) -> bool:
    return (result.get("count") == 0 or result.get("claimed") is False) and not result.get("interrupts")


async def run_tool(spec: ToolSpec, runtime: Runtime, run: Runner, caller: Caller, cmd: Any) -> dict[str, Any]:
    def once() -> dict[str, Any]:
        return presence.after_call(runtime, caller, cmd, spec.handler(runtime, caller, cmd))

    def again() -> dict[str, Any]:
        revocation.check(runtime, caller)  # in the same worker hop as the look: one read more
        return once()

    def first() -> dict[str, Any]:  # a call counts once against its rate limits, however long it waits
        rate_limits.admit(runtime, caller)
        return once()

    wait = float(getattr(cmd, "wait_seconds", 0) or 0)
    if spec.wait_keys is None or wait <= 0 or runtime.signals is None:
        return await run(first)
    deadline = time.monotonic() + wait
    keys = [*spec.wait_keys(caller, cmd), *revocation.wait_keys(caller)]
    slot = rate_limits.WaitingSlot(runtime, caller, wait)

    def first_look() -> dict[str, Any]:
        found = first()
        if _empty(found):
            slot.take()  # about to wait: one of the key's max_waiting_per_key, or RATE_LIMITED
        return found

    with runtime.signals.subscribe(caller.tenant_id, keys) as subscription:
        try:  # from the first look on: a call cancelled during it has taken its slot all the same
            result = await run.waiting(first_look)
            while _empty(result) and not runtime.closing.is_set() and (remaining := deadline - time.monotonic()) > 0:
                if not await subscription.wait(remaining):
                    break  # the deadline passed and the live feed announced nothing: a last look would find nothing
                result = await run.waiting(again)
        finally:
            if slot.close():
                with anyio.CancelScope(shield=True):  # a client gone away still frees its slot
                    await run.waiting(slot.release)
    return result
