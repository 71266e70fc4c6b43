"""Names an LLM gets right: both spellings of every parameter of every tool, the closest known
name for an unknown one, and lists or objects sent as JSON text (`domain.arguments`, applied by
`parse`, which both request paths call)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cachebash.domain.arguments import other_spelling, spellings
from cachebash.domain.errors import InvalidInput
from cachebash.domain.inputs import Input, parse
from cachebash.domain.programs import CreateKey, UpdateProgramState
from cachebash.domain.sprints import CreateSprint
from cachebash.domain.tasks import CompleteTask, CreateTask
from cachebash.interface.tools import all_tools

TOOLS = {spec.name: spec for spec in all_tools()}
PARAMETERS = [(tool, name) for tool, spec in TOOLS.items() for name in spec.input.model_fields]
ALIASED = [(tool, name) for tool, name in PARAMETERS if other_spelling(name) != name]
#: A value no parameter takes, so every parameter it is passed under gets a problem of its own.
WRONG = [[[]]]


def refusal(model: type[Input], arguments: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse(model, arguments)
    return info.value


def test_spellings() -> None:
    assert [other_spelling(n) for n in ("claim_token", "taskId", "maxRetries", "type", "tokens_in")] == [
        "claimToken", "task_id", "max_retries", "type", "tokensIn"]
    for spec in TOOLS.values():  # no tool has two fields that are one name spelled twice
        assert len(set(spellings(spec.input).values())) == len(spec.input.model_fields), spec.name


@pytest.mark.parametrize(("tool", "name"), ALIASED, ids=[f"{t}.{n}" for t, n in ALIASED])
def test_the_other_spelling_is_the_same_parameter(tool: str, name: str) -> None:
    """Passed under its alias, a parameter is judged as itself: a problem names the schema's
    spelling, and none says the alias is unknown."""
    alias = other_spelling(name)
    problems = refusal(TOOLS[tool].input, {alias: WRONG}).details["problems"]
    fields = [p["field"] for p in problems]
    assert any(f == name or f.startswith(name + ".") for f in fields), problems
    assert alias not in fields and not any("unknown parameter" in p["rule"] for p in problems), problems


@pytest.mark.parametrize(("tool", "name"), PARAMETERS, ids=[f"{t}.{n}" for t, n in PARAMETERS])
def test_a_misspelt_parameter_gets_the_closest_name(tool: str, name: str) -> None:
    typo = name[:-1] if len(name) > 3 else name + "x"
    error = refusal(TOOLS[tool].input, {typo: 1})
    assert error.field == typo
    assert error.message.startswith(f"unknown parameter '{typo}': did you mean {name}?")
    assert error.details["problems"][0]["didYouMean"] == name


def test_an_unknown_name_far_from_any_lists_the_parameters() -> None:
    error = refusal(TOOLS["get_task"].input, {"taskId": "t1", "zzzzzzzz": 1})
    assert error.message == "unknown parameter 'zzzzzzzz': the parameters are taskId"
    assert refusal(TOOLS["list_keys"].input, {"zzzzzzzz": 1}).message.endswith("this tool takes no parameters")


def test_nested_names_too() -> None:
    sprint = parse(CreateSprint, {"project_name": "p", "stories": [{"id": "s1", "title": "t", "max_retries": 2}]})
    assert sprint.stories[0].maxRetries == 2
    state = parse(UpdateProgramState, {"context_summary": {"last_task": {"task_id": "t1"}, "handoff_notes": "n"}})
    assert state.contextSummary.lastTask is not None and state.contextSummary.lastTask.taskId == "t1"
    error = refusal(CreateSprint, {"projectName": "p", "stories": [{"id": "s1", "title": "t", "wav": 2}]})
    assert error.message == "unknown parameter 'stories.0.wav': did you mean wave?"


def test_an_echoed_claim_token_and_the_canonical_name_give_one_command() -> None:
    echoed = parse(CompleteTask, {"task_id": "t1", "claimToken": 3, "completedStatus": "FAILED",
                                  "errorClass": "TRANSIENT", "tokensIn": 5, "costUsd": 0.5})
    canonical = parse(CompleteTask, {"taskId": "t1", "claim_token": 3, "completed_status": "FAILED",
                                     "error_class": "TRANSIENT", "tokens_in": 5, "cost_usd": 0.5})
    assert echoed == canonical


def test_both_spellings_at_once_are_refused() -> None:
    error = refusal(CompleteTask, {"taskId": "t1", "claim_token": 3, "claimToken": 4})
    assert error.field == "claimToken" and "two spellings of the same parameter" in error.message


def test_lists_and_objects_sent_as_json_text() -> None:
    stories = [{"id": "s1", "title": "one"}, {"id": "s2", "title": "two", "wave": 2}]
    assert parse(CreateSprint, {"projectName": "p", "stories": json.dumps(stories)}) == parse(
        CreateSprint, {"projectName": "p", "stories": stories})
    state = parse(UpdateProgramState, {"contextSummary": json.dumps({"lastTask": {"taskId": "t1"}})})
    assert state.contextSummary.lastTask is not None and state.contextSummary.lastTask.taskId == "t1"
    assert parse(CreateKey, {"programId": "b", "groups": '["builders"]'}).groups == ["builders"]


def test_json_text_is_read_only_where_text_is_not_wanted() -> None:
    assert parse(CreateTask, {"title": "x", "target": "b", "instructions": "[1, 2]"}).instructions == "[1, 2]"
    for text in ("not json", "5", '{"id": 1}', "[NaN]"):  # not JSON, or JSON of another kind: refused as text
        error = refusal(CreateSprint, {"projectName": "p", "stories": text})
        assert error.field == "stories" and "must be a JSON array" in error.message
