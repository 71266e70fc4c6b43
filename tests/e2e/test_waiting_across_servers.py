"""Two servers on one Firestore (as two Cloud Function instances): a call waiting on server A
learns of a write through server B from A's listener on the tenant, not by polling, and a key
revoked through B ends a call waiting on A. Firestore backends only: SQLite servers share no
store across machines."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from support.query_guard import QueryRecorder
from support.server import Agent, ServerEnv, ServerProcess

pytestmark = pytest.mark.anyio

WAIT = 20
#: Long enough for A's listener to be live and for a polling waiter to have looked again three
#: times (after 0.5, 1.5 and 3.5 s); far below the 10 s safety look of a waiter whose listener is live.
SETTLE = 4.0


@pytest.fixture(scope="module")
def pair(backend: str, tmp_path_factory: pytest.TempPathFactory,
         server_env: ServerEnv) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    if backend == "sqlite":
        pytest.skip("two servers share a store only on Firestore")
    env = server_env()  # one project for both
    a = ServerProcess(tmp_path_factory.mktemp("a") / "data", env=env).start()
    b = ServerProcess(tmp_path_factory.mktemp("b") / "data", env=env).start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
async def admin(pair: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[Agent]:
    a, _ = pair
    tenant_key = a.cli("keys", "create", "--program", "admin", "--admin", "--tenant", "t-" + uuid.uuid4().hex[:10])
    async with Agent(a.url, tenant_key.strip().splitlines()[-1]) as agent:
        yield agent


def _inbox_looks(recorder: QueryRecorder, since: int) -> int:
    """How many inbox queries (get_messages' own) the servers ran since byte `since` of the log."""
    with recorder.log_path.open("rb") as log:
        log.seek(since)
        shapes = [json.loads(line) for line in log.read().splitlines() if line.strip()]
    inbox = [["target", "=="], ["delivered", "=="]]
    return sum(1 for s in shapes if s["collection"].endswith("/messages") and s["filters"][:2] == inbox)


def _log_size(recorder: QueryRecorder) -> int:
    return recorder.log_path.stat().st_size if recorder.log_path.exists() else 0


async def test_a_send_through_b_wakes_a_reader_waiting_on_a(pair: tuple[ServerProcess, ServerProcess], admin: Agent,
                                                            query_recorder: QueryRecorder) -> None:
    a, b = pair
    reader_key = (await admin.call("create_key", programId="reader"))["apiKey"]
    sender_key = (await admin.call("create_key", programId="sender"))["apiKey"]
    async with Agent(a.url, reader_key) as reader, Agent(b.url, sender_key) as sender:
        # A first short wait opens A's listener on the tenant (it lingers after the call): until
        # it is live a waiter polls, so the measured wait starts with it live.
        await reader.call("get_messages", wait_seconds=1)
        since = _log_size(query_recorder)
        waiting = asyncio.create_task(reader.call("get_messages", wait_seconds=WAIT))
        await asyncio.sleep(SETTLE)
        assert not waiting.done()
        assert _inbox_looks(query_recorder, since) == 1, "the waiting reader looked again: it polled"
        await sender.call("send_message", target="reader", message="from b")
        sent_at = time.monotonic()
        received = await waiting
        woke_after = time.monotonic() - sent_at
    assert [m["message"] for m in received["messages"]] == ["from b"]
    assert woke_after < SETTLE, f"woken {woke_after:.1f} s after the send: not by A's listener"


async def test_a_task_through_b_wakes_a_worker_waiting_on_a(pair: tuple[ServerProcess, ServerProcess],
                                                            admin: Agent) -> None:
    a, b = pair
    worker_key = (await admin.call("create_key", programId="worker", groups=["builders"]))["apiKey"]
    lead_key = (await admin.call("create_key", programId="lead"))["apiKey"]
    async with Agent(a.url, worker_key) as worker, Agent(b.url, lead_key) as lead:
        waiting = asyncio.create_task(worker.call("claim_next", wait_seconds=WAIT))
        await asyncio.sleep(SETTLE)
        assert not waiting.done()
        task = await lead.call("create_task", title="from b", target="builders")
        created_at = time.monotonic()
        claimed = await waiting
        woke_after = time.monotonic() - created_at
    assert claimed["claimed"] and claimed["taskId"] == task["taskId"]
    assert woke_after < SETTLE, f"woken {woke_after:.1f} s after the task was created: not by A's listener"


async def test_a_key_revoked_through_b_ends_a_call_waiting_on_a(pair: tuple[ServerProcess, ServerProcess],
                                                                admin: Agent) -> None:
    a, b = pair
    created = await admin.call("create_key", programId="reader")
    admin_on_b = Agent(b.url, admin.key)
    async with Agent(a.url, created["apiKey"]) as reader, admin_on_b:
        waiting = asyncio.create_task(reader.raw("get_messages", wait_seconds=WAIT))
        await asyncio.sleep(SETTLE)
        assert not waiting.done()
        await admin_on_b.call("revoke_key", keyId=created["keyId"])
        revoked_at = time.monotonic()
        body = await waiting
        ended_after = time.monotonic() - revoked_at
        await admin_on_b.call("send_message", target="reader", message="after the revocation")
    assert body["success"] is False and body["error"]["code"] == "UNAUTHENTICATED", body
    assert ended_after < SETTLE, f"ended {ended_after:.1f} s after the revocation: not by A's listener"
    async with Agent(a.url, (await admin.call("create_key", programId="reader"))["apiKey"]) as replacement:
        inbox = await replacement.call("get_messages")
    assert [m["message"] for m in inbox["messages"]] == ["after the revocation"], "nothing was delivered"


