"""A cold `mcp` function instance imports only what its requests need: /health and the tool calls
the fast path answers import nothing of the MCP SDK (issue 16: importing it was half of a cold
start); the first request the fast path hands on imports it then, and gets the SDK's answer.
Behaviour, not timing: the timing is `cachebash bench --workload coldstart`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.gcp import MAIN

BIN = Path(sys.executable).parent
MODERN = "2026-07-28"

# Runs in a fresh interpreter, as an instance starts: the entry point, then requests in turn,
# noting after each which modules of the SDK (the `mcp` and `mcp_types` packages) are loaded.
INSTANCE = """
import json, sys
import functions_framework
from starlette.testclient import TestClient

def sdk_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("mcp", "mcp_types"))

requests = json.loads(sys.argv[2])
seen = []
with TestClient(functions_framework.create_app("mcp", sys.argv[1], "http")) as client:
    seen.append({"step": "started", "sdk": sdk_modules()})
    for step in requests:
        answer = client.request(step["method"], step["path"], content=step.get("body"), headers=step.get("headers"))
        seen.append({"step": step["step"], "status": answer.status_code, "body": answer.json(), "sdk": sdk_modules()})
print(json.dumps(seen))
"""


def _tool_call(key: str, tool: str, version: str | None, request_id: int) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": {}}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    if version == MODERN:
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN,
                           "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                           "io.modelcontextprotocol/clientCapabilities": {"roots": {"listChanged": True}}}
        headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool})
    elif version is not None:
        headers["MCP-Protocol-Version"] = version
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    return {"method": "POST", "path": "/v1/mcp", "body": json.dumps(body), "headers": headers}


def _instance(tmp_path: Path, steps: Callable[[str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """What a fresh instance answered to each of `steps(key)`, with an admin key in its store."""
    data = tmp_path / "data"
    env = {**os.environ, "CACHEBASH_STORE": "sqlite", "CACHEBASH_DATA_DIR": str(data), "CACHEBASH_BUS": "inprocess",
           "CACHEBASH_NOTIFIER": "log", "GOOGLE_CLOUD_PROJECT": "demo-cold-start"}
    key = subprocess.run([str(BIN / "cachebash"), "keys", "create", "--program", "lead", "--admin", "--data-dir",
                          str(data)], capture_output=True, text=True, check=True, env=env).stdout.strip()
    done = subprocess.run([sys.executable, "-c", INSTANCE, MAIN, json.dumps(steps(key))], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_health_and_fast_path_calls_import_nothing_of_the_sdk(tmp_path: Path) -> None:
    seen = _instance(tmp_path, lambda key: [
        {"step": "health", "method": "GET", "path": "/health"},
        {"step": "modern call", **_tool_call(key, "get_tasks", MODERN, 1)},
        {"step": "handshake-era call", **_tool_call(key, "list_groups", "2025-06-18", 2)},
        {"step": "call without a version header", **_tool_call(key, "get_program_state", None, 3)},
    ])
    assert [s["sdk"] for s in seen] == [[]] * 5, seen
    health, *calls = seen[1:]
    assert health["status"] == 200 and health["body"]["status"] == "ok"
    for call in calls:
        result = call["body"]["result"]
        assert call["status"] == 200 and result["isError"] is False, call
        assert result["structuredContent"]["success"] is True


def test_the_first_request_the_fast_path_hands_on_imports_the_sdk_then(tmp_path: Path) -> None:
    """tools/list's first answer comes from the SDK (later ones reuse it); an unknown tool's
    refusal too. Both work on an instance that had not imported the SDK before them."""
    def steps(key: str) -> list[dict[str, Any]]:
        tools_list = _tool_call(key, "get_tasks", MODERN, 3)
        body = json.loads(tools_list["body"])
        body.update(method="tools/list", params={"_meta": body["params"]["_meta"]})
        headers = {k: v for k, v in tools_list["headers"].items() if k != "Mcp-Name"}
        return [{"step": "call", **_tool_call(key, "get_tasks", MODERN, 1)},
                {"step": "unknown tool", **_tool_call(key, "no_such_tool", MODERN, 2)},
                {"step": "tools/list", **tools_list, "body": json.dumps(body),
                 "headers": {**headers, "Mcp-Method": "tools/list"}}]

    seen = _instance(tmp_path, steps)
    call, unknown, listed = seen[1:]
    assert call["status"] == 200 and call["sdk"] == []
    assert "mcp" in unknown["sdk"], "an unknown tool is the SDK's to refuse"
    assert unknown["body"]["result"]["structuredContent"]["error"]["code"] == "UNKNOWN_TOOL"
    assert listed["status"] == 200 and "get_tasks" in {t["name"] for t in listed["body"]["result"]["tools"]}
