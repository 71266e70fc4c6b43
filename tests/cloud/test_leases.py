"""Leases taken back by the scheduled sweeper alone: a topology of its own whose functions all
have a 3 s default lease and a short retry back-off (CACHEBASH_* settings passed through the
environment, as a deployment would set them), with the scheduler ticking every second. No
mcp instance sweeps; only the tick on the sweeper topic, pushed to the `sweeper` function, does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from support.cloud_local import CloudLocal, Fleet, fleet_of, start_cloud_local
from support.query_guard import QueryRecorder

pytestmark = [pytest.mark.anyio, pytest.mark.cloud_local]

LEASE_S = 3
SHORT = {"CACHEBASH_LEASE_SECONDS": str(LEASE_S), "CACHEBASH_RETRY_BACKOFF_SECONDS": "0.5",
         "CACHEBASH_RETRY_BACKOFF_CAP_SECONDS": "1"}


@pytest.fixture(scope="module")
def short_leases(cloud: CloudLocal, tmp_path_factory: pytest.TempPathFactory,
                 query_recorder: QueryRecorder) -> Iterator[CloudLocal]:
    """A second topology on the session's emulators (its own project), with short leases."""
    with start_cloud_local(tmp_path_factory.mktemp("cloud-local-leases"), sweep_seconds=1, reuse=cloud,
                           env={**SHORT, "CACHEBASH_QUERY_LOG": str(query_recorder.log_path)}) as running:
        yield running


@pytest.fixture
async def fleet(short_leases: CloudLocal) -> AsyncIterator[Fleet]:
    async with fleet_of(short_leases) as made:
        yield made


def seconds_until(stamp: str) -> float:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()


@pytest.mark.real_transactions
async def test_a_silent_holders_task_is_taken_back_and_offered_again(fleet: Fleet) -> None:
    lead = await fleet("lead", on=0)
    silent = await fleet("b1", groups=["builders"], on=0)
    worker = await fleet("b2", groups=["builders"], on=1)
    task = await lead.call("create_task", title="Survive a crash", target="builders")
    first = await silent.call("claim_task", taskId=task["taskId"])
    assert first["claimToken"] == 1
    assert seconds_until(first["leaseExpiresAt"]) <= LEASE_S, "the default lease came from the environment"
    # From here b1 is silent: no heartbeat, no completion.

    second = await worker.call("claim_next", target="builders", wait_seconds=20, lease_seconds=60)
    if not second["claimed"]:  # one more bounded wait: the emulators can be slow under load
        second = await worker.call("claim_next", target="builders", wait_seconds=20, lease_seconds=60)
    assert second["claimed"], "the sweeper never took the lapsed lease back"
    assert (second["task"]["taskId"], second["task"]["claimToken"], second["task"]["attempt"]) == (
        task["taskId"], 2, 2)
    stale = await silent.fail("complete_task", taskId=task["taskId"], claim_token=1)
    assert stale["code"] == "CLAIM_LOST" and "b2" in stale["message"]
    await worker.call("complete_task", taskId=task["taskId"], claim_token=2)
    final = (await lead.call("get_task", taskId=task["taskId"]))["task"]
    assert [h["event"] for h in final["history"]] == ["create", "claim", "retry", "claim", "SUCCESS"]
    assert final["lastError"].startswith("lease expired")


async def test_after_the_last_attempt_the_task_is_dead_and_its_creator_told(fleet: Fleet) -> None:
    lead = await fleet("lead", on=1)
    holder = await fleet("builder", on=0)
    task = await lead.call("create_task", title="Doomed", target="builder", max_attempts=1)
    await holder.call("claim_task", taskId=task["taskId"])
    told = await lead.call("get_messages", wait_seconds=20)
    if told["count"] == 0:
        told = await lead.call("get_messages", wait_seconds=20)
    assert [(m["source"], m["message_type"]) for m in told["messages"]] == [("cachebash", "RESULT")]
    assert "Doomed" in told["messages"][0]["message"]
    dead = await lead.call("get_tasks", target="builder", status="dead")
    assert [t["taskId"] for t in dead["tasks"]] == [task["taskId"]]
    assert (await holder.fail("complete_task", taskId=task["taskId"]))["code"] == "TASK_FINISHED"


async def test_a_renewed_lease_outlives_many_ticks(fleet: Fleet) -> None:
    lead = await fleet("lead", on=0)
    holder = await fleet("builder", on=1)
    task = await lead.call("create_task", title="Long job", target="builder")
    claimed = await holder.call("claim_task", taskId=task["taskId"])
    until = time.monotonic() + 2 * LEASE_S  # two lease lengths: several sweeps run meanwhile
    while time.monotonic() < until:
        await asyncio.sleep(0.5)  # a heartbeat's pace, not a wait for an outcome
        await holder.call("renew_claim", taskId=task["taskId"], claim_token=claimed["claimToken"])
    held = (await lead.call("get_task", taskId=task["taskId"]))["task"]
    assert (held["status"], held["claimedBy"], held["claimToken"], held["attempt"]) == ("claimed", "builder", 1, 1)
