"""The HTTP fast path answers exactly as the MCP SDK does: the same requests to a server with
it and to one without it (CACHEBASH_MCP_FAST_PATH=0) get the same status and JSON body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import ServerProcess

VERSION = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    fast = ServerProcess(tmp_path_factory.mktemp("fast") / "data").start()
    sdk = ServerProcess(tmp_path_factory.mktemp("sdk") / "data", env={"CACHEBASH_MCP_FAST_PATH": "0"}).start()
    yield fast, sdk
    fast.stop()
    sdk.stop()


def _post(server: ServerProcess, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    base = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": VERSION}
    if isinstance(body, dict) and "method" in body:
        base["Mcp-Method"] = body["method"]
        if isinstance(body.get("params"), dict) and "name" in body["params"]:
            base["Mcp-Name"] = str(body["params"]["name"])
    response = httpx.post(server.url, content=json.dumps(body), headers={**base, **(headers or {})}, timeout=10)
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else response.text


def _call(name: str, arguments: Any, request_id: Any = 7, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": META, **params}}


CASES = {
    "list tools": {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}},
    "list tools again (cached)": {"jsonrpc": "2.0", "id": "two", "method": "tools/list", "params": {"_meta": META}},
    "a read": _call("get_tasks", {}),
    "a string id": _call("list_groups", {}, request_id="abc"),
    "state of another program": _call("get_program_state", {"programId": "nobody"}),
    "an invalid argument": _call("get_tasks", {"limit": 500}),
    "an unknown argument": _call("get_tasks", {"bogus": 1}),
    "a missing argument": _call("get_task", {}),
    "a domain error": _call("get_task", {"taskId": "nope"}),
    "no arguments at all": _call("list_groups", None),
    "an unknown tool": _call("no_such_tool", {}),
    "arguments not an object": _call("get_tasks", [1, 2]),
    "a bad id": _call("get_tasks", {}, request_id=None),
    "an extra param": _call("get_tasks", {}, task={"ttl": 1}),
    "a batch": [_call("get_tasks", {})],
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_as_the_sdk(servers: tuple[ServerProcess, ServerProcess], case: str) -> None:
    fast, sdk = servers
    assert _post(fast, CASES[case]) == _post(sdk, CASES[case])


@pytest.mark.parametrize("headers", [
    {"Mcp-Name": "get_task"},  # routing header disagrees with the body
    {"Mcp-Method": "tools/list"},
    {"MCP-Protocol-Version": "2025-06-18"},  # a handshake-era version: the SDK's legacy path
    {"Accept": "text/event-stream"},
    {"Content-Type": "text/plain"},
])
def test_same_refusals_as_the_sdk(servers: tuple[ServerProcess, ServerProcess], headers: dict[str, str]) -> None:
    fast, sdk = servers
    assert _post(fast, _call("get_tasks", {}), headers) == _post(sdk, _call("get_tasks", {}), headers)


def test_results_carry_the_contract(servers: tuple[ServerProcess, ServerProcess]) -> None:
    status, reply = _post(servers[0], _call("get_task", {"taskId": "nope"}))
    result = reply["result"]
    assert status == 200 and result["isError"] is True and result["structuredContent"]["success"] is False
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
