"""Tool specs per area; `mcp_server` turns them into MCP tools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachebash.domain.inputs import Input
from cachebash.interface.tools.results import Result
from cachebash.services.runtime import Caller, Runtime

Handler = Callable[[Runtime, Caller, Any], dict[str, Any]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what an LLM should read to decide to call it, its input, its service,
    what it answers (`output`, a shape in `results`) and the hints clients show a person:
    `destructive` when a call may end something others rely on (a key, a sprint's open work),
    `idempotent` when repeating a call with the same arguments changes nothing more."""

    name: str
    description: str
    input: type[Input]
    handler: Handler
    read_only: bool = False
    idempotent: bool = False
    output: type[Result] | None = None
    title: str | None = None
    destructive: bool = False
    #: For tools that accept `wait_seconds`: the signal keys whose notification means "look again".
    wait_keys: Callable[[Caller, Any], list[str]] | None = None


def all_tools() -> list[ToolSpec]:
    from cachebash.interface.tools import keys, messages, programs, sprints, tasks, usage

    return [*tasks.TOOLS, *messages.TOOLS, *sprints.TOOLS, *programs.TOOLS, *keys.TOOLS, *usage.TOOLS]
