"""The owner API over HTTP, against a real server: sign-in, what agents cannot do to it, and
each thing the person does reaching the agents through their ordinary MCP tools."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest

from support.console import Owner, login_link
from support.server import Agent, AgentFactory, ServerProcess

pytestmark = pytest.mark.anyio


@pytest.fixture
def owner(server: ServerProcess) -> Iterator[Owner]:
    person = Owner(server, "t-" + uuid.uuid4().hex[:10])
    yield person
    person.close()


@pytest.fixture
async def fleet(server: ServerProcess, owner: Owner) -> AsyncIterator[AgentFactory]:
    """Agents in the owner's tenant, with keys the owner made in the console."""
    async with AsyncExitStack() as stack:
        async def make(program: str, groups: list[str] | None = None) -> Agent:
            created = owner.post("/keys", {"programId": program, "groups": groups or []})
            return await stack.enter_async_context(Agent(server.url, created["apiKey"]))

        yield make


def test_login_link_is_single_use_and_sets_a_strict_httponly_cookie(server: ServerProcess) -> None:
    link = login_link(server, "t-" + uuid.uuid4().hex[:10])
    first = httpx.get(link, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/console/#/inbox"
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
    again = httpx.get(link, follow_redirects=False)
    assert again.status_code == 401 and "already used" in again.text


def test_what_is_not_the_owner_is_refused_and_writes_nothing(server: ServerProcess, owner: Owner,
                                                             tenant_admin_key: str) -> None:
    base = f"{server.base}/v1/owner"
    assert httpx.get(f"{base}/inbox").status_code == 401  # no cookie
    assert httpx.get(f"{base}/inbox", cookies={"cb_console": "forged"}).status_code == 401
    agent_key = httpx.get(f"{base}/tasks", headers={"Authorization": f"Bearer {tenant_admin_key}"})
    assert agent_key.status_code == 401 and "API keys are for agents" in agent_key.json()["error"]["message"]
    refused = owner.post("/tasks", {"title": "forged", "target": "builder"}, csrf=False, status=403)
    assert refused["error"]["code"] == "CSRF"
    assert owner.get("/tasks")["tasks"] == []
    mine = owner.post("/tasks", {"title": "mine", "target": "builder"})
    stranger = Owner(server, "t-" + uuid.uuid4().hex[:10])
    try:
        assert stranger.http.get(f"/v1/owner/tasks/{mine['taskId']}").status_code == 404
        assert stranger.post(f"/tasks/{mine['taskId']}/cancel", status=404)["error"]["code"] == "NOT_FOUND"
    finally:
        stranger.close()
    assert owner.get(f"/tasks/{mine['taskId']}")["task"]["status"] == "created"
    assert owner.send("PUT", "/tasks", status=405)["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_an_answer_in_the_inbox_wakes_the_waiting_asker(owner: Owner, fleet: AgentFactory) -> None:
    builder = await fleet("builder")
    asked = await builder.call("send_message", target="human", message_type="QUERY", message="Merge PR #12?",
                               threadId="pr-12")
    waiting = asyncio.create_task(builder.call("get_messages", wait_seconds=20))
    inbox = await asyncio.to_thread(owner.get, "/inbox")
    item = next(i for i in inbox["items"] if i["id"] == asked["messageId"])
    assert item["open"] and item["from"] == "builder" and inbox["openCount"] == 1
    await asyncio.sleep(0.3)  # the agent is parked in its wait
    answered_at = time.monotonic()
    await asyncio.to_thread(owner.post, "/replies", {"replyTo": asked["messageId"], "message": "Yes, merge."})
    got = await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - answered_at < 1.0
    [answer] = got["messages"]
    assert (answer["source"], answer["message_type"], answer["reply_to"], answer["message"]) == (
        "human", "RESULT", asked["messageId"], "Yes, merge.")
    assert answer["priority"] == "high" and answer["threadId"] == "pr-12"
    assert (await builder.call("get_message", messageId=asked["messageId"]))["message"]["answer"] == "Yes, merge."
    assert (await asyncio.to_thread(owner.get, "/counts"))["openQuestions"] == 0


async def test_long_polling_returns_when_the_view_changes(owner: Owner, fleet: AgentFactory) -> None:
    builder = await fleet("builder")
    first = await asyncio.to_thread(owner.get, "/inbox")
    started = time.monotonic()
    waiting = asyncio.create_task(asyncio.to_thread(owner.get, "/inbox", wait=20, version=first["version"]))
    await asyncio.sleep(0.3)
    question = await builder.call("create_task", type="question", target="human", title="Which DB?")
    changed = await asyncio.wait_for(waiting, 10)
    assert time.monotonic() - started < 5
    assert changed["version"] != first["version"] and changed["items"][0]["id"] == question["taskId"]
    same = await asyncio.to_thread(owner.get, "/inbox", wait=0.5, version=changed["version"])
    assert same["version"] == changed["version"]


async def test_a_key_made_in_the_console_works_until_revoked_and_rotation_replaces_it(
        server: ServerProcess, owner: Owner) -> None:
    created = owner.post("/keys", {"programId": "reviewer", "groups": ["council"], "label": "Reviewer - Cursor"})
    assert created["mcpUrl"] == server.url and created["qrSvg"].startswith("<svg")
    assert {c["client"].split(" (")[0] for c in created["configs"]} >= {"Claude Code", "Cursor", "Gemini CLI",
                                                                        "VS Code"}
    assert all(created["apiKey"] in c["text"] for c in created["configs"])
    async with Agent(server.url, created["apiKey"]) as reviewer:
        assert (await reviewer.call("get_program_state"))["programId"] == "reviewer"
    rotated = owner.post(f"/keys/{created['keyId']}/rotate")
    assert rotated["programId"] == "reviewer" and rotated["rotated"] == created["keyId"]
    mcp = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    old = httpx.post(server.url, json=ping, headers={**mcp, "Authorization": f"Bearer {created['apiKey']}"})
    assert old.status_code == 401
    new = httpx.post(server.url, json=ping, headers={**mcp, "Authorization": f"Bearer {rotated['apiKey']}"})
    assert new.status_code == 200
    owner.send("DELETE", f"/keys/{rotated['keyId']}")
    assert httpx.post(server.url, json=ping, headers={**mcp, "Authorization": f"Bearer {rotated['apiKey']}"}
                      ).status_code == 401
    listed = {k["keyId"]: k for k in owner.get("/keys")["keys"]}
    assert not listed[created["keyId"]]["active"] and not listed[rotated["keyId"]]["active"]
    agents = {a["programId"]: a for a in owner.get("/agents")["agents"]}
    assert agents["reviewer"]["groups"] == ["council"] and agents["reviewer"]["lastSeenAt"]


async def test_the_person_sends_work_and_steers_tasks(owner: Owner, fleet: AgentFactory) -> None:
    builder = await fleet("builder", ["builders"])
    await fleet("other")
    sent = await asyncio.to_thread(owner.post, "/messages", {"target": "builders", "message_type": "DIRECTIVE",
                                                             "message": "Stop and rebase."})
    assert sent["recipients"] == ["builder"]
    made = await asyncio.to_thread(owner.post, "/tasks", {"title": "Fix the login bug", "target": "builder",
                                                          "priority": "high", "instructions": "see #4"})
    claimed = await builder.call("claim_next")
    assert claimed["taskId"] == made["taskId"] and claimed["task"]["source"] == "human"
    assert (await builder.call("get_messages"))["messages"][0]["message"] == "Stop and rebase."
    detail = await asyncio.to_thread(owner.get, f"/tasks/{made['taskId']}")
    assert detail["actions"] == ["cancel", "reassign"] and detail["task"]["claimedBy"] == "builder"
    moved = await asyncio.to_thread(owner.post, f"/tasks/{made['taskId']}/reassign", {"target": "other"})
    assert moved["status"] == "created"
    lost = await builder.fail("complete_task", taskId=made["taskId"], claim_token=claimed["task"]["claimToken"])
    assert lost["code"] == "CLAIM_LOST"
    board = await asyncio.to_thread(owner.get, "/tasks", state="queued", target="other")
    assert [t["taskId"] for t in board["tasks"]] == [made["taskId"]]
    cancelled = await asyncio.to_thread(owner.post, f"/tasks/{made['taskId']}/cancel", {"reason": "not needed"})
    assert cancelled["status"] == "cancelled"
    again = await asyncio.to_thread(owner.post, f"/tasks/{made['taskId']}/cancel", {}, status=409)
    assert again["error"]["code"] == "INVALID_TRANSITION"
    bad = await asyncio.to_thread(owner.post, "/tasks", {"title": "", "target": "builder"}, status=400)
    assert bad["error"]["field"] == "title"
