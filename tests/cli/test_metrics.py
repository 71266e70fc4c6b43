"""`/metrics` (CACHEBASH_METRICS=1): off by default; counts tool calls and errors by tool with
their latency, whichever path served them, and reports queue depths and waiting calls."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from support.cli_runner import Cli
from support.server import Agent, ServerProcess

pytestmark = pytest.mark.anyio


def _value(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from:\n{text}"
    return float(found.group(1))


@pytest.mark.parametrize("fast_path", ["1", "0"])
async def test_metrics_count_tool_calls_and_depths(tmp_path: Path, fast_path: str) -> None:
    server = ServerProcess(tmp_path / "data", env={"CACHEBASH_METRICS": "1",
                                                   "CACHEBASH_MCP_FAST_PATH": fast_path}).start()
    try:
        key = Cli(tmp_path).ok("keys", "create", "--program", "lead").strip()
        async with Agent(server.url, key) as lead:
            await lead.call("create_task", title="One", target="lead")
            await lead.call("create_task", title="Two", target="lead")
            await lead.fail("claim_task", taskId="doesnotexist")
        text = httpx.get(server.base + "/metrics").text
    finally:
        server.stop()
    assert _value(text, 'cachebash_tool_calls_total{tool="create_task"}') == 2
    assert _value(text, 'cachebash_tool_errors_total{tool="claim_task"}') == 1
    assert 'cachebash_tool_errors_total{tool="create_task"}' not in text
    assert _value(text, 'cachebash_tool_seconds_count{tool="create_task"}') == 2
    assert _value(text, 'cachebash_tasks{state="queued",tenant="default"}') == 2
    assert _value(text, "cachebash_waiting_calls") == 0
    assert _value(text, 'cachebash_outbox_pending{tenant="default"}') >= 0


def test_metrics_are_off_unless_enabled(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        assert httpx.get(server.base + "/metrics").status_code == 404
    finally:
        server.stop()


def test_metrics_take_an_admin_key_off_loopback(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"CACHEBASH_METRICS": "1", "CACHEBASH_HOST": "0.0.0.0"}).start()
    try:
        agent = Cli(tmp_path).ok("keys", "create", "--program", "lead").strip()
        assert httpx.get(server.base + "/metrics").status_code == 401
        assert httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {agent}"}).status_code == 403
        admin = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {server.admin_key}"})
        assert admin.status_code == 200 and "cachebash_waiting_calls" in admin.text
    finally:
        server.stop()
