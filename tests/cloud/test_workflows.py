"""Tasks and messages across the two mcp instances: what one instance writes, the other
serves, and a caller waiting on one is answered when the other writes."""

from __future__ import annotations

import asyncio
import time

import pytest

from support.cloud_local import Fleet

pytestmark = [pytest.mark.anyio, pytest.mark.cloud_local]

#: A waiting call on Firestore re-runs its query every 2 s at most (README, "Waiting instead of
#: polling"); a wake-up from the other instance comes within that plus the emulator's latency.
CROSS_INSTANCE_WAKE_S = 10.0


async def test_task_created_on_one_instance_is_claimed_and_completed_on_the_other(fleet: Fleet) -> None:
    lead = await fleet("lead", on=0)
    builder = await fleet("builder", groups=["builders"], on=1)
    rival = await fleet("rival", groups=["builders"], on=0)

    created = await lead.call("create_task", title="Fix the auth type error", target="builders", priority="high",
                              instructions="Line 42: add a fallback role.")
    queue = await builder.call("get_tasks")
    assert [t["taskId"] for t in queue["tasks"]] == [created["taskId"]]
    claimed = await builder.call("claim_task", taskId=created["taskId"], sessionId="b-1")
    assert (claimed["status"], claimed["claimedBy"], claimed["claimToken"]) == ("claimed", "builder", 1)
    taken = await rival.fail("claim_task", taskId=created["taskId"])
    assert taken["code"] == "ALREADY_CLAIMED" and taken["claimedBy"] == "builder"

    await builder.call("report_task_progress", taskId=created["taskId"], claim_token=1, progress=50, note="halfway")
    done = await builder.call("complete_task", taskId=created["taskId"], claim_token=1, completed_status="SUCCESS",
                              result="PR #12")
    assert done["status"] == "completed"
    task = (await lead.call("get_task", taskId=created["taskId"]))["task"]
    assert [h["to"] for h in task["history"]] == ["created", "claimed", "in_progress", "completed"]
    assert (task["completedBy"], task["result"]) == ("builder", "PR #12")


async def test_waiting_claim_next_on_one_instance_wakes_when_the_other_creates(fleet: Fleet) -> None:
    lead = await fleet("lead", on=0)
    worker = await fleet("worker", groups=["builders"], on=1)
    waiting = asyncio.create_task(worker.call("claim_next", wait_seconds=20))
    await asyncio.sleep(1)  # a precondition, not a wait for the outcome: the worker is parked first
    assert not waiting.done(), "nothing queued yet: claim_next waits"
    created = await lead.call("create_task", title="Work for whoever waits", target="builders")
    created_at = time.monotonic()
    got = await asyncio.wait_for(waiting, 25)
    woke_after = time.monotonic() - created_at
    assert got["claimed"] and got["task"]["taskId"] == created["taskId"] and got["task"]["claimedBy"] == "worker"
    assert woke_after < CROSS_INSTANCE_WAKE_S, f"woke {woke_after:.1f} s after the create"


async def test_waiting_get_messages_on_one_instance_wakes_when_the_other_sends(fleet: Fleet) -> None:
    reader = await fleet("reader", on=1)
    sender = await fleet("sender", on=0)
    waiting = asyncio.create_task(reader.call("get_messages", wait_seconds=20))
    await asyncio.sleep(1)  # parked first (see above)
    assert not waiting.done(), "nothing to read yet: the call waits"
    sent = await sender.call("send_message", target="reader", message_type="DIRECTIVE", message="wake up")
    sent_at = time.monotonic()
    got = await asyncio.wait_for(waiting, 25)
    woke_after = time.monotonic() - sent_at
    assert [(m["messageId"], m["message"], m["source"]) for m in got["messages"]] == [
        (sent["messageId"], "wake up", "sender")]
    assert woke_after < CROSS_INSTANCE_WAKE_S, f"woke {woke_after:.1f} s after the send"
    assert (await reader.call("get_messages"))["count"] == 0, "delivered once"
