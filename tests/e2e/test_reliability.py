"""Leases, retries, dead letters, idempotency and waiting, through the MCP client over HTTP,
against a server whose sweeper and back-off run fast."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import Agent, AgentFactory, ServerEnv, ServerProcess

pytestmark = pytest.mark.anyio

FAST = {"CACHEBASH_SWEEP_SECONDS": "0.1", "CACHEBASH_RETRY_BACKOFF_SECONDS": "0.3",
        "CACHEBASH_RETRY_BACKOFF_CAP_SECONDS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_env: ServerEnv) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("reliable")) / "data", env={**server_env(), **FAST}).start()
    yield proc
    proc.stop()


@pytest.mark.real_transactions
async def test_killed_claimer_task_is_offered_again_exactly_once(agents: AgentFactory, server: ServerProcess) -> None:
    lead = await agents("lead")
    crashed = await agents("b1", groups=["builders"])
    waiters = [await agents(f"b{i}", groups=["builders"]) for i in (2, 3)]
    task = await lead.call("create_task", title="Survive a crash", target="builders")
    first = await crashed.call("claim_task", taskId=task["taskId"], lease_seconds=1)
    assert first["claimToken"] == 1
    # From here b1 is dead: no heartbeat, no completion (the transport is stateless, so a
    # crashed agent and a silent one look the same to the server).

    # The new claim asks for its own lease: inheriting b1's 1 s one, it could lapse before the
    # winner completes on a slow machine or store (it did on the Firestore emulators).
    outcomes = await asyncio.gather(*(w.call("claim_next", target="builders", wait_seconds=4, lease_seconds=30)
                                      for w in waiters))
    winners = [o for o in outcomes if o["claimed"]]
    assert len(winners) == 1, outcomes
    second = winners[0]["task"]
    assert (second["taskId"], second["claimToken"], second["attempt"]) == (task["taskId"], 2, 2)
    winner = waiters[outcomes.index(winners[0])]

    async with Agent(server.url, crashed.key) as restarted:
        stale = await restarted.fail("complete_task", taskId=task["taskId"], claim_token=1)
        assert stale["code"] == "CLAIM_LOST" and second["claimedBy"] in stale["message"]
    done = await winner.call("complete_task", taskId=task["taskId"], claim_token=2)
    assert done["status"] == "completed"
    final = (await lead.call("get_task", taskId=task["taskId"]))["task"]
    assert final["attempt"] == 2 and final["completedBy"] == second["claimedBy"]
    assert [h["event"] for h in final["history"]] == ["create", "claim", "retry", "claim", "SUCCESS"]


async def test_dead_letter_after_max_attempts_tells_the_creator(agents: AgentFactory) -> None:
    lead = await agents("lead")
    builder = await agents("builder")
    task = await lead.call("create_task", title="Doomed", target="builder", max_attempts=1)
    await builder.call("claim_task", taskId=task["taskId"], lease_seconds=1)
    inbox = await lead.call("get_messages", wait_seconds=5)
    assert [(m["source"], m["message_type"]) for m in inbox["messages"]] == [("cachebash", "RESULT")]
    assert "Doomed" in inbox["messages"][0]["message"]
    dead = await lead.call("get_tasks", target="builder", status="dead")
    assert [t["taskId"] for t in dead["tasks"]] == [task["taskId"]]
    assert (await builder.fail("complete_task", taskId=task["taskId"]))["code"] == "TASK_FINISHED"


@pytest.mark.real_transactions  # the retries race: one must see the other's record
async def test_concurrent_idempotent_retries_create_one_task(agents: AgentFactory) -> None:
    lead = await agents("lead")
    args = {"title": "Once only", "target": "builder", "idempotency_key": "req-race"}
    created = await asyncio.gather(*(lead.call("create_task", **args) for _ in range(8)))
    assert len({c["taskId"] for c in created}) == 1
    assert (await lead.call("get_tasks", target="builder", status="all"))["count"] == 1


async def test_idempotent_retries_write_nothing_twice(agents: AgentFactory) -> None:
    lead = await agents("lead")
    builder = await agents("builder")
    args = {"title": "Once only", "target": "builder", "idempotency_key": "req-1"}
    created = [await lead.call("create_task", **args) for _ in range(3)]
    assert len({c["taskId"] for c in created}) == 1
    sent = [await lead.call("send_message", target="builder", message="once", idempotency_key="msg-1")
            for _ in range(2)]
    assert sent[0] == sent[1]
    task_id = created[0]["taskId"]
    claims = [await builder.call("claim_task", taskId=task_id, idempotency_key="c-1") for _ in range(2)]
    assert claims[0] == claims[1]
    completions = [await builder.call("complete_task", taskId=task_id, idempotency_key="d-1") for _ in range(2)]
    assert completions[0] == completions[1]
    assert (await lead.call("get_tasks", target="builder", status="all"))["count"] == 1
    assert (await builder.call("get_messages"))["count"] == 1


async def test_waiting_get_messages_wakes_on_send(agents: AgentFactory) -> None:
    reader = await agents("reader")
    sender = await agents("sender")
    waiting = asyncio.create_task(reader.call("get_messages", wait_seconds=10))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "nothing to read yet: the call waits"
    await sender.call("send_message", target="reader", message="wake up")
    sent_at = time.monotonic()
    received = await waiting
    woke_after = time.monotonic() - sent_at
    assert [m["message"] for m in received["messages"]] == ["wake up"]
    assert woke_after < 0.3, f"woke {woke_after * 1000:.0f} ms after the send (a poll would take 1 s more)"

    started = time.monotonic()
    empty = await reader.call("get_messages", wait_seconds=0.5)
    assert empty["count"] == 0 and time.monotonic() - started >= 0.5


async def test_waiting_worker_wakes_when_a_task_arrives(agents: AgentFactory) -> None:
    lead = await agents("lead")
    worker = await agents("worker", groups=["builders"])
    waiting = asyncio.create_task(worker.call("claim_next", wait_seconds=10))
    await asyncio.sleep(0.3)
    task = await lead.call("create_task", title="fresh work", target="builders", priority="high")
    claimed = await asyncio.wait_for(waiting, 2)
    assert claimed["claimed"] and claimed["taskId"] == task["taskId"]
