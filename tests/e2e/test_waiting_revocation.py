"""A key revoked while a call it authenticated is waiting: the call ends with UNAUTHENTICATED
at once, and claims or delivers nothing, also what was created after the revocation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from support.server import Agent, ServerProcess

pytestmark = pytest.mark.anyio

WAIT = 20  # far longer than any answer below may take: a call that answers early was ended


@pytest.fixture
async def admin(server: ServerProcess, tenant_admin_key: str) -> AsyncIterator[Agent]:
    async with Agent(server.url, tenant_admin_key) as agent:
        yield agent


async def _key(admin: Agent, program: str, groups: list[str] | None = None) -> dict[str, str]:
    return await admin.call("create_key", programId=program, groups=groups or [])


async def _revoked_while_waiting(admin: Agent, key_id: str, waiting: asyncio.Task[dict[str, object]]) -> float:
    await asyncio.sleep(0.5)
    assert not waiting.done(), "nothing to take yet: the call waits"
    await admin.call("revoke_key", keyId=key_id)
    revoked_at = time.monotonic()
    await waiting
    return time.monotonic() - revoked_at


async def test_a_waiting_claim_next_ends_when_its_key_is_revoked(server: ServerProcess, admin: Agent) -> None:
    worker_key = await _key(admin, "worker", ["builders"])
    lead = await _key(admin, "lead")
    async with Agent(server.url, worker_key["apiKey"]) as worker, Agent(server.url, lead["apiKey"]) as boss:
        waiting = asyncio.create_task(worker.raw("claim_next", target="builders", wait_seconds=WAIT))
        ended_after = await _revoked_while_waiting(admin, worker_key["keyId"], waiting)
        task = await boss.call("create_task", title="after the revocation", target="builders")
        body = waiting.result()
    assert body["success"] is False and body["error"]["code"] == "UNAUTHENTICATED", body
    assert worker_key["keyId"] in body["error"]["message"] and "waiting" in body["error"]["message"]
    assert ended_after < WAIT / 2, f"the wait ended {ended_after:.1f} s after the revocation, not at once"
    queued = (await admin.call("get_tasks", target="builders"))["tasks"]
    assert [(t["taskId"], t["status"]) for t in queued] == [(task["taskId"], "created")], "nothing was claimed"


async def test_a_waiting_get_messages_ends_when_its_key_is_revoked(server: ServerProcess, admin: Agent) -> None:
    reader_key = await _key(admin, "reader")
    async with Agent(server.url, reader_key["apiKey"]) as reader:
        waiting = asyncio.create_task(reader.raw("get_messages", wait_seconds=WAIT))
        ended_after = await _revoked_while_waiting(admin, reader_key["keyId"], waiting)
        await admin.call("send_message", target="reader", message="after the revocation")
        body = waiting.result()
    assert body["success"] is False and body["error"]["code"] == "UNAUTHENTICATED", body
    assert ended_after < WAIT / 2, f"the wait ended {ended_after:.1f} s after the revocation, not at once"
    async with Agent(server.url, (await _key(admin, "reader"))["apiKey"]) as replacement:
        inbox = await replacement.call("get_messages")
    assert [m["message"] for m in inbox["messages"]] == ["after the revocation"], "nothing was delivered"
