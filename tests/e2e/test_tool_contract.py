"""What every tool promises in `tools/list`, checked through the official MCP client over HTTP on
both request paths (the fast path, and the SDK's with CACHEBASH_MCP_FAST_PATH=0): a description
on every parameter, a title, hints, an outputSchema, the same listing on both; every tool's real
answer valid against its outputSchema (`Agent.raw` checks every answer of the e2e suite, refusals
too); and the names an LLM echoes accepted on both paths alike."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonschema
import pytest

from cachebash.domain.arguments import other_spelling
from cachebash.interface.tools import all_tools
from support.server import Agent, ServerProcess

pytestmark = pytest.mark.anyio
PATHS = ["fast", "sdk"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    fast = ServerProcess(tmp_path_factory.mktemp("fast") / "data").start()
    sdk = ServerProcess(tmp_path_factory.mktemp("sdk") / "data", env={"CACHEBASH_MCP_FAST_PATH": "0"}).start()
    yield {"fast": fast, "sdk": sdk}
    fast.stop()
    sdk.stop()


@pytest.fixture
async def admin(servers: dict[str, ServerProcess], request: pytest.FixtureRequest) -> AsyncIterator[Agent]:
    server = servers[request.param]
    assert server.admin_key is not None
    async with Agent(server.url, server.admin_key) as agent:
        yield agent


def _listing(tools: list[Any]) -> list[dict[str, Any]]:
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


def _undescribed(schema: dict[str, Any], where: str) -> list[str]:
    """Every property, at any depth ($defs too), that has no description of its own."""
    missing = [f"{where}.{name}" for name, prop in schema.get("properties", {}).items() if not prop.get("description")]
    for name, definition in schema.get("$defs", {}).items():
        missing += _undescribed(definition, f"{where}/{name}")
    return missing


async def test_both_paths_list_the_same_tools(servers: dict[str, ServerProcess]) -> None:
    listings = []
    for server in servers.values():
        assert server.admin_key is not None
        async with Agent(server.url, server.admin_key) as agent:
            listings.append(_listing(await agent.list_tools()))
    assert listings[0] == listings[1]
    assert [tool["name"] for tool in listings[0]] == [spec.name for spec in all_tools()]


@pytest.mark.parametrize("admin", PATHS, indirect=True)
async def test_every_parameter_is_described_and_every_tool_has_an_output_schema(admin: Agent) -> None:
    problems = []
    for tool in _listing(await admin.list_tools()):
        problems += _undescribed(tool["inputSchema"], tool["name"])
        if "outputSchema" not in tool:
            problems.append(f"{tool['name']}: no outputSchema")
        else:
            jsonschema.Draft202012Validator.check_schema(tool["outputSchema"])
            assert tool["outputSchema"]["type"] == "object"
        if not tool.get("title") or "annotations" not in tool:
            problems.append(f"{tool['name']}: no title or annotations")
    assert problems == []


@pytest.mark.parametrize("admin", PATHS, indirect=True)
async def test_the_hints_say_what_a_call_may_do(admin: Agent) -> None:
    hints = {tool["name"]: tool["annotations"] for tool in _listing(await admin.list_tools())}
    assert hints["revoke_key"]["destructiveHint"] is True and hints["complete_sprint"]["destructiveHint"] is True
    assert hints["create_task"]["destructiveHint"] is False and hints["get_tasks"]["readOnlyHint"] is True
    assert hints["get_messages"]["readOnlyHint"] is False  # it marks what it returns as delivered
    assert all(h["openWorldHint"] is False for h in hints.values())


async def _tour(admin: Agent, builder: Agent) -> set[str]:
    """Every tool, called once the way the seeds do; `Agent.raw` validates each answer."""
    called: set[str] = set()

    async def call(agent: Agent, tool: str, **arguments: Any) -> dict[str, Any]:
        called.add(tool)
        return await agent.call(tool, **arguments)

    task = await call(admin, "create_task", title="tour", target="tour-builder", instructions="do it")
    await call(builder, "get_tasks")
    claim = await call(builder, "claim_task", taskId=task["taskId"])
    await call(builder, "report_task_progress", taskId=task["taskId"], claim_token=claim["claimToken"], progress=50)
    await call(builder, "renew_claim", taskId=task["taskId"])
    await call(builder, "release_task", taskId=task["taskId"], reason="handing back")
    await call(builder, "claim_next")
    await call(admin, "list_programs")  # while the builder holds the task: a `holding` row
    await call(builder, "get_task", taskId=task["taskId"])
    await call(builder, "complete_task", taskId=task["taskId"], result="done", tokens_in=120, tokens_out=30,
               cost_usd=0.004, model="tour-model", provider="tour-provider")
    sent = await call(admin, "send_message", target="tour-builder", message="hi", threadId="tour")
    await call(builder, "get_messages")
    await call(builder, "get_thread", threadId="tour")
    await call(builder, "get_message", messageId=sent["messageId"])
    await call(builder, "list_groups")
    sprint = await call(admin, "create_sprint", projectName="tour", stories=[{"id": "s1", "title": "one"}])
    await call(admin, "add_story_to_sprint", sprintId=sprint["sprintId"], story={"id": "s2", "title": "two", "wave": 2})
    await call(admin, "update_sprint_story", sprintId=sprint["sprintId"], storyId="s1", status="skipped")
    await call(admin, "get_sprint", sprintId=sprint["sprintId"])
    await call(admin, "complete_sprint", sprintId=sprint["sprintId"], cancel=True, reason="tour over")
    await call(builder, "update_program_state", contextSummary={"lastTask": {"taskId": task["taskId"]}})
    await call(builder, "get_program_state")
    spare = await call(admin, "create_key", programId="tour-spare")
    await call(admin, "list_keys")
    await call(admin, "revoke_key", keyId=spare["keyId"])
    mine = await call(builder, "get_usage", period="today", group_by="model")
    assert (mine["scope"], mine["totals"]["completed"], mine["totals"]["costUsd"]) == ("program", 1, 0.004)
    assert [row["key"] for row in mine["rows"]] == ["tour-model", "unknown"]  # claimed before the model was known
    everyone = await call(admin, "get_cost_summary", period="month", group_by="program")
    assert everyone["scope"] == "tenant" and everyone["totals"]["created"] >= 2 and everyone["quota"]["used"] >= 2
    return called


@pytest.mark.parametrize("admin", PATHS, indirect=True)
async def test_every_tool_answers_what_its_output_schema_says(admin: Agent) -> None:
    created = await admin.call("create_key", programId="tour-builder", groups=["builders"])
    async with Agent(admin.url, created["apiKey"]) as builder:
        called = await _tour(admin, builder)
        for refused in (await builder.raw("get_task", taskId="nope"), await builder.raw("claim_task")):
            assert refused["success"] is False  # refusals, validated against the same schemas by raw
    assert called == {tool.name for tool in await admin.list_tools()}


@pytest.mark.parametrize("admin", PATHS, indirect=True)
async def test_an_agent_echoing_camel_case_and_json_text_is_understood(admin: Agent) -> None:
    created = await admin.call("create_key", programId="echo-builder")
    async with Agent(admin.url, created["apiKey"]) as builder:
        task = await admin.call("create_task", title="echo", target="echo-builder", maxAttempts=2)
        claim = await builder.call("claim_task", task_id=task["taskId"], leaseSeconds=60)
        done = await builder.call("complete_task", taskId=task["taskId"], claimToken=claim["claimToken"],
                                  completedStatus="SUCCESS", tokensIn=10, costUsd=0.01)
        assert done["completedStatus"] == "SUCCESS"
        typo = await builder.fail("get_tasks", waitSecond=1)
        assert typo["message"] == "unknown parameter 'waitSecond': did you mean wait_seconds?"
    stories = json.dumps([{"id": "s1", "title": "one", "max_retries": 1}, {"id": "s2", "title": "two", "wave": 2}])
    sprint = await admin.call("create_sprint", project_name="as text", stories=stories)
    assert sprint["stories"] == 2 and sprint["waves"] == [1, 2]


def test_every_alias_differs_from_its_name_only_in_style() -> None:
    """The aliases the README promises are exactly the snake/camel twins of the schema's names."""
    for spec in all_tools():
        for name in spec.input.model_fields:
            assert other_spelling(name).replace("_", "").lower() == name.replace("_", "").lower()


@pytest.mark.parametrize("admin", PATHS, indirect=True)
async def test_an_unknown_tool_is_a_refusal_that_lists_the_tools(admin: Agent) -> None:
    error = await admin.fail("get_task_list")
    assert error["code"] == "UNKNOWN_TOOL" and error["field"] == "name"
    assert error["message"].startswith("no tool named 'get_task_list'; did you mean get_tasks?")
    assert error["tools"] == [spec.name for spec in all_tools()]
