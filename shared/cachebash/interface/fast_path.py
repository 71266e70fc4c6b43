"""A lean path for the requests agents make all day: stateless JSON `tools/call` and
`tools/list` at a per-request-envelope protocol version (2026-07-28, what the official MCP
client speaks).

Why: through the SDK one tool call costs several times what the tool itself costs — per
request it builds a Starlette request, a connection, a dispatch context, a server runner,
an OpenTelemetry span, pydantic models of the request and of the result, validates the
result against the protocol schema and dumps it again (profile in the README's Benchmark
section). None of that changes the answer for a well-formed call.

How it stays compliant: this path serves a request only when it can check cheaply that the
SDK would accept it — every rung of the SDK's inbound ladder (transport security, Accept,
routing headers equal to the body, the envelope's protocol version and capabilities, the
params' schema) — and then answers with exactly what the SDK would send. Anything else
(other methods, other protocol versions, batches, malformed bodies, unknown tools, cursors,
`Mcp-Param-*` headers, oversized bodies) is handed to the SDK untouched, body replayed,
so every error and edge case keeps the SDK's answer. `tools/list` is static, so its first
answer comes from the SDK and later ones reuse that result with the new request id.

What it gives up: no OpenTelemetry span per call (the SDK's is a no-op unless a tracer is
configured). `CACHEBASH_MCP_FAST_PATH=0` turns the path off.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY
from mcp_types import methods as spec_methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cachebash.interface.mcp_server import Runner, invoke
from cachebash.interface.tools import ToolSpec
from cachebash.services.runtime import Caller, Runtime

log = logging.getLogger(__name__)

ENV = "CACHEBASH_MCP_FAST_PATH"
_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS = {"tools/call": frozenset({"name", "arguments", "_meta"}), "tools/list": frozenset({"_meta"})}
_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_JSON = b"application/json"


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


class FastPath:
    def __init__(self, sdk: ASGIApp, runtime: Runtime, specs: list[ToolSpec], run: Runner, *, path: str,
                 security: TransportSecuritySettings, max_body: int, server_info: dict[str, Any]) -> None:
        self.sdk = sdk
        self.runtime = runtime
        self.specs = {spec.name: spec for spec in specs}
        self.run = run
        self.path = path
        self.security = TransportSecurityMiddleware(security)
        self.max_body = max_body
        self.stamp = json.dumps({SERVER_INFO_META_KEY: server_info}, separators=(",", ":"))
        self.tool_lists: dict[str, str] = {}  # protocol version -> the SDK's tools/list result, as JSON

    async def __call__(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> None:
        version = await self._version_if_plain(scope)
        read = _Body()
        body = await read.read(receive, self.max_body) if version else None
        replay = read.replay(receive)
        request = _eligible(body, version, scope) if body is not None and version else None
        if request is None or version is None or (request["method"] == "tools/call"
                                                  and request["params"]["name"] not in self.specs):
            await self.sdk(scope, replay, send)
        elif request["method"] == "tools/list":
            await self._list_tools(scope, replay, send, request, version)
        else:
            await self._call_tool(send, request, caller)

    async def _version_if_plain(self, scope: Scope) -> str | None:
        """The protocol version when the request's headers are ones this path serves, else None."""
        if scope["method"] != "POST" or scope["path"] != self.path:
            return None
        seen: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _HEADERS:
                if name in seen:
                    return None
                seen[name] = value
            elif name.startswith(b"mcp-param-"):
                return None
        version = seen.get(b"mcp-protocol-version", b"").decode("latin-1")
        if version not in MODERN_PROTOCOL_VERSIONS:
            return None
        http = Request(scope)
        if await self.security.validate_request(http, is_post=True) is not None or not check_accept_headers(http)[0]:
            return None
        scope["cachebash.routing"] = {k.decode(): v.decode("latin-1") for k, v in seen.items()}
        return version

    async def _call_tool(self, send: Send, request: dict[str, Any], caller: Caller) -> None:
        name = request["params"]["name"]
        try:
            body, error = await invoke(self.specs[name], self.runtime, self.run, caller,
                                       request["params"].get("arguments") or {})
        except Exception:
            # As the SDK answers a tool that crashed: a generic message, details only in the log.
            log.exception("Tool %r raised an unexpected exception", name)
            crash = json.dumps(f"Error executing tool {name}")
            await _respond(send, request["id"], '{"content":[{"text":' + crash + ',"type":"text"}],"isError":true,'
                           '"resultType":"complete","_meta":' + self.stamp + "}")
            return
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        await _respond(send, request["id"], '{"content":[{"text":' + json.dumps(text) + ',"type":"text"}],"isError":'
                       + ("true" if error else "false") + ',"resultType":"complete","structuredContent":' + text
                       + ',"_meta":' + self.stamp + "}")

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
                self.tool_lists[version] = json.dumps(reply["result"], separators=(",", ":"))


def _eligible(body: bytes, version: str, scope: Scope) -> dict[str, Any] | None:
    """The decoded request when it passes every rung of the SDK's inbound ladder, else None."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(request, dict) or request.keys() - _ENVELOPE_KEYS or request.get("jsonrpc") != "2.0":
        return None
    method, params, request_id = request.get("method"), request.get("params"), request.get("id")
    if method not in _PARAM_KEYS or not isinstance(params, dict) or params.keys() - _PARAM_KEYS[method]:
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, (int, str)):
        return None
    meta = params.get("_meta")
    routing = scope["cachebash.routing"]
    if (not isinstance(meta, dict) or meta.get(PROTOCOL_VERSION_META_KEY) != version
            or CLIENT_CAPABILITIES_META_KEY not in meta or routing.get("mcp-method") != method):
        return None
    if method == "tools/call" and (routing.get("mcp-name") != params.get("name")
                                   or not isinstance(params.get("arguments", {}), dict | None)):
        return None
    try:
        spec_methods.validate_client_request(method, version, params)
    except Exception:  # whatever the SDK would refuse, it should refuse in its own words
        return None
    return request


class _Body:
    """The request messages read so far, to hand to the SDK as if nothing had been read."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.complete = False

    async def read(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None when it is larger than `limit` or the client went away."""
        size = 0
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request":
                return None
            size += len(message.get("body", b""))
            if size > limit:
                return None
            if not message.get("more_body", False):
                self.complete = True
                return b"".join(m.get("body", b"") for m in self.messages)

    def replay(self, receive: Receive) -> Receive:
        pending = list(reversed(self.messages))

        async def replayed() -> Message:
            return pending.pop() if pending else await receive()

        return replayed


async def _respond(send: Send, request_id: int | str, result: str) -> None:
    payload = ('{"jsonrpc":"2.0","id":' + json.dumps(request_id) + ',"result":' + result + "}").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", _JSON)]})
    await send({"type": "http.response.body", "body": payload})
