"""The HTTP fast path answers exactly as the MCP SDK does: the same requests to a server with
it and to one without it (CACHEBASH_MCP_FAST_PATH=0) get the same status and JSON body, at
the per-request-envelope version and at every handshake-era version (header or none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.server import ServerProcess

MODERN = "2026-07-28"
VERSIONS = [MODERN, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", None]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    fast = ServerProcess(tmp_path_factory.mktemp("fast") / "data").start()
    sdk = ServerProcess(tmp_path_factory.mktemp("sdk") / "data", env={"CACHEBASH_MCP_FAST_PATH": "0"}).start()
    yield fast, sdk
    fast.stop()
    sdk.stop()


def _request(version: str | None, method: str, params: dict[str, Any], request_id: Any = 7) -> dict[str, Any]:
    if version == MODERN:
        params = {**params, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                                      "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                      "io.modelcontextprotocol/clientCapabilities": {}}}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _post(server: ServerProcess, version: str | None, body: Any,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    base = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"}
    if version is not None:
        base["MCP-Protocol-Version"] = version
    if version == MODERN and isinstance(body, dict):
        base["Mcp-Method"] = str(body.get("method"))
        if isinstance(body.get("params"), dict) and "name" in body["params"]:
            base["Mcp-Name"] = str(body["params"]["name"])
    response = httpx.post(server.url, content=json.dumps(body), headers={**base, **(headers or {})}, timeout=10)
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json and response.content else response.text


CASES: dict[str, tuple[str, dict[str, Any], Any]] = {
    "list tools": ("tools/list", {}, 1),
    "list tools again (cached)": ("tools/list", {}, "two"),
    "a read": ("tools/call", {"name": "get_tasks", "arguments": {}}, 7),
    "a string id": ("tools/call", {"name": "list_groups", "arguments": {}}, "abc"),
    "state of another program": ("tools/call", {"name": "get_program_state", "arguments": {"programId": "x"}}, 7),
    "an invalid argument": ("tools/call", {"name": "get_tasks", "arguments": {"limit": 500}}, 7),
    "an unknown argument": ("tools/call", {"name": "get_tasks", "arguments": {"bogus": 1}}, 7),
    "a missing argument": ("tools/call", {"name": "get_task", "arguments": {}}, 7),
    "a domain error": ("tools/call", {"name": "get_task", "arguments": {"taskId": "nope"}}, 7),
    "no arguments at all": ("tools/call", {"name": "list_groups", "arguments": None}, 7),
    "an unknown tool": ("tools/call", {"name": "no_such_tool", "arguments": {}}, 7),
    "arguments not an object": ("tools/call", {"name": "get_tasks", "arguments": [1, 2]}, 7),
    "a null id": ("tools/call", {"name": "get_tasks", "arguments": {}}, None),
    "an extra param": ("tools/call", {"name": "get_tasks", "arguments": {}, "task": {"ttl": 1}}, 7),
    "a non-ascii argument": ("tools/call", {"name": "get_task", "arguments": {"taskId": "tâche"}}, 7),
    "an argument named ctx": ("tools/call", {"name": "get_tasks", "arguments": {"ctx": 1}}, 7),
    "an argument named like the SDK's context": ("tools/call", {"name": "get_tasks",
                                                                "arguments": {"_cachebash_request_context": 1}}, 7),
    "a parameter in its other spelling": ("tools/call", {"name": "get_tasks", "arguments": {"waitSeconds": 0}}, 7),
    "a misspelt parameter": ("tools/call", {"name": "get_task", "arguments": {"taskID": "x", "task_i": "y"}}, 7),
    "both spellings of one parameter": ("tools/call", {"name": "get_task",
                                                       "arguments": {"taskId": "x", "task_id": "y"}}, 7),
    "a list sent as JSON text": ("tools/call", {"name": "create_sprint", "arguments": {  # refused inside the list
        "projectName": "p", "stories": '[{"id": "s1", "title": "one", "wav": 2}]'}}, 7),
    "JSON text that is not a list": ("tools/call", {"name": "create_key",
                                                    "arguments": {"programId": "differential", "groups": "{}"}}, 7),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_as_the_sdk(servers: tuple[ServerProcess, ServerProcess], case: str, version: str | None) -> None:
    fast, sdk = servers
    body = _request(version, *CASES[case])
    assert _post(fast, version, body) == _post(sdk, version, body)


def test_a_batch_goes_to_the_sdk(servers: tuple[ServerProcess, ServerProcess]) -> None:
    fast, sdk = servers
    batch = [_request(MODERN, "tools/call", {"name": "get_tasks", "arguments": {}})]
    assert _post(fast, MODERN, batch) == _post(sdk, MODERN, batch)


@pytest.mark.parametrize("headers", [
    {"Mcp-Name": "get_task"},  # routing header disagrees with the body
    {"Mcp-Method": "tools/list"},
    {"MCP-Protocol-Version": "2025-06-18"},  # modern envelope, handshake-era header
    {"MCP-Protocol-Version": "2099-01-01"},
    {"Accept": "text/event-stream"},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/json; charset=utf-8"},
    {"Host": "evil.example:8080"},
])
def test_same_refusals_as_the_sdk(servers: tuple[ServerProcess, ServerProcess], headers: dict[str, str]) -> None:
    fast, sdk = servers
    body = _request(MODERN, "tools/call", {"name": "get_tasks", "arguments": {}})
    assert _post(fast, MODERN, body, headers) == _post(sdk, MODERN, body, headers)


def test_unknown_arguments_are_refused_on_both_paths(servers: tuple[ServerProcess, ServerProcess]) -> None:
    for server in servers:
        _, reply = _post(server, MODERN, _request(MODERN, "tools/call", {"name": "get_tasks", "arguments": {"ctx": 1}}))
        assert reply["result"]["structuredContent"]["error"]["code"] == "VALIDATION_ERROR"


def test_results_carry_the_contract(servers: tuple[ServerProcess, ServerProcess]) -> None:
    status, reply = _post(servers[0], MODERN, _request(MODERN, "tools/call", {"name": "get_task",
                                                                               "arguments": {"taskId": "nope"}}))
    result = reply["result"]
    assert status == 200 and result["isError"] is True and result["structuredContent"]["success"] is False
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def _raw_call(version: str | None, tool: str, arguments: str) -> bytes:
    """A tools/call body whose arguments are raw JSON text (so it can hold any token)."""
    request = _request(version, "tools/call", {"name": tool, "arguments": "__ARGUMENTS__"})
    return json.dumps(request).replace('"__ARGUMENTS__"', arguments).encode()


def _post_raw(server: ServerProcess, version: str | None, raw: bytes, tool: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    if version == MODERN:
        headers.update({"Mcp-Method": "tools/call", "Mcp-Name": tool})
    response = httpx.post(server.url, content=raw, headers=headers, timeout=10)
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    return response.status_code, response.json()


# Bodies that Python's json module and the SDK's parsers (pydantic-core's, and Python's at
# 2026-07-28) used to read differently: the edge now decides them once, for both paths.
RAW_CASES: dict[str, tuple[str, str]] = {
    "a lone surrogate": ("get_task", '{"taskId":"\\ud800"}'),
    "a lone surrogate in a key": ("get_task", '{"\\udc00":"x"}'),
    "a surrogate pair": ("get_task", '{"taskId":"\\ud83d\\ude00"}'),
    "nesting deeper than the SDK's parser allows": ("get_task", '{"taskId":' + "[" * 250 + "]" * 250 + "}"),
    "nesting deeper than Python's parser allows": ("get_task", '{"taskId":' + "[" * 3000 + "]" * 3000 + "}"),
    "NaN": ("get_tasks", '{"limit":NaN}'),
    "Infinity": ("complete_task", '{"taskId":"x","completed_status":"SUCCESS","cost_usd":Infinity}'),
    "-Infinity": ("complete_task", '{"taskId":"x","completed_status":"SUCCESS","cost_usd":-Infinity}'),
    "a number that overflows": ("complete_task", '{"taskId":"x","completed_status":"SUCCESS","cost_usd":1e400}'),
    "a huge integer": ("get_tasks", '{"limit":1' + "0" * 5000 + "}"),
    "a control character": ("get_task", '{"taskId":"a\x01"}'),
    "duplicate keys": ("get_task", '{"taskId":"a","taskId":"b"}'),
    "trailing garbage": ("get_task", '{"taskId":"a"} x'),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(RAW_CASES))
def test_same_answer_to_malformed_bodies(servers: tuple[ServerProcess, ServerProcess], case: str,
                                         version: str | None) -> None:
    fast, sdk = servers
    tool, arguments = RAW_CASES[case]
    raw = _raw_call(version, tool, arguments)
    assert _post_raw(fast, version, raw, tool) == _post_raw(sdk, version, raw, tool)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\xff"], ids=["a byte order mark", "invalid UTF-8"])
def test_same_answer_to_undecodable_bodies(servers: tuple[ServerProcess, ServerProcess], prefix: bytes,
                                           version: str | None) -> None:
    fast, sdk = servers
    raw = prefix + _raw_call(version, "get_tasks", "{}")
    assert _post_raw(fast, version, raw, "get_tasks") == _post_raw(sdk, version, raw, "get_tasks")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_tokens_are_a_parse_error_naming_them(servers: tuple[ServerProcess, ServerProcess],
                                                         token: str, version: str | None) -> None:
    for server in servers:
        status, reply = _post_raw(server, version, _raw_call(version, "get_tasks", '{"limit":' + token + "}"),
                                  "get_tasks")
        assert status == 400 and reply["id"] is None and reply["error"]["code"] == -32700
        assert reply["error"]["message"].startswith(f"Parse error: {token} is not a JSON number")


# `_meta` shapes the fast path checks with its own code (interface/protocol.py) instead of the
# SDK's schema: the ones it serves and the ones it hands on must get the SDK's answer alike.
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CASES: dict[str, tuple[str | None, dict[str, Any] | None]] = {
    "the official client's capabilities": (MODERN, {**ENVELOPE, CAPABILITIES: {
        "roots": {"listChanged": True}, "sampling": {}, "elicitation": {"form": {}, "url": {}}}}),
    "capabilities not an object": (MODERN, {**ENVELOPE, CAPABILITIES: []}),
    "a capability of the wrong shape": (MODERN, {**ENVELOPE, CAPABILITIES: {"experimental": {"x": 1}}}),
    "no capabilities": (MODERN, {"io.modelcontextprotocol/protocolVersion": MODERN}),
    "client info without a version": (MODERN, {**ENVELOPE, "io.modelcontextprotocol/clientInfo": {"name": "t"}}),
    "an unknown log level": (MODERN, {**ENVELOPE, "io.modelcontextprotocol/logLevel": "loud"}),
    "a progress token": (MODERN, {**ENVELOPE, "progressToken": "p1"}),
    "a progress token that is a float": (MODERN, {**ENVELOPE, "progressToken": 1.5}),
    "a handshake-era progress token": ("2025-06-18", {"progressToken": 3}),
    "a handshake-era progress token that is a list": ("2025-06-18", {"progressToken": [3]}),
    "a handshake-era meta that is not an object": ("2025-06-18", None),
}


@pytest.mark.parametrize("case", list(META_CASES))
def test_same_answer_to_unusual_meta(servers: tuple[ServerProcess, ServerProcess], case: str) -> None:
    fast, sdk = servers
    version, meta = META_CASES[case]
    body = _request(None, "tools/call", {"name": "get_tasks", "arguments": {}, "_meta": meta if meta is not None
                                         else "not an object"})
    assert _post(fast, version, body) == _post(sdk, version, body)
