"""The seeds' sprint example, end to end through the official MCP client over real HTTP:
three builders take wave 1 in parallel, wave 2 stays locked until all three finish, then
unlocks by itself."""

from __future__ import annotations

import asyncio

import pytest

from support.seeds import SEED_SPRINT
from support.server import Agent, AgentFactory

pytestmark = pytest.mark.anyio



async def story_queue(agent: Agent) -> dict[str, str]:
    """storyId -> taskId of the sprint stories waiting for `agent` (or its groups)."""
    listed = await agent.call("get_tasks", type="sprint-story", limit=50)
    return {t["taskId"].split(":")[1]: t["taskId"] for t in listed["tasks"]}


async def work(builder: Agent, task_id: str) -> None:
    await builder.call("report_task_progress", taskId=task_id, progress=50, note="halfway")
    await builder.call("complete_task", taskId=task_id, completed_status="SUCCESS", result="done, PR open")


@pytest.mark.real_transactions  # builders finish in parallel: exactly-once unlocking rests on real transactions
async def test_seed_sprint_two_waves_end_to_end(agents: AgentFactory) -> None:
    orchestrator = await agents("orchestrator")
    builders = [await agents(f"builder{i}", groups=["builders"]) for i in (1, 2, 3)]

    created = await orchestrator.call("create_sprint", **SEED_SPRINT)
    sprint_id = created["sprintId"]
    assert created["waves"] == [1, 2]
    assert sorted(c["storyId"] for c in created["claimable"]) == ["story-1", "story-2", "story-3"]

    # Every builder is told wave 1 is ready and sees exactly its three stories.
    for builder in builders:
        told = (await builder.call("get_messages"))["messages"]
        assert [(m["message_type"], m["source"]) for m in told] == [("STATUS", "cachebash")]
        assert "wave 1" in told[0]["message"]
    wave_one = await story_queue(builders[0])
    assert sorted(wave_one) == ["story-1", "story-2", "story-3"]

    # Three builders claim in parallel, one story each.
    picks = ["story-1", "story-2", "story-3"]
    claims = await asyncio.gather(*(b.call("claim_task", taskId=wave_one[s]) for b, s in zip(builders, picks,
                                                                                              strict=True)))
    assert [c["claimedBy"] for c in claims] == ["builder1", "builder2", "builder3"]
    assert all(c["type"] == "sprint-story" and "feature/user-management" in c["instructions"] for c in claims)
    taken = await builders[0].fail("claim_task", taskId=wave_one["story-2"])
    assert taken["code"] == "ALREADY_CLAIMED" and taken["claimedBy"] == "builder2"

    # Wave 2 is locked: nothing to claim, and it cannot be started by hand.
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    assert [w["state"] for w in sprint["waves"]] == ["open", "locked"]
    assert sprint["currentWave"] == 1 and sprint["counts"]["active"] == 3
    locked = await orchestrator.fail("update_sprint_story", sprintId=sprint_id, storyId="story-4", status="active")
    assert locked["code"] == "STORY_LOCKED" and locked["field"] == "storyId"
    assert {w["storyId"] for w in locked["waitingFor"]} == {"story-1", "story-2", "story-3"}
    missing = await builders[0].fail("claim_task", taskId=f"{sprint_id}:story-4:1")
    assert missing["code"] == "NOT_FOUND"

    # Two of three finish: still locked.
    await asyncio.gather(work(builders[0], wave_one["story-1"]), work(builders[1], wave_one["story-2"]))
    assert await story_queue(builders[2]) == {}
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    assert sprint["waves"][1]["state"] == "locked"
    assert "story-3 (active)" in sprint["next"]

    # The third finishes: wave 2 unlocks by itself, and the builders are told.
    await work(builders[2], wave_one["story-3"])
    wave_two = await story_queue(builders[0])
    assert sorted(wave_two) == ["story-4", "story-5", "story-6"]
    for builder in builders:
        told = (await builder.call("get_messages", message_type="STATUS"))["messages"]
        assert len(told) == 1 and "wave 2" in told[0]["message"] and "story-4" in told[0]["message"]
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    assert sprint["currentWave"] == 2 and sprint["progress"] == 50
    assert [w["state"] for w in sprint["waves"]] == ["done", "open"]
    assert all(s["durationSeconds"] >= 0 for s in sprint["waves"][0]["stories"])

    # Wave 2 in parallel; the sprint completes itself and its creator hears of it.
    async def take_and_finish(builder: Agent, story: str) -> None:
        await builder.call("claim_task", taskId=wave_two[story])
        await work(builder, wave_two[story])

    await asyncio.gather(*(take_and_finish(b, s) for b, s in zip(builders, ["story-4", "story-5", "story-6"],
                                                                 strict=True)))
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    assert sprint["sprint"]["status"] == "completed" and sprint["progress"] == 100
    summary = sprint["sprint"]["summary"]
    assert summary["complete"] == 6 and summary["total"] == 6 and len(summary["waves"]) == 2
    result = (await orchestrator.call("get_messages", message_type="RESULT"))["messages"]
    assert len(result) == 1 and "completed" in result[0]["message"] and result[0]["threadId"] == sprint_id


async def test_sprint_tools_are_listed_and_refuse_bad_plans(agents: AgentFactory) -> None:
    orchestrator = await agents("orchestrator")
    names = {tool.name for tool in await orchestrator.list_tools()}
    assert {"create_sprint", "get_sprint", "update_sprint_story", "add_story_to_sprint", "complete_sprint"} <= names
    cyclic = await orchestrator.fail("create_sprint", projectName="Loop", stories=[
        {"id": "a", "title": "A", "dependencies": ["b"]}, {"id": "b", "title": "B", "dependencies": ["a"]}])
    assert cyclic["code"] == "VALIDATION_ERROR" and cyclic["field"] == "stories.0.dependencies"
    later = await orchestrator.fail("create_sprint", projectName="Backwards", stories=[
        {"id": "a", "title": "A", "dependencies": ["b"]}, {"id": "b", "title": "B", "wave": 2}])
    assert later["field"] == "stories.0.dependencies" and "wave 2" in later["message"]


async def test_failed_story_blocks_until_retried(agents: AgentFactory) -> None:
    orchestrator = await agents("orchestrator")
    builder = await agents("builder", groups=["builders"])
    created = await orchestrator.call("create_sprint", projectName="Retry", stories=[
        {"id": "a", "title": "A"}, {"id": "b", "title": "B", "wave": 2}])
    first = (await story_queue(builder))["a"]
    await builder.call("claim_task", taskId=first)
    await builder.call("complete_task", taskId=first, completed_status="FAILED", error_code="TESTS_RED")
    assert await story_queue(builder) == {}
    retried = await orchestrator.call("update_sprint_story", sprintId=created["sprintId"], storyId="a",
                                      status="queued")
    assert retried["run"] == 2
    second = (await story_queue(builder))["a"]
    assert second == f"{created['sprintId']}:a:2"
    await builder.call("claim_task", taskId=second)
    await builder.call("complete_task", taskId=second)
    assert sorted(await story_queue(builder)) == ["b"]
