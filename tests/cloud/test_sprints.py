"""The seeds' two-wave sprint over the cloud topology: a finished story task finishes its story
through `sprint_sync` (Pub/Sub), and the story's write unlocks wave 2 through `sprint_waves`
(the Firestore relay standing in for Eventarc). Builders sit on both mcp instances."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from support.cloud_local import Fleet, eventually
from support.seeds import SEED_SPRINT
from support.server import Agent

pytestmark = [pytest.mark.anyio, pytest.mark.cloud_local]


async def story_queue(agent: Agent) -> dict[str, str]:
    """storyId -> taskId of the sprint stories waiting for `agent` (or its groups)."""
    listed = await agent.call("get_tasks", type="sprint-story", limit=50)
    return {t["taskId"].split(":")[1]: t["taskId"] for t in listed["tasks"]}


async def work(builder: Agent, task_id: str) -> None:
    claimed = await builder.call("claim_task", taskId=task_id)
    await builder.call("report_task_progress", taskId=task_id, claim_token=claimed["claimToken"], progress=50)
    await builder.call("complete_task", taskId=task_id, claim_token=claimed["claimToken"], result="done, PR open")


async def statuses(agent: Agent, wave: str) -> list[dict[str, Any]] | None:
    """The STATUS messages about `wave` in the agent's inbox, once there are any."""
    got = await agent.call("get_messages", message_type="STATUS", wait_seconds=5)
    return [m for m in got["messages"] if wave in m["message"]] or None


@pytest.mark.real_transactions  # builders finish in parallel: exactly-once unlocking rests on real transactions
async def test_seed_sprint_unlocks_wave_two_through_the_functions_and_completes(fleet: Fleet) -> None:
    orchestrator = await fleet("orchestrator", on=0)
    builders = [await fleet(f"builder{i}", groups=["builders"], on=i) for i in (1, 2, 3)]

    created = await orchestrator.call("create_sprint", **SEED_SPRINT)
    sprint_id = created["sprintId"]
    assert sorted(c["storyId"] for c in created["claimable"]) == ["story-1", "story-2", "story-3"]
    for builder in builders:
        told = await eventually(partial(statuses, builder, "wave 1"), "the builders told wave 1 is ready")
        assert [m["source"] for m in told] == ["cachebash"]
    wave_one = await story_queue(builders[0])
    assert sorted(wave_one) == ["story-1", "story-2", "story-3"]

    # Two of three finish: sprint_sync finishes their stories, and wave 2 stays locked.
    await asyncio.gather(work(builders[0], wave_one["story-1"]), work(builders[1], wave_one["story-2"]))

    async def finished(count: int) -> dict[str, Any] | None:
        sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
        return sprint if sprint["waves"][0]["stories"] and sum(
            s["status"] == "complete" for s in sprint["waves"][0]["stories"]) >= count else None

    sprint = await eventually(lambda: finished(2), "sprint_sync finished two stories of wave 1")
    assert [w["state"] for w in sprint["waves"]] == ["open", "locked"]
    assert await story_queue(builders[2]) == {"story-3": wave_one["story-3"]}

    # The third finishes: wave 2 unlocks by itself (sprint_sync, then sprint_waves), the builders are told.
    await work(builders[2], wave_one["story-3"])

    async def wave_two_queued() -> dict[str, str] | None:
        queued = await story_queue(builders[0])
        return queued if sorted(queued) == ["story-4", "story-5", "story-6"] else None

    wave_two = await eventually(wave_two_queued, "wave 2 released")
    for builder in builders:
        told = await eventually(partial(statuses, builder, "wave 2"), "the builders told wave 2 is ready")
        assert len(told) == 1 and "story-4" in told[0]["message"]
    sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
    assert sprint["currentWave"] == 2 and [w["state"] for w in sprint["waves"]] == ["done", "open"]

    # Wave 2 in parallel; the sprint completes itself and its creator hears of it.
    await asyncio.gather(*(work(b, wave_two[s]) for b, s in zip(builders, ["story-4", "story-5", "story-6"],
                                                                 strict=True)))

    async def completed() -> dict[str, Any] | None:
        sprint = await orchestrator.call("get_sprint", sprintId=sprint_id)
        return sprint if sprint["sprint"]["status"] == "completed" else None

    sprint = await eventually(completed, "the sprint completed")
    assert sprint["progress"] == 100 and sprint["sprint"]["summary"]["complete"] == 6
    result = await orchestrator.call("get_messages", message_type="RESULT", wait_seconds=20)
    assert len(result["messages"]) == 1 and result["messages"][0]["threadId"] == sprint_id
    assert (await builders[0].call("get_tasks", type="sprint-story"))["count"] == 0
