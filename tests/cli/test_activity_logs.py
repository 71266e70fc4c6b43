"""The server's log is for a person: one line per state change that matters, naming the program
and the task or message; JSON lines with Cloud Logging's severity and labels when asked; no SDK chatter."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from support.cli_runner import Cli
from support.server import Agent, ServerProcess

pytestmark = pytest.mark.anyio
FAST = {"CACHEBASH_SWEEP_SECONDS": "0.1", "CACHEBASH_RETRY_BACKOFF_SECONDS": "0.1",
        "CACHEBASH_MCP_FAST_PATH": "0"}  # the SDK's own path, whose INFO lines must stay out


def _lines_until(server: ServerProcess, pattern: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = "".join(server.output).splitlines()
        if any(re.search(pattern, line) for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n" + "".join(server.output))


async def test_one_line_per_state_change(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env=FAST).start()
    cli = Cli(tmp_path)
    try:
        lead_key = cli.ok("keys", "create", "--program", "lead").strip()
        builder_key = cli.ok("keys", "create", "--program", "builder", "--group", "builders").strip()
        async with Agent(server.url, lead_key) as lead, Agent(server.url, builder_key) as builder:
            task = await lead.call("create_task", title="Fix type error in auth.ts", target="builder")
            await builder.call("claim_next")
            await builder.call("complete_task", taskId=task["taskId"], completed_status="SUCCESS")
            await lead.call("send_message", target="builders", message_type="STATUS", message="standup at 10")
            asked = await builder.call("send_message", target="human", message_type="QUERY", message="Friday?")
            cli.ok("reply", asked["messageId"], "Monday")
            lost = await lead.call("create_task", title="Crashes mid-way", target="builder")
            await builder.call("claim_task", taskId=lost["taskId"], lease_seconds=1)
        short = task["taskId"][:4]
        lines = _lines_until(server, rf"lease lost on {lost['taskId'][:4]}…")
    finally:
        server.stop()
    clock = r"^\d\d:\d\d:\d\d "
    for wanted in [rf"{clock}lead created {short}… \"Fix type error in auth.ts\" for builder$",
                   rf"{clock}builder claimed {short}… \"Fix type error in auth.ts\"$",
                   rf"{clock}builder completed {short}…$",
                   rf"{clock}lead → builders STATUS \w{{4}}… \"standup at 10\"$",
                   rf"{clock}builder → human QUERY {asked['messageId'][:4]}… \"Friday\?\"$",
                   rf"{clock}human answered {asked['messageId'][:4]}…; builder gets the answer$",
                   rf"{clock}lease lost on {lost['taskId'][:4]}…: the holder stopped renewing; back in the queue$"]:
        assert any(re.search(wanted, line) for line in lines), f"{wanted}\n" + "\n".join(lines)
    assert not [line for line in lines if "Terminating session" in line or "session manager" in line]


async def test_json_lines_for_cloud_logging_and_quiet_levels(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={**FAST, "CACHEBASH_LOG_FORMAT": "json"}).start()
    cli = Cli(tmp_path)
    try:
        key = cli.ok("keys", "create", "--program", "lead").strip()
        async with Agent(server.url, key) as lead:
            task = await lead.call("create_task", title="Ship it", target="lead")
        lines = _lines_until(server, '"message": "lead created')
    finally:
        server.stop()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    created = next(e for e in entries if e["message"].startswith("lead created"))
    assert created["severity"] == "NOTICE"
    assert created["message"] == f'lead created {task["taskId"][:4]}… "Ship it" for lead'
    assert created["logging.googleapis.com/labels"] == {"tenant": "default", "program": "lead", "task": task["taskId"]}

    quiet = ServerProcess(tmp_path / "quiet", env={**FAST, "CACHEBASH_LOG": "warning"}).start()
    try:
        key = Cli(tmp_path, env={"CACHEBASH_DATA_DIR": str(tmp_path / "quiet")}).ok(
            "keys", "create", "--program", "lead").strip()
        async with Agent(quiet.url, key) as lead:
            await lead.call("create_task", title="Ship it", target="lead")
    finally:
        quiet.stop()
    assert "created" not in "".join(quiet.output).split("CacheBash serving", 1)[1]
