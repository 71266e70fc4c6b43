"""`cachebash plan show|set`: on the data dir, and through a running server, whose agents meet
the new limit on their very next call (the server's cached plan changes with it)."""

from __future__ import annotations

import json

import pytest

from support.cli_runner import Cli
from support.server import Agent, ServerProcess

pytestmark = pytest.mark.anyio


def test_show_and_set_on_the_data_dir(cachebash: Cli) -> None:
    shown = json.loads(cachebash.ok("plan", "show", "--json"))
    assert shown["plan"]["name"] == "self-hosted" and shown["default"] is True
    assert shown["plan"]["monthly_tasks"] is None and shown["ownerMayChange"] is True
    table = cachebash.ok("plan", "set", "--plan", "free", "--monthly-tasks", "1000", "--max-open-tasks", "unlimited")
    assert "plan 'free'" in table and "1000       override" in table
    shown = json.loads(cachebash.ok("plan", "show", "--json"))
    assert (shown["plan"]["name"], shown["plan"]["monthly_tasks"], shown["plan"]["max_open_tasks"]) == (
        "free", 1000, None)
    assert shown["overrides"] == {"monthly_tasks": 1000, "max_open_tasks": None}
    cleared = json.loads(cachebash.ok("plan", "set", "--clear", "--json"))
    assert cleared["overrides"] == {} and cleared["plan"]["monthly_tasks"] == 500


def test_bad_input_is_refused_in_one_line(cachebash: Cli) -> None:
    negative = cachebash("plan", "set", "--monthly-tasks", "-3")
    assert negative.returncode == 2 and "--monthly-tasks: '-3': at least 0" in negative.stderr
    nothing = cachebash("plan", "set")
    assert nothing.returncode == 2 and "give --plan, --clear or at least one limit" in nothing.stderr
    unknown = cachebash("plan", "set", "--plan", "gold")
    assert unknown.returncode == 2 and "invalid choice: 'gold'" in unknown.stderr
    assert "Traceback" not in negative.stderr + nothing.stderr + unknown.stderr


async def test_a_plan_set_through_the_server_holds_on_the_next_call(server: ServerProcess, cachebash: Cli) -> None:
    key = cachebash.ok("keys", "create", "--program", "lead").strip().splitlines()[-1]
    async with Agent(server.url, key) as lead:
        assert (await lead.raw("create_task", title="before", target="builder"))["success"]
        cachebash.ok("plan", "set", "--plan", "free", "--monthly-tasks", "2")
        assert (await lead.raw("create_task", title="second", target="builder"))["success"]
        refused = await lead.raw("create_task", title="third", target="builder")
    error = refused["error"]
    assert (error["code"], error["plan"], error["limit"], error["used"]) == ("QUOTA_EXCEEDED", "free", 2, 2)
    assert error["resetsAt"].endswith("-01T00:00:00Z")
    usage = json.loads(cachebash.ok("plan", "show", "--json"))["usage"]
    assert usage["tasksThisMonth"] == 2 and usage["openTasks"] == 2  # the refused third wrote nothing
