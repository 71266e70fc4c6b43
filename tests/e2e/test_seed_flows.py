"""Issue #12 through the official MCP client over real HTTP: builders run the seeds' sprint with
update_sprint_story exactly as multi-agent-workflows.md writes it, interrupts jump the queue
and wake a waiting target, and list_programs shows who is there."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from support.seeds import SEED_SPRINT
from support.server import Agent, AgentFactory

pytestmark = pytest.mark.anyio


async def take(builder: Agent, sprint_id: str, story_id: str) -> dict[str, Any]:
    """The seed's call, verbatim but for the real ids."""
    return await builder.raw("update_sprint_story", sprintId=sprint_id, storyId=story_id, status="active",
                             progress=50, currentAction="Writing migration scripts")


@pytest.mark.real_transactions  # racing builders: exactly one winner rests on real transactions
async def test_builders_run_the_seed_sprint_with_update_sprint_story(agents: AgentFactory) -> None:
    orchestrator = await agents("orchestrator")
    team = {f"builder{i}": await agents(f"builder{i}", groups=["builders"]) for i in (1, 2, 3)}
    sprint_id = (await orchestrator.call("create_sprint", **SEED_SPRINT))["sprintId"]

    # All three race for story-1: exactly one wins, the others are told who holds it.
    raced = dict(zip(team, await asyncio.gather(*(take(b, sprint_id, "story-1") for b in team.values())),
                     strict=True))
    winners = [name for name, r in raced.items() if r["success"]]
    assert len(winners) == 1
    holder = raced[winners[0]]["task"]
    assert holder["taskId"] == f"{sprint_id}:story-1:1" and holder["claimToken"] == 1
    losers = [r["error"] for r in raced.values() if not r["success"]]
    assert [(e["code"], e["claimedBy"]) for e in losers] == [("ALREADY_CLAIMED", winners[0])] * 2

    # The two others take story-2 and story-3 at once; each gets its own.
    rest = [name for name in team if name != winners[0]]
    others = await asyncio.gather(*(take(team[n], sprint_id, s) for n, s in zip(rest, ["story-2", "story-3"],
                                                                               strict=True)))
    assert all(r["success"] for r in others)
    holders = {"story-1": winners[0], "story-2": rest[0], "story-3": rest[1]}
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    wave_one = sprint["waves"][0]["stories"]
    assert [(s["status"], s["progress"], s["currentAction"]) for s in wave_one] == [
        ("active", 50, "Writing migration scripts")] * 3
    assert sprint["waves"][1]["state"] == "locked"

    # Each finishes its story the same way; wave 2 unlocks by itself.
    finished = await asyncio.gather(*(team[who].call("update_sprint_story", sprintId=sprint_id, storyId=story_id,
                                                     status="complete") for story_id, who in holders.items()))
    assert [(f["status"], f["task"]["status"]) for f in finished] == [("complete", "completed")] * 3
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    assert [w["state"] for w in sprint["waves"]] == ["done", "open"]

    # A builder takes a wave-2 story and sets its progress, as the seed shows.
    took = await take(team["builder1"], sprint_id, "story-4")
    assert took["success"] and took["task"]["taskId"] == f"{sprint_id}:story-4:1"
    moved = await team["builder1"].call("update_sprint_story", sprintId=sprint_id, storyId="story-4", progress=75,
                                   currentAction="Wiring the form")
    assert moved["task"]["status"] == "in_progress"
    story_4 = [s for s in (await orchestrator.call("get_sprint", sprintId=sprint_id))["waves"][1]["stories"]
               if s["storyId"] == "story-4"][0]
    assert (story_4["status"], story_4["progress"], story_4["currentAction"]) == ("active", 75, "Wiring the form")


async def test_the_readme_worker_loop_finds_sprint_stories(agents: AgentFactory) -> None:
    orchestrator = await agents("orchestrator")
    builder = await agents("builder", groups=["builders"])
    await orchestrator.call("create_sprint", projectName="Loop", stories=[{"id": "a", "title": "A"}])
    empty = await builder.call("get_tasks")
    assert empty["count"] == 0 and "1 sprint-story task(s) wait" in empty["note"]
    taken = await builder.call("claim_next", wait_seconds=5)
    assert taken["claimed"] and taken["task"]["type"] == "sprint-story"


async def test_an_interrupt_wakes_a_waiting_get_messages_and_rides_on_results_until_claimed(
        agents: AgentFactory) -> None:
    lead = await agents("lead")
    worker = await agents("worker", groups=["builders"])
    await lead.call("create_task", title="routine", target="builders", priority="high")
    waiting = asyncio.create_task(worker.call("get_messages", wait_seconds=20))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "nothing to read yet: the call waits"
    urgent = await lead.call("create_task", title="stop the deploy", target="builders", action="interrupt",
                             priority="low")
    woke = await asyncio.wait_for(waiting, 5)  # woken, far before its 20 s
    assert woke["count"] == 0 and [i["taskId"] for i in woke["interrupts"]] == [urgent["taskId"]]
    unrelated = await worker.call("get_program_state")
    assert [i["title"] for i in unrelated["interrupts"]] == ["stop the deploy"], "any result carries it"
    first = await worker.call("claim_next")
    assert first["task"]["title"] == "stop the deploy", "an interrupt goes before a high-priority task"
    assert "interrupts" not in await worker.call("get_program_state"), "claimed: no longer carried"


async def test_an_interrupt_wakes_a_waiting_claim_next(agents: AgentFactory) -> None:
    lead = await agents("lead")
    worker = await agents("worker")
    waiting = asyncio.create_task(worker.call("claim_next", wait_seconds=20))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    urgent = await lead.call("create_task", title="now", target="worker", action="interrupt")
    got = await asyncio.wait_for(waiting, 5)
    assert got["claimed"] and got["taskId"] == urgent["taskId"]


async def test_list_programs_over_mcp(agents: AgentFactory) -> None:
    lead = await agents("lead")
    builder = await agents("builder", groups=["builders"])
    task = await lead.call("create_task", title="Add /api/users endpoint", target="builder")
    await builder.call("claim_task", taskId=task["taskId"], sessionId="builder-session-1")
    listed = await lead.call("list_programs")
    rows = {r["programId"]: r for r in listed["programs"]}
    assert rows["builder"]["groups"] == ["builders"] and rows["builder"]["available"] is True
    assert [s["sessionId"] for s in rows["builder"]["liveSessions"]] == ["builder-session-1"]
    assert [(h["taskId"], h["title"]) for h in rows["builder"]["holding"]] == [(task["taskId"],
                                                                                "Add /api/users endpoint")]
