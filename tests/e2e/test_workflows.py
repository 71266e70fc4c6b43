"""The seeds' workflows through the official MCP client over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from support.server import Agent, AgentFactory

pytestmark = pytest.mark.anyio


async def test_first_workflow_end_to_end(agents: AgentFactory) -> None:
    investigator = await agents("investigator")
    builder = await agents("builder", groups=["builders"])

    created = await investigator.call(
        "create_task", title="Fix type error in auth.ts", target="builder", priority="high",
        instructions="Line 42: getUserRole() returns string | undefined. Add a fallback default role.")
    assert created["status"] == "created" and created["taskId"]
    directive = await investigator.call("send_message", source="investigator", target="builder",
                                        message_type="DIRECTIVE",
                                        message="Type error in auth.ts. Task created. Fix and open a PR.")

    queue = await builder.call("get_tasks")
    assert queue["hasTasks"] and [t["taskId"] for t in queue["tasks"]] == [created["taskId"]]
    assert queue["tasks"][0]["instructions"].startswith("Line 42")
    inbox = await builder.call("get_messages")
    assert [(m["message_type"], m["source"]) for m in inbox["messages"]] == [("DIRECTIVE", "investigator")]

    claimed = await builder.call("claim_task", taskId=created["taskId"], sessionId="builder-session-1")
    assert claimed["status"] == "claimed"
    await builder.call("send_message", source="builder", target="investigator", message_type="ACK",
                       message="Claimed. Working on auth.ts fix now.", reply_to=directive["messageId"])
    progress = await builder.call("report_task_progress", taskId=created["taskId"], progress=50, note="fixing")
    assert progress["status"] == "in_progress"
    await builder.call("send_message", target="investigator", message_type="RESULT",
                       message="Fixed. PR #12 open. Tests passing.")

    replies = await investigator.call("get_messages")
    assert [m["message_type"] for m in replies["messages"]] == ["ACK", "RESULT"]
    done = await investigator.call("complete_task", taskId=created["taskId"], completed_status="SUCCESS")
    assert done == {"success": True, "taskId": created["taskId"], "status": "completed",
                    "completedStatus": "SUCCESS", "message": "Task marked as done"}
    task = (await investigator.call("get_task", taskId=created["taskId"]))["task"]
    assert [h["to"] for h in task["history"]] == ["created", "claimed", "in_progress", "completed"]
    assert task["claimedBy"] == "builder" and task["sessionId"] == "builder-session-1"
    assert (await builder.call("get_messages"))["count"] == 0, "nothing is delivered twice"


@pytest.mark.real_transactions
async def test_twenty_concurrent_claimers_exactly_one_wins(agents: AgentFactory) -> None:
    architect = await agents("architect")
    builders = [await agents(f"builder{i}", groups=["builders"]) for i in range(20)]
    task = await architect.call("create_task", title="Only one of you", target="builders")
    results = await asyncio.gather(*(b.raw("claim_task", taskId=task["taskId"]) for b in builders))
    winners = [r for r in results if r["success"]]
    losers = [r["error"] for r in results if not r["success"]]
    assert len(winners) == 1 and len(losers) == 19
    owner = winners[0]["claimedBy"]
    assert all(e["code"] == "ALREADY_CLAIMED" and e["claimedBy"] == owner and owner in e["message"]
               for e in losers)


@pytest.mark.real_cursors
async def test_priority_ordering(agents: AgentFactory) -> None:
    architect = await agents("architect")
    builder = await agents("builder")
    for title, priority in [("normal-1", "normal"), ("low-1", "low"), ("high-1", "high"), ("normal-2", "normal"),
                            ("high-2", "high")]:
        await architect.call("create_task", title=title, target="builder", priority=priority)
    queue = await builder.call("get_tasks", limit=50)
    assert [t["title"] for t in queue["tasks"]] == ["high-1", "high-2", "normal-1", "normal-2", "low-1"]
    first = await builder.call("get_tasks", limit=2)
    rest = await builder.call("get_tasks", limit=50, cursor=first["nextCursor"])
    assert [t["title"] for t in first["tasks"] + rest["tasks"]] == [t["title"] for t in queue["tasks"]]
    assert rest["nextCursor"] is None


async def test_multicast_to_a_group(agents: AgentFactory) -> None:
    architect = await agents("architect", groups=["council"])
    members = [await agents(f"builder{i}", groups=["builders"]) for i in range(3)]
    outsider = await agents("scout", groups=["intelligence"])
    groups = {g["name"]: g["members"] for g in (await architect.call("list_groups"))["groups"]}
    assert groups["builders"] == ["builder0", "builder1", "builder2"]
    assert groups["all"] == ["admin", "architect", "builder0", "builder1", "builder2", "scout"]

    sent = await members[0].call("send_message", target="builders", message_type="DIRECTIVE",
                                 message="All user management work goes on feature/user-management.")
    assert sent["recipients"] == ["builder1", "builder2"]
    for agent, expected in [(members[0], 0), (members[1], 1), (members[2], 1), (outsider, 0)]:
        assert (await agent.call("get_messages"))["count"] == expected
    for agent in members[1:]:
        assert (await agent.call("get_messages"))["count"] == 0, "each member got exactly one copy"

    task = await architect.call("create_task", title="Anyone in builders", target="builders")
    assert [t["taskId"] for t in (await members[2].call("get_tasks"))["tasks"]] == [task["taskId"]]
    assert (await outsider.call("get_tasks"))["count"] == 0
    assert (await outsider.fail("claim_task", taskId=task["taskId"]))["code"] == "FORBIDDEN"
    assert (await members[2].call("claim_task", taskId=task["taskId"]))["claimedBy"] == "builder2"


async def test_program_state_across_sessions(agents: AgentFactory, server: object) -> None:
    builder = await agents("builder")
    await builder.call("update_program_state", programId="builder", contextSummary={
        "lastTask": {"taskId": "abc123", "title": "Add /api/users endpoint", "outcome": "completed",
                     "notes": "PR #42 opened."},
        "activeWorkItems": ["Working on user management feature"],
        "openQuestions": ["Rate limiting on all endpoints?"],
    })
    again = Agent(builder.url, builder.key)
    async with again:
        state = await again.call("get_program_state", programId="builder")
    assert state["contextSummary"]["lastTask"]["notes"] == "PR #42 opened."
    reviewer = await agents("reviewer")
    assert (await reviewer.fail("get_program_state", programId="builder"))["code"] == "FORBIDDEN"
    assert (await reviewer.fail("update_program_state", programId="builder",
                                contextSummary={"handoffNotes": "x"}))["code"] == "FORBIDDEN"
