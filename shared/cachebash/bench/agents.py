"""Agents: each is one MCP client with its own API key (so its own program), timing every call.

Two clients speak to the server. `lean` (the default) sends exactly the requests the official
MCP client sends (2026-07-28 per-request envelope, same headers) from prebuilt bytes, so the
load generator costs little CPU next to the server it measures. `sdk` is the official client
(`mcp.Client` over streamable HTTP) for a realism check; on a 2-core machine it spends more
CPU per call than the server, so its figures mostly measure itself.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)
from mcp_types.version import LATEST_MODERN_VERSION

from cachebash.bench.http import Connection
from cachebash.bench.stats import Recorder

CLIENTS = ("lean", "sdk")
ECHO_PATH = "/bench/echo"
_META = {
    PROTOCOL_VERSION_META_KEY: LATEST_MODERN_VERSION,
    CLIENT_INFO_META_KEY: {"name": "cachebash-bench", "version": "1"},
    CLIENT_CAPABILITIES_META_KEY: {},
}
_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": LATEST_MODERN_VERSION,
}


class ProtocolError(AssertionError):
    """The server's answer broke the MCP tool-result contract; the benchmark stops."""


class Agent(Protocol):
    program: str
    recorder: Recorder

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def request_body(request_id: int, tool: str, arguments: dict[str, Any]) -> bytes:
    envelope = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments, "_meta": _META}}
    return json.dumps(envelope, separators=(",", ":")).encode()


def check_result(tool: str, result: Any) -> dict[str, Any]:
    """The structured body, after checking the parts every agent relies on agree."""
    body = result.get("structuredContent") if isinstance(result, dict) else None
    if not isinstance(body, dict) or "success" not in body:
        raise ProtocolError(f"{tool}: no structuredContent in {str(result)[:300]}")
    if result.get("isError", False) != (body["success"] is False):
        raise ProtocolError(f"{tool}: isError disagrees with success in {str(result)[:300]}")
    if json.loads(result["content"][0]["text"]) != body:
        raise ProtocolError(f"{tool}: text content differs from structuredContent")
    return body


class LeanAgent:
    """The default agent: the official client's requests (same envelope, same headers), not its CPU cost."""

    def __init__(self, url: str, key: str, program: str, recorder: Recorder) -> None:
        self.program = program
        self.recorder = recorder
        self._conn = Connection(url, {"Authorization": f"Bearer {key}", **_HEADERS})
        self._id = 0

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self._id += 1
        body = request_body(self._id, tool, arguments)
        extra = b"Mcp-Method: tools/call\r\nMcp-Name: " + tool.encode() + b"\r\n"
        started = time.perf_counter()
        status, payload = await self._conn.post(body, extra)
        elapsed = time.perf_counter() - started
        reply = json.loads(payload) if payload else None
        if status != 200 or not isinstance(reply, dict) or reply.get("id") != self._id or "result" not in reply:
            raise ProtocolError(f"{tool}: HTTP {status}: {payload[:300]!r}")
        result = check_result(tool, reply["result"])
        self.recorder.add(tool, elapsed, bool(result["success"]))
        return result

    async def close(self) -> None:
        await self._conn.close()


class SdkAgent:
    """The official MCP client, as an agent in Claude Code or Cursor would connect."""

    def __init__(self, url: str, key: str, program: str, recorder: Recorder) -> None:
        self.program = program
        self.recorder = recorder
        self.url = url
        self.key = key
        self._client: Any = None
        self._http: Any = None

    async def open(self) -> SdkAgent:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        self._http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.key}"}, timeout=60)
        self._client = Client(streamable_http_client(self.url, http_client=self._http))
        await self._client.__aenter__()
        return self

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        started = time.perf_counter()
        result = await self._client.call_tool(tool, arguments)
        elapsed = time.perf_counter() - started
        body = check_result(tool, result.model_dump(by_alias=True, mode="json"))
        self.recorder.add(tool, elapsed, bool(body["success"]))
        return body

    async def close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            await self._http.aclose()


class EchoAgent:
    """The baseline: the same client posting the same bytes to a route that only echoes them."""

    def __init__(self, base_url: str, key: str, recorder: Recorder, client: str = "lean") -> None:
        self.recorder = recorder
        self.url = base_url + ECHO_PATH
        self.client = client
        self._conn = Connection(self.url, {"Authorization": f"Bearer {key}", **_HEADERS})
        self._body = request_body(1, "get_tasks", {})
        self._http: Any = None

    async def echo(self) -> None:
        started = time.perf_counter()
        if self.client == "sdk":
            if self._http is None:
                import httpx2

                self._http = httpx2.AsyncClient(headers={"Content-Type": "application/json", **_HEADERS})
            response = await self._http.post(self.url, content=self._body)
            status, payload = response.status_code, response.content
        else:
            status, payload = await self._conn.post(self._body, b"Mcp-Method: tools/call\r\nMcp-Name: get_tasks\r\n")
        self.recorder.add("echo", time.perf_counter() - started)
        if status != 200 or json.loads(payload)["id"] != 1:
            raise ProtocolError(f"echo: HTTP {status}: {payload[:200]!r}")

    async def close(self) -> None:
        await self._conn.close()
        if self._http is not None:
            await self._http.aclose()


async def open_agent(client: str, url: str, key: str, program: str, recorder: Recorder) -> Agent:
    if client == "sdk":
        return await SdkAgent(url, key, program, recorder).open()
    return LeanAgent(url, key, program, recorder)
