"""One tool call, the same on both paths: the HTTP fast path and the MCP SDK's tools both run
`invoke`, so they answer alike. Free of the MCP SDK, so the fast path answers a cold instance's
first calls without importing it (`mcp_server` builds the SDK's tools on top of this)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from cachebash.domain.errors import CacheBashError
from cachebash.domain.inputs import parse
from cachebash.interface import refusals, runners, wire_json
from cachebash.interface.runners import Runner
from cachebash.interface.tools import ToolSpec
from cachebash.interface.waiting import run_tool
from cachebash.services.runtime import Caller, Runtime

log = logging.getLogger(__name__)

# The SDK hands the request context to the tool function under this name and overwrites an
# argument of the same name with it; an unlikely name keeps plausible ones ("ctx") refused as
# unknown fields, like every other argument no tool has.
CONTEXT_KWARG = "_cachebash_request_context"


def make_runner(runtime: Runtime) -> Runner:
    """Call services inline when the store is local and fast; on worker threads when it does network I/O."""
    return runners.make_runner(runtime.store.blocking_io, runtime.store)


class Answer(NamedTuple):
    """One tool call's answer: the body an agent reads, whether it is an error, and the body as
    strict JSON text (what both the structured and the text content carry)."""

    body: dict[str, Any]
    error: bool
    text: str


def error_answer(exc: CacheBashError) -> Answer:
    body = {"success": False, "error": exc.to_dict()}
    return Answer(body, True, wire_json.dumps(body))


async def invoke(spec: ToolSpec, runtime: Runtime, run: Runner, caller: Caller, arguments: dict[str, Any]) -> Answer:
    """One tool call, shared by the SDK tools and the HTTP fast path so both answer alike. A
    CacheBashError is the agent's to read; anything else, and an answer JSON cannot carry
    (NaN, Infinity), is an INTERNAL error whose requestId is in the server log with the cause."""
    try:
        cmd = parse(spec.input, arguments)
        body, error = await run_tool(spec, runtime, run, caller, cmd), False
    except CacheBashError as exc:
        body, error = {"success": False, "error": exc.to_dict()}, True
    except Exception as exc:
        return _internal(spec.name, "raised an unexpected exception", exc)
    try:
        return Answer(body, error, wire_json.dumps(body))
    except (ValueError, TypeError) as exc:
        return _internal(spec.name, "returned an answer that is not strict JSON (NaN, Infinity or no JSON type)", exc)


def _internal(tool: str, what: str, exc: Exception) -> Answer:
    error = refusals.internal_error(tool)
    log.error("Tool %s %s (requestId=%s)", tool, what, error.details["requestId"], exc_info=exc)
    return error_answer(error)
