"""What the server refuses, and that a refusal changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support.server import Agent, AgentFactory, ServerProcess

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "create_task", "arguments": {"title": "sneaky", "target": "builder"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def all_tasks(agent: Agent, target: str) -> list[dict[str, Any]]:
    return list((await agent.call("get_tasks", target=target, status="all", type="all", limit=50))["tasks"])


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer cb_not_a_real_key", "Basic dXNlcjpwYXNz"])
async def test_missing_or_unknown_key_is_401_and_runs_nothing(
        server: ServerProcess, agents: AgentFactory, authorization: str | None) -> None:
    watcher = await agents("builder")
    headers = dict(HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.post(server.url, json=INIT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await all_tasks(watcher, "builder") == []


async def test_revoked_key_is_401(server: ServerProcess, agents: AgentFactory) -> None:
    admin_view = await agents("boss", admin_key=True)
    doomed = await agents("builder")
    assert (await doomed.call("get_tasks"))["success"]
    key_id = next(k["keyId"] for k in (await admin_view.call("list_keys"))["keys"] if k["programId"] == "builder")
    await admin_view.call("revoke_key", keyId=key_id)
    response = httpx.post(server.url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {doomed.key}"})
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert await all_tasks(admin_view, "builder") == []


async def test_only_admin_keys_create_keys(agents: AgentFactory) -> None:
    builder = await agents("builder")
    error = await builder.fail("create_key", programId="intruder", admin=True)
    assert error["code"] == "FORBIDDEN"


@pytest.mark.parametrize(("arguments", "field", "words"), [
    ({"target": "builder"}, "title", "required"),
    ({"title": "x", "target": "builder", "priority": "urgent"}, "priority", "'high', 'normal' or 'low'"),
    ({"title": "x", "target": "builder", "type": "chore"}, "type", "task"),
    ({"title": ["x"], "target": "builder"}, "title", "text"),
    ({"title": "x", "target": "builder", "ttl": "tomorrow"}, "ttl", "integer"),
    ({"title": "x", "target": 7}, "target", "text"),
    ({"title": "x" * 500, "target": "builder"}, "title", "at most 200"),
    ({"title": "x", "target": "builder", "instructions": "y" * 20_001}, "instructions", "at most 20000"),
    ({"title": "x", "target": "builder", "priorty": "high"}, "priorty", "did you mean priority?"),
])
async def test_bad_create_task_input_is_a_clear_error_with_nothing_written(
        agents: AgentFactory, arguments: dict[str, Any], field: str, words: str) -> None:
    architect = await agents("architect")
    builder = await agents("builder")
    error = await architect.fail("create_task", **arguments)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["field"] == field
    assert words in error["message"]
    assert await all_tasks(builder, "builder") == []


async def test_bad_inputs_on_other_tools(agents: AgentFactory) -> None:
    builder = await agents("builder")
    cases = [
        ("send_message", {"target": "x", "message": "hi", "message_type": "SHOUT"}, "message_type"),
        ("send_message", {"target": "x", "message": ""}, "message"),
        ("get_tasks", {"limit": 500}, "limit"),
        ("get_tasks", {"cursor": "garbage"}, "cursor"),
        ("claim_task", {}, "taskId"),
        ("complete_task", {"taskId": "abc", "completed_status": "DONE"}, "completed_status"),
        ("update_program_state", {"contextSummary": {"activeWorkItems": "not a list"}},
         "contextSummary.activeWorkItems"),
    ]
    for tool, arguments, field in cases:
        error = await builder.fail(tool, **arguments)
        assert error["field"] == field, (tool, error)
    assert (await builder.fail("claim_task", taskId="does-not-exist"))["code"] == "NOT_FOUND"
    assert (await builder.call("get_messages", peek=True))["count"] == 0


async def test_source_naming_another_program_is_refused(agents: AgentFactory) -> None:
    builder = await agents("builder")
    reviewer = await agents("reviewer")
    error = await builder.fail("send_message", source="reviewer", target="reviewer", message="I am reviewer")
    assert error["code"] == "FORBIDDEN" and error["field"] == "source"
    assert (await reviewer.call("get_messages"))["count"] == 0


async def test_tenants_see_nothing_of_each_other(server: ServerProcess, agents: AgentFactory) -> None:
    mine = await agents("builder", groups=["builders"])
    architect = await agents("architect")
    task = await architect.call("create_task", title="tenant A only", target="builders")
    await architect.call("send_message", target="builder", message="for tenant A")
    await architect.call("update_program_state", contextSummary={"handoffNotes": "A's notes"})

    other_admin = server.cli("keys", "create", "--program", "admin", "--admin", "--tenant", "tenant-b")
    other_admin_key = other_admin.strip().splitlines()[-1]
    async with Agent(server.url, other_admin_key) as b_admin:
        b_key = (await b_admin.call("create_key", programId="builder", groups=["builders"]))["apiKey"]
        async with Agent(server.url, b_key) as theirs:
            assert (await theirs.call("get_tasks", status="all", type="all"))["count"] == 0
            assert (await theirs.call("get_tasks", target="builders", status="all"))["count"] == 0
            assert (await theirs.fail("claim_task", taskId=task["taskId"]))["code"] == "NOT_FOUND"
            assert (await theirs.fail("get_task", taskId=task["taskId"]))["code"] == "NOT_FOUND"
            assert (await theirs.call("get_messages"))["count"] == 0
            groups = {g["name"]: g["members"] for g in (await theirs.call("list_groups"))["groups"]}
            assert groups["all"] == ["admin", "builder"]
            assert (await b_admin.call("get_program_state", programId="architect"))["exists"] is False
            assert all(k["programId"] in ("admin", "builder") for k in (await b_admin.call("list_keys"))["keys"])
    assert (await mine.call("claim_task", taskId=task["taskId"]))["success"]
    assert (await mine.call("get_messages"))["count"] == 1


async def test_tools_are_described_for_an_llm(agents: AgentFactory) -> None:
    builder = await agents("builder")
    tools = {t.name: t for t in await builder.list_tools()}
    assert {"create_task", "get_tasks", "claim_task", "complete_task", "report_task_progress", "get_task",
            "send_message", "get_messages", "get_thread", "list_groups", "get_program_state",
            "update_program_state", "create_key", "list_keys", "revoke_key"} <= set(tools)
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
        for name, prop in tool.input_schema.get("properties", {}).items():
            described = prop.get("description") or "$ref" in prop or "anyOf" in prop
            assert described, f"{tool.name}.{name} has no description"
    create = tools["create_task"].input_schema
    assert set(create["required"]) == {"title", "target"}
    assert tools["get_tasks"].annotations.read_only_hint is True
