"""The person's commands through the real binary, next to a real server and real MCP agents:
what the terminal shows is what the agents did, and what the person answers reaches them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest

from cachebash import __version__
from support.cli_runner import Cli, Terminal
from support.server import BIN, Agent, ServerProcess

pytestmark = pytest.mark.anyio


def _key(cachebash: Cli, program: str, *groups: str) -> str:
    args = [arg for group in groups for arg in ("--group", group)]
    return cachebash.ok("keys", "create", "--program", program, *args).strip().splitlines()[-1]


async def test_a_reply_from_the_terminal_wakes_the_waiting_agent(server: ServerProcess, cachebash: Cli) -> None:
    key = _key(cachebash, "builder", "builders")
    async with Agent(server.url, key) as builder:
        asked = await builder.call("send_message", target="human", message_type="QUERY",
                                   message="Ship on Friday or Monday?")
        inbox = json.loads(cachebash.ok("inbox", "--json"))
        assert [(i["id"], i["from"], i["text"], i["open"]) for i in inbox] == [
            (asked["messageId"], "builder", "Ship on Friday or Monday?", True)]
        assert "1" in cachebash.ok("status").split("open questions: ")[1]
        answers: list[dict[str, object]] = []

        async def wait() -> None:
            answers.append(await builder.call("get_messages", wait_seconds=25))

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            with anyio.fail_after(20):  # woken by the reply, long before its 25 s wait ends
                await anyio.sleep(0.3)
                done = await anyio.to_thread.run_sync(
                    lambda: cachebash.ok("reply", asked["messageId"], "Monday, after the review"))
                assert "through the running server" in done and "'builder' gets it" in done
    messages = answers[0]["messages"]
    assert isinstance(messages, list)
    assert [(m["source"], m["message_type"], m["message"], m["reply_to"]) for m in messages] == [
        ("human", "RESULT", "Monday, after the review", asked["messageId"])]
    assert json.loads(cachebash.ok("inbox", "--json")) == []
    again = cachebash("reply", asked["messageId"], "twice")
    assert again.returncode == 2 and again.stderr.startswith("error: message") and "already answered" in again.stderr


async def test_status_tasks_and_messages_show_what_agents_did(server: ServerProcess, cachebash: Cli) -> None:
    lead = _key(cachebash, "lead")
    builder = _key(cachebash, "builder", "builders")
    async with Agent(server.url, lead) as a, Agent(server.url, builder) as b:
        queued = await a.call("create_task", title="Fix type error in auth.ts", target="builder")
        claimed = await a.call("create_task", title="Write the changelog", target="builders")
        await b.call("claim_task", taskId=claimed["taskId"])
        await a.call("send_message", target="builders", message="standup at 10")
    status = json.loads(cachebash.ok("status", "--json"))
    assert status["server"]["running"] is True and status["server"]["url"] == server.url
    assert status["server"]["pid"] == server.proc.pid  # type: ignore[union-attr]
    assert status["programs"] == 3 and status["keys"] == {"active": 3, "revoked": 0}  # admin, lead, builder
    assert (status["tasks"]["queued"], status["tasks"]["active"]) == (1, 1) and status["openQuestions"] == 0
    text = cachebash.ok("status")
    assert re.search(rf"server: running, pid {server.proc.pid}, {re.escape(server.url)}, up ", text)  # type: ignore[union-attr]
    assert "tasks: 1 queued, 1 active, 0 done, 0 dead" in text

    tasks = json.loads(cachebash.ok("tasks", "--json", "--state", "queued"))
    assert [t["taskId"] for t in tasks] == [queued["taskId"]]
    table = cachebash.ok("tasks").splitlines()
    assert table[0].split() == ["TIME", "TASK", "STATUS", "PRIO", "WHO", "TITLE"]
    assert any(claimed["taskId"][:8] in row and "builder" in row and "claimed" in row for row in table[1:])
    assert [m["message"] for m in json.loads(cachebash.ok("messages", "--json", "--to", "builders"))] == [
        "standup at 10"]
    assert json.loads(cachebash.ok("messages", "--json", "--from", "builder")) == []


async def test_keys_rotate_through_the_server(server: ServerProcess, cachebash: Cli) -> None:
    old = _key(cachebash, "builder", "builders")
    async with Agent(server.url, old) as builder:
        await builder.call("get_tasks")
    listed = json.loads(cachebash.ok("keys", "list", "--json"))["keys"]
    mine = next(k for k in listed if k["programId"] == "builder")
    assert mine["groups"] == ["builders"] and mine["lastUsedAt"], "keys list shows groups and last use"
    done = cachebash("keys", "rotate", mine["keyId"])
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip()
    assert new.startswith("cb_") and new != old and "replaces" in done.stderr
    doctor_old = cachebash("doctor", "--key", old)
    assert doctor_old.returncode == 1 and "Failed to connect" in doctor_old.stdout and "revoked" in doctor_old.stdout
    async with Agent(server.url, new) as builder:
        assert (await builder.call("get_tasks"))["success"] is True


async def test_doctor_checks_what_connect_wrote(server: ServerProcess, cachebash: Cli, tmp_path: Path) -> None:
    project = tmp_path / "app"
    cachebash.ok("connect", "--program", "builder", "--client", "claude-code", "--dir", str(project))
    entry = json.loads((project / ".mcp.json").read_text())["mcpServers"]["cachebash"]
    assert entry["url"] == server.url, "connect points at the running server"
    key = entry["headers"]["Authorization"].removeprefix("Bearer ")
    healthy = cachebash("doctor", "--key", key)
    assert healthy.returncode == 0, healthy.stdout
    assert f"server pid {server.proc.pid} answers at {server.url}" in healthy.stdout  # type: ignore[union-attr]
    assert f"{project / '.mcp.json'} (Claude Code, 'builder'): the key works" in healthy.stdout
    assert "the key works at" in healthy.stdout
    key_id = json.loads(cachebash.ok("keys", "list", "--json"))["keys"][-1]["keyId"]
    cachebash.ok("keys", "revoke", key_id)
    sick = cachebash("doctor")
    assert sick.returncode == 1
    assert re.search(r"FIX  .*\.mcp\.json \(Claude Code, 'builder'\): API key \w+ was revoked .*; `cachebash connect "
                     r"--program builder --client claude-code --dir ", sick.stdout), sick.stdout


def test_without_a_server_reply_works_on_the_data_dir(cachebash: Cli) -> None:
    assert cachebash.ok("--version").strip() == f"cachebash {__version__}"
    assert "server: not running" in cachebash.ok("status")
    unknown = cachebash("reply", "abc123", "hello")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: no message or question abc123 in your account"
    assert cachebash.ok("inbox", "--json") == "[]\n"
    doctor = cachebash("doctor")
    assert doctor.returncode == 1 and "no active keys" in doctor.stdout


def test_follow_prints_changes_until_ctrl_c(server: ServerProcess, cachebash: Cli) -> None:
    """In a real terminal (tmux): `tasks --follow` shows a task created after it started; Ctrl-C ends it quietly."""
    key = _key(cachebash, "lead")
    with Terminal(f"{BIN / 'cachebash'} tasks --follow", cachebash.env) as term:
        term.wait_for("TITLE")

        async def create() -> None:
            async with Agent(server.url, key) as lead:
                await lead.call("create_task", title="Watch me appear", target="lead")

        anyio.run(create)
        term.wait_for("Watch me appear")
        term.keys("C-c")
        screen = term.wait_for("exit=")
    assert "exit=0" in screen and "Traceback" not in screen


async def test_usage_prints_what_the_agents_reported(server: ServerProcess, cachebash: Cli) -> None:
    lead, builder = _key(cachebash, "lead"), _key(cachebash, "builder")
    async with Agent(server.url, lead) as boss, Agent(server.url, builder) as worker:
        for n in (1, 2):
            task = await boss.call("create_task", title=f"job {n}", target="builder")
            await worker.call("claim_task", taskId=task["taskId"])
            await worker.call("complete_task", taskId=task["taskId"], tokens_in=1000 * n, tokens_out=10 * n,
                              cost_usd=0.25 * n, model="opus", provider="anthropic")
    shown = cachebash.ok("usage", "--period", "today")
    lines = shown.splitlines()
    assert lines[0].startswith("usage ") and "(today), by program" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[3:] if line.strip() and not line.startswith("plan")}
    assert rows["builder"][:9] == ["builder", "0", "2", "2", "0", "0", "0", "3,000", "30"]
    assert rows["builder"][9] == "0.7500" and rows["lead"][1] == "2" and rows["TOTAL"][9] == "0.7500"
    assert lines[-1] == "plan self-hosted: tasks created in " + lines[0].split()[1][:7] + ": 2, no quota"
    by_model = json.loads(cachebash.ok("usage", "--by", "model", "--json"))
    assert [(r["key"], r["completed"], r["costUsd"]) for r in by_model["rows"]] == [("opus", 2, 0.75),
                                                                                  ("unknown", 0, 0.0)]
    assert by_model["scope"] == "tenant" and by_model["totals"]["tokensIn"] == 3000
    refused = cachebash("usage", "--from", "2026-02-30")
    assert refused.returncode == 2 and refused.stderr.startswith("error: from_date:")
