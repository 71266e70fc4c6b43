"""The MCP server: every ToolSpec as an MCP tool with a strict schema and CacheBash errors.

The SDK's own argument validation is replaced by a pass-through model so that our
input models validate once and a bad argument comes back as our structured error
(`{"success": false, "error": {"code", "message", "field"}}`), which an LLM can act on,
instead of a pydantic dump.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import ConfigDict

from cachebash import __version__
from cachebash.domain.arguments import closest
from cachebash.domain.errors import CacheBashError, Code, Unauthenticated
from cachebash.interface.protocol import SERVER_NAME, TransportSecurity
from cachebash.interface.runners import Runner
from cachebash.interface.tool_calls import CONTEXT_KWARG, Answer, error_answer, invoke, make_runner
from cachebash.interface.tools import ToolSpec, all_tools
from cachebash.interface.tools.results import output_schema
from cachebash.services.runtime import Caller, Runtime

INSTRUCTIONS = """CacheBash coordinates you with other AI agents. Your identity comes from your API key.
At the start of a session: get_program_state, get_tasks, get_messages.
To hand off work: create_task (with full instructions) and send_message (DIRECTIVE).
To do work: claim_next (or get_tasks -> claim_task) -> report_task_progress -> complete_task;
pass claim_token back, and use wait_seconds instead of polling.
Sprints: create_sprint with stories in waves; builders get unlocked stories as sprint-story tasks.
Questions for the human: send_message to 'human' (QUERY), the answer arrives in get_messages.
Before a session ends: update_program_state.
Parameter names are accepted in snake_case or camelCase (claim_token or claimToken); errors name the field at fault."""


class _PassThrough(ArgModelBase):
    """Accept any arguments so validation happens once, in our own input model."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def tool_result(answer: Answer) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=answer.text)], structured_content=answer.body,
                          is_error=answer.error)


def caller_of(ctx: Context[Any, Any]) -> Caller:
    request = ctx.request_context.request
    caller = request.scope.get("state", {}).get("caller") if request is not None else None
    if not isinstance(caller, Caller):
        raise Unauthenticated("no API key on this request")
    return caller


def _mcp_tool(spec: ToolSpec, runtime: Runtime, run: Runner) -> Tool:
    async def call(_cachebash_request_context: Context[Any, Any], **arguments: Any) -> CallToolResult:
        try:
            caller = caller_of(_cachebash_request_context)
        except CacheBashError as exc:
            return tool_result(error_answer(exc))
        return tool_result(await invoke(spec, runtime, run, caller, arguments))

    return Tool(
        fn=call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=input_schema(spec),
        fn_metadata=FuncMetadata(arg_model=_PassThrough,
                                 output_schema=None if spec.output is None else output_schema(spec.output)),
        is_async=True,
        context_kwarg=CONTEXT_KWARG,
        annotations=tool_annotations(spec),
    )


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    schema = spec.input.model_json_schema()
    schema.pop("title", None)
    return schema


def tool_annotations(spec: ToolSpec) -> ToolAnnotations:
    """The hints a client shows a person before a call. Every tool acts only on CacheBash's own
    store (closed world); a read-only one is neither destructive nor anything but idempotent."""
    if spec.read_only:
        return ToolAnnotations(title=spec.title, read_only_hint=True, open_world_hint=False)
    return ToolAnnotations(title=spec.title, read_only_hint=False, destructive_hint=spec.destructive,
                           idempotent_hint=spec.idempotent, open_world_hint=False)


def unknown_tool(name: str, names: list[str]) -> CacheBashError:
    suggestion = closest(name, {known: known for known in names})
    hint = f"did you mean {suggestion}? " if suggestion else ""
    return CacheBashError(f"no tool named '{name}'; {hint}the tools are: {', '.join(names)}",
                          code=Code.UNKNOWN_TOOL, field="name", tools=names)


class CacheBashMCPServer(MCPServer):
    """The SDK's server, answering a call to a tool it does not have the way every refusal is
    answered (structured, with the tools listed) instead of in the SDK's plain text."""

    def __init__(self, tool_names: list[str], **settings: Any) -> None:
        super().__init__(**settings)
        self.tool_names = tool_names

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> CallToolResult | InputRequiredResult:
        if name not in self.tool_names:
            return tool_result(error_answer(unknown_tool(name, self.tool_names)))
        return await super().call_tool(name, arguments, context)


def build_mcp_server(runtime: Runtime, tools: list[ToolSpec] | None = None) -> MCPServer:
    run = make_runner(runtime)
    specs = all_tools() if tools is None else tools
    return CacheBashMCPServer(
        [spec.name for spec in specs],
        name=SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=[_mcp_tool(spec, runtime, run) for spec in specs],
    )


def build_sdk_app(runtime: Runtime, tools: list[ToolSpec], *, path: str, security: TransportSecurity, host: str,
                  max_body: int) -> Any:
    """The SDK's Starlette app serving `path` (stateless, JSON answers), whose lifespan runs the
    SDK's session manager; built only when a request needs the SDK (`http_app`)."""
    return build_mcp_server(runtime, tools).streamable_http_app(
        streamable_http_path=path,
        json_response=True,
        stateless_http=True,
        max_request_body_size=max_body,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=security.enabled,
                                                     allowed_hosts=security.allowed_hosts,
                                                     allowed_origins=security.allowed_origins),
        host=host,
    )
