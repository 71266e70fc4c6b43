"""Durability across restarts, and the CLI a person uses to start and manage the server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.server import BIN, Agent, ServerEnv, ServerProcess

pytestmark = pytest.mark.anyio


async def test_task_survives_a_restart(tmp_path: Path, server_env: ServerEnv) -> None:
    env = server_env()  # the same data directory, or the same Firestore project, both times
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        assert server.admin_key and "cachebash connect --program" in "".join(server.output), \
            "first start shows how to connect agents"
        async with Agent(server.url, server.admin_key) as admin:
            builder_key = (await admin.call("create_key", programId="builder"))["apiKey"]
            task = await admin.call("create_task", title="Survive the restart", target="builder", priority="high")
            await admin.call("send_message", target="builder", message="also me")
    finally:
        server.stop()

    again = ServerProcess(tmp_path / "data", env=env).start()
    try:
        assert again.admin_key is None, "no new admin key once keys exist"
        async with Agent(again.url, builder_key) as builder:
            queue = await builder.call("get_tasks")
            assert [(t["taskId"], t["title"], t["priority"]) for t in queue["tasks"]] == [
                (task["taskId"], "Survive the restart", "high")]
            assert (await builder.call("claim_task", taskId=task["taskId"]))["status"] == "claimed"
            assert [m["message"] for m in (await builder.call("get_messages"))["messages"]] == ["also me"]
    finally:
        again.stop()


def test_keys_cli_prints_key_last_and_hints_to_stderr(tmp_path: Path, server_env: ServerEnv) -> None:
    data = str(tmp_path / "data")
    env = {**os.environ, **server_env()}
    done = subprocess.run([str(BIN / "cachebash"), "keys", "create", "--program", "builder", "--label", "B",
                           "--group", "builders", "--group", "council", "--data-dir", data],
                          capture_output=True, text=True, check=True, env=env)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cb_")
    assert "builders, council" in done.stderr
    listing = subprocess.run([str(BIN / "cachebash"), "keys", "list", "--data-dir", data],
                             capture_output=True, text=True, check=True, env=env).stdout
    header, row = listing.splitlines()
    key_id = row.split()[0]
    assert header.split()[:3] == ["KEY", "ID", "PROGRAM"]
    assert row.split()[1:5] == ["builder", "builders,council", "agent", "active"]
    subprocess.run([str(BIN / "cachebash"), "keys", "revoke", key_id, "--data-dir", data], check=True,
                   capture_output=True, env=env)
    listing = subprocess.run([str(BIN / "cachebash"), "keys", "list", "--data-dir", data],
                             capture_output=True, text=True, check=True, env=env).stdout
    assert "revoked" in listing
    bad = subprocess.run([str(BIN / "cachebash"), "keys", "create", "--program", "all", "--data-dir", data],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "reserved" in bad.stderr


def test_first_start_labels_the_admin_key_as_the_persons(tmp_path: Path, server_env: ServerEnv) -> None:
    server = ServerProcess(tmp_path / "data", env=server_env()).start()
    try:
        text = "".join(server.output)
        assert "It is yours, the person's" in text and f"  {server.admin_key}\n" in text
        connects = [line.strip() for line in text.splitlines() if line.strip().startswith("cachebash connect")]
        assert len(connects) == 3 and all("--client" in line for line in connects)
    finally:
        server.stop()
