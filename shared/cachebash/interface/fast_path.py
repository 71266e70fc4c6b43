"""A lean path for the requests agents make all day: stateless JSON `tools/call` and
`tools/list`, at the per-request-envelope protocol version (2026-07-28, what the official
Python client speaks) and at the handshake-era versions (2024-11-05 to 2025-11-25, what
most agents' clients speak after `initialize`).

Why: through the SDK one tool call costs several times what the tool itself costs — per
request it builds a Starlette request, a connection, a dispatch context, a server runner,
an OpenTelemetry span, pydantic models of the request and of the result, validates the
result against the protocol schema and dumps it again (profile in the README's Benchmark
section). None of that changes the answer for a well-formed call.

How it stays compliant: this path serves a request only when it can check cheaply that the
SDK would accept it — every rung of the SDK's inbound checks (transport security, Accept,
Content-Type; at 2026-07-28 the routing headers equal to the body and the envelope's
protocol version and capabilities; the params' schema at that version) — and then answers
with exactly what the SDK would send at that version. Anything else
(other methods, other protocol versions, batches, malformed bodies, unknown tools, cursors,
`Mcp-Param-*` headers) is handed to the SDK untouched, body replayed, so every error and edge
case keeps the SDK's answer. The body was read, size-checked and strictly decoded in front of
both (`http_app.ApiKeyAuth`, `wire_json`), so both see the same values: no NaN or Infinity,
no lone surrogates, no nesting deeper than the SDK's parser allows. `tools/list` is static, so its first
answer comes from the SDK and later ones reuse that result with the new request id.

What it gives up: no OpenTelemetry span per call (the SDK's is a no-op unless a tracer is
configured). `CACHEBASH_MCP_FAST_PATH=0` turns the path off.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cachebash.interface import wire_json
from cachebash.interface.protocol import (
    CLIENT_CAPABILITIES_META_KEY,
    DEFAULT_NEGOTIATED_VERSION,
    HANDSHAKE_PROTOCOL_VERSIONS,
    MODERN_PROTOCOL_VERSIONS,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    TransportSecurity,
    servable_params,
)
from cachebash.interface.runners import Runner
from cachebash.interface.tool_calls import CONTEXT_KWARG, invoke
from cachebash.interface.tools import ToolSpec
from cachebash.services.runtime import Caller, Runtime

_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS = {"tools/call": frozenset({"name", "arguments", "_meta"}), "tools/list": frozenset({"_meta"})}
_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_JSON = b"application/json"
SERVED_VERSIONS = frozenset({*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS})


class FastPath:
    def __init__(self, sdk: ASGIApp, runtime: Runtime, specs: list[ToolSpec], run: Runner, *, path: str,
                 security: TransportSecurity, server_info: dict[str, Any]) -> None:
        self.sdk = sdk
        self.runtime = runtime
        self.specs = {spec.name: spec for spec in specs}
        self.run = run
        self.path = path
        self.security = security
        self.stamp = wire_json.dumps({SERVER_INFO_META_KEY: server_info})
        self.tool_lists: dict[str, str] = {}  # protocol version -> the SDK's tools/list result, as JSON

    async def __call__(self, scope: Scope, receive: Receive, send: Send, caller: Caller, decoded: Any) -> None:
        """`decoded` is the request body, already read and strictly decoded (`wire_json.loads`);
        `receive` replays the body for the SDK."""
        version, routing = self._version_if_plain(scope)
        request = _eligible(decoded, version, routing) if version else None
        if request is None or version is None or (request["method"] == "tools/call"
                                                  and request["params"]["name"] not in self.specs):
            await self.sdk(scope, receive, send)
        elif request["method"] == "tools/list":
            await self._list_tools(scope, receive, send, request, version)
        else:
            await self._call_tool(send, request, caller, version)

    def _version_if_plain(self, scope: Scope) -> tuple[str | None, dict[str, str]]:
        """The protocol version and routing headers when the request's headers are ones this
        path serves; (None, {}) otherwise."""
        refused: tuple[None, dict[str, str]] = (None, {})
        if scope["method"] != "POST" or scope["path"] != self.path:
            return refused
        seen: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _HEADERS:
                if name in seen:
                    return refused
                seen[name] = value
            elif name.startswith(b"mcp-param-"):
                return refused
        header = seen.get(b"mcp-protocol-version")
        version = DEFAULT_NEGOTIATED_VERSION if header is None else header.decode("latin-1")
        if version not in SERVED_VERSIONS or not self._passes_transport_checks(scope):
            return refused
        return version, {k.decode(): v.decode("latin-1") for k, v in seen.items()}

    def _passes_transport_checks(self, scope: Scope) -> bool:
        """The SDK's Content-Type, Accept and DNS-rebinding (Host, Origin) checks, answered
        without building a Starlette request; failing any of them means: let the SDK refuse."""
        headers = Headers(scope=scope)
        # Modern: starts with application/json; handshake era: exactly that before any ';'.
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return False
        accepted = {part.strip().split(";")[0].strip().lower() for part in headers.get("accept", "").split(",")}
        if not accepted & {"*/*", "application/json", "application/*"}:
            return False
        if not self.security.enabled:
            return True
        return (_allowed(headers.get("host"), self.security.allowed_hosts)
                and ("origin" not in headers or _allowed(headers["origin"], self.security.allowed_origins)))

    async def _call_tool(self, send: Send, request: dict[str, Any], caller: Caller, version: str) -> None:
        answer = await invoke(self.specs[request["params"]["name"]], self.runtime, self.run, caller,
                              request["params"].get("arguments") or {})
        await _respond(send, request["id"], '{"content":[{"text":' + wire_json.quoted(answer.text) + ',"type":"text"}],'
                       '"isError":' + ("true" if answer.error else "false")
                       + self._envelope_tail(version, answer.text) + "}")

    def _envelope_tail(self, version: str, structured: str) -> str:
        """What follows isError in the SDK's result: structuredContent, and at a modern version
        resultType and the serverInfo stamp as well (in the SDK's key order)."""
        content = ',"structuredContent":' + structured
        if version in MODERN_PROTOCOL_VERSIONS:
            return ',"resultType":"complete"' + content + ',"_meta":' + self.stamp
        return content

    async def _list_tools(self, scope: Scope, receive: Receive, send: Send, request: dict[str, Any],
                          version: str) -> None:
        cached = self.tool_lists.get(version)
        if cached is not None:
            await _respond(send, request["id"], cached)
            return
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)
            await send(message)

        await self.sdk(scope, receive, capture)
        if captured and captured[0].get("status") == 200:
            reply = json.loads(b"".join(m.get("body", b"") for m in captured[1:]))
            if "result" in reply:
                self.tool_lists[version] = wire_json.dumps(reply["result"])


def _allowed(value: str | None, allowed: list[str]) -> bool:
    """Exact match, or `name:*` matching any port: the SDK's rule for Host and Origin."""
    if not value:
        return False
    return value in allowed or any(a.endswith(":*") and value.startswith(a[:-1]) for a in allowed)


def _envelope_matches(meta: Any, version: str, method: str, params: dict[str, Any],
                      routing: dict[str, str]) -> bool:
    """Modern: the SDK's ladder (envelope keys, routing headers equal to the body). Handshake
    era: no modern envelope, since one would make the SDK treat the request differently."""
    if version not in MODERN_PROTOCOL_VERSIONS:
        return meta is None or (isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY not in meta)
    return (isinstance(meta, dict) and meta.get(PROTOCOL_VERSION_META_KEY) == version
            and CLIENT_CAPABILITIES_META_KEY in meta and routing.get("mcp-method") == method
            and (method != "tools/call" or routing.get("mcp-name") == params.get("name")))


def _eligible(request: Any, version: str, routing: dict[str, str]) -> dict[str, Any] | None:
    """The decoded request when it passes every rung of the SDK's inbound ladder, else None."""
    if not isinstance(request, dict) or request.keys() - _ENVELOPE_KEYS or request.get("jsonrpc") != "2.0":
        return None
    method, params, request_id = request.get("method"), request.get("params"), request.get("id")
    if method not in _PARAM_KEYS or not isinstance(params, dict) or params.keys() - _PARAM_KEYS[method]:
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, (int, str)):
        return None
    arguments = params.get("arguments")
    if method == "tools/call" and (not isinstance(arguments, dict | None) or CONTEXT_KWARG in (arguments or {})):
        return None
    if not _envelope_matches(params.get("_meta"), version, method, params, routing):
        return None
    # Whatever the SDK's schema would refuse, or might, it should refuse in its own words.
    return request if servable_params(method, version, params) else None


async def _respond(send: Send, request_id: int | str, result: str) -> None:
    payload = ('{"jsonrpc":"2.0","id":' + json.dumps(request_id) + ',"result":' + result + "}").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", _JSON)]})
    await send({"type": "http.response.body", "body": payload})
