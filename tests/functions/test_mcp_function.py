"""The `mcp` Cloud Function: the same MCP endpoint as `cachebash serve`, served by
functions-framework's async (ASGI) support."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cachebash import cloud
from cachebash.domain.programs import CreateKey
from cachebash.services import keys
from cachebash.services.runtime import Runtime
from support.backends import Emulators
from support.gcp import MAIN
from support.server import Agent, function_process

pytestmark = pytest.mark.anyio
BIN = Path(sys.executable).parent
CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "create_task", "arguments": {"title": "from the function", "target": "builder"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_mcp_through_functions_framework_test_client(cloud_env: Runtime) -> None:
    import functions_framework

    key = keys.issue_key(cloud_env, "default", CreateKey(programId="lead", admin=True), "test")["apiKey"]
    with TestClient(functions_framework.create_app("mcp", MAIN, "http")) as client:
        assert client.post("/v1/mcp", json=CALL, headers=HEADERS).status_code == 401
        answer = client.post("/v1/mcp", json=CALL, headers={**HEADERS, "Authorization": f"Bearer {key}"})
        assert answer.status_code == 200
        result: dict[str, Any] = answer.json()["result"]
        assert result["isError"] is False and result["structuredContent"]["status"] == "created"
    cloud.reset()


@pytest.fixture
def function_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`functions-framework --target mcp` in its own process, as Cloud Run runs it."""
    data = tmp_path / "data"
    env = {**os.environ, "CACHEBASH_STORE": "sqlite", "CACHEBASH_DATA_DIR": str(data), "CACHEBASH_BUS": "inprocess",
           "CACHEBASH_NOTIFIER": "log"}
    key = subprocess.run([str(BIN / "cachebash"), "keys", "create", "--program", "lead", "--admin", "--data-dir",
                          str(data)], capture_output=True, text=True, check=True, env=env).stdout.strip()
    with function_process("mcp", env) as base:
        yield f"{base}/v1/mcp", key


async def test_official_mcp_client_against_the_function(function_server: tuple[str, str]) -> None:
    url, key = function_server
    async with Agent(url, key) as lead:
        builder_key = (await lead.call("create_key", programId="builder"))["apiKey"]
        task = await lead.call("create_task", title="via Cloud Function", target="builder")
    async with Agent(url, builder_key) as builder:
        claimed = await builder.call("claim_task", taskId=task["taskId"])
        assert claimed["claimedBy"] == "builder"
        assert (await builder.fail("claim_task", taskId=task["taskId"]))["code"] == "ALREADY_CLAIMED"


async def test_a_waiter_on_the_same_cloud_instance_is_woken_at_once(tmp_path: Path, emulators: Emulators) -> None:
    """The cloud runtime (Pub/Sub bus, Firestore) wakes its own waiting callers when it commits a
    change; without that, a waiter would find the message only at its next poll (0.5 s, 1.5 s, 3.5 s…)."""
    found = emulators.get("firestore-google")
    env = {**os.environ, "CACHEBASH_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": found.host,
           "GOOGLE_CLOUD_PROJECT": f"demo-{uuid.uuid4().hex[:10]}", "CACHEBASH_BUS": "pubsub",
           "CACHEBASH_NOTIFIER": "log", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9"}  # a direct message publishes nothing
    key = subprocess.run([str(BIN / "cachebash"), "keys", "create", "--program", "lead", "--admin"],
                         capture_output=True, text=True, check=True, env=env).stdout.strip()
    with function_process("mcp", env) as base:
        url = f"{base}/v1/mcp"
        async with Agent(url, key) as lead:
            builder_key = (await lead.call("create_key", programId="builder"))["apiKey"]
            async with Agent(url, builder_key) as builder:
                waiting = asyncio.ensure_future(builder.call("get_messages", wait_seconds=20))
                await asyncio.sleep(2.0)  # between the waiter's polls at 1.5 s and 3.5 s
                await lead.call("send_message", target="builder", message="now")
                sent = time.monotonic()
                got = await waiting
                woken = time.monotonic() - sent
    assert got["count"] == 1
    assert woken < 0.5, f"woken {woken * 1000:.0f} ms after the send returned (the next poll is 1.5 s away)"
