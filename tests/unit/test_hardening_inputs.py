"""Issue #11, inputs: every tool's integers, booleans and numbers are strict JSON types, every
number is finite, every integer is bounded, and nothing a store would refuse gets past `parse`."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ConfigDict, Field

from cachebash.adapters import firestore_store, sqlite_store
from cachebash.adapters.firestore_turns import Turns
from cachebash.domain.errors import InvalidInput
from cachebash.domain.inputs import MAX_INT, Input, parse
from cachebash.domain.messages import GetMessages
from cachebash.domain.programs import MAX_GROUPS_PER_PROGRAM, CreateKey
from cachebash.domain.sprints import CreateSprint
from cachebash.domain.tasks import ClaimNext, CompleteTask, GetTasks, ReportProgress
from cachebash.interface.tools import all_tools
from cachebash.ports.store import MAX_IN_VALUES

# What pydantic's lax mode would turn into a valid value, and JSON numbers that are not finite.
BAD: dict[str, list[Any]] = {
    "integer": [True, False, "5", 5.0, 5.5],
    "boolean": [1, 0, "true", "false", 1.0],
    "number": [True, "1.5", math.nan, math.inf, -math.inf],
}


def _kind(prop: dict[str, Any]) -> str | None:
    kinds = [p.get("type") for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    return kinds[0] if len(kinds) == 1 and kinds[0] in BAD else None


def _scalar_parameters() -> Iterator[tuple[str, type[Input], str, str]]:
    for spec in all_tools():
        for name, prop in spec.input.model_json_schema().get("properties", {}).items():
            if kind := _kind(prop):
                yield spec.name, spec.input, name, kind


SCALARS = list(_scalar_parameters())


def test_the_tools_have_scalar_parameters_to_check() -> None:
    kinds = {kind for _, _, _, kind in SCALARS}
    assert kinds == {"integer", "boolean", "number"} and len(SCALARS) > 15


@pytest.mark.parametrize(("tool", "model", "name", "kind"), SCALARS, ids=[f"{t}.{n}" for t, _, n, _ in SCALARS])
def test_every_scalar_parameter_of_every_tool_is_strict(tool: str, model: type[Input], name: str, kind: str) -> None:
    for bad in BAD[kind]:
        with pytest.raises(InvalidInput) as info:
            parse(model, {name: bad})
        fields = [problem["field"] for problem in info.value.details["problems"]]
        assert name in fields, f"{tool}.{name} took {bad!r}"


def _integers(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for where in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in where.get("properties", {}).items():
            for option in prop.get("anyOf", [prop]):
                if option.get("type") == "integer":
                    yield name, option
                if option.get("type") == "array" and option.get("items", {}).get("type") == "integer":
                    yield name, option["items"]


def test_every_integer_parameter_is_bounded_within_what_every_client_and_store_hold() -> None:
    for spec in all_tools():
        for name, prop in _integers(spec.input.model_json_schema()):
            assert prop.get("maximum", math.inf) <= MAX_INT, f"{spec.name}.{name} has no bound"
            assert prop.get("minimum", -math.inf) >= -MAX_INT, f"{spec.name}.{name} has no lower bound"


def test_strict_types_with_the_field_named() -> None:
    cases: list[tuple[type[Input], dict[str, Any], str, str]] = [
        (CompleteTask, {"taskId": "t", "claim_token": True}, "claim_token", "integer"),
        (CompleteTask, {"taskId": "t", "claim_token": "5"}, "claim_token", "integer"),
        (CompleteTask, {"taskId": "t", "tokens_in": 5.0}, "tokens_in", "not 5.0"),
        (CompleteTask, {"taskId": "t", "cost_usd": math.nan}, "cost_usd", "finite"),
        (GetTasks, {"wait_seconds": math.inf}, "wait_seconds", "finite"),
        (GetTasks, {"limit": "10"}, "limit", "integer"),
        (GetMessages, {"peek": 1}, "peek", "true or false"),
        (CreateKey, {"programId": "p", "admin": "true"}, "admin", "true or false"),
        (CreateSprint, {"projectName": "p", "stories": [{"id": "s", "title": "t", "wave": True}]},
         "stories.0.wave", "integer"),
    ]
    for model, arguments, field, rule in cases:
        with pytest.raises(InvalidInput) as info:
            parse(model, arguments)
        assert info.value.field == field and rule in info.value.message, (arguments, info.value.message)


def test_what_strict_still_takes() -> None:
    assert parse(ReportProgress, {"taskId": "t", "claim_token": 3, "progress": 0}).claim_token == 3
    assert parse(ClaimNext, {"wait_seconds": 2, "type": "all"}).wait_seconds == 2.0, "an integer is a number"
    assert parse(CompleteTask, {"taskId": "t", "cost_usd": 0.25, "completed_status": "FAILED",
                                "error_class": "TRANSIENT"}).cost_usd == 0.25
    assert parse(GetMessages, {"peek": True}).peek is True
    assert parse(CompleteTask, {"taskId": "t", "tokens_in": MAX_INT}).tokens_in == MAX_INT


def test_a_model_fed_from_text_may_opt_out_of_strictness() -> None:
    class FromQueryString(Input):
        model_config = ConfigDict(strict=False)
        days: int = Field(30, ge=1, le=366)

    class Amount(Input):
        model_config = ConfigDict(strict=False)
        usd: float = 0.0

    assert parse(FromQueryString, {"days": "7"}).days == 7
    with pytest.raises(InvalidInput, match="finite"):
        parse(Amount, {"usd": "nan"})


def test_text_that_is_not_unicode_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse(CompleteTask, {"taskId": "t", "result": "half a pair: \ud800"})
    assert info.value.field == "result"


def test_the_group_cap_is_what_one_queue_query_can_hold() -> None:
    assert MAX_GROUPS_PER_PROGRAM + 2 == MAX_IN_VALUES  # the program itself, its groups, and `all`
    with pytest.raises(InvalidInput) as info:
        parse(CreateKey, {"programId": "p", "groups": [f"g{i}" for i in range(MAX_GROUPS_PER_PROGRAM + 1)]})
    assert info.value.field == "groups"


def test_contention_answers_well_before_clients_give_up() -> None:
    """Common MCP clients give up on a tool call after about 30 s; a refusal must come in half that."""
    half_of_what_clients_wait = 15
    commit_lock_wait_s = 2  # on Google's emulator; Firestore aborts a blocked transaction at once
    slowest = max(firestore_store.TRANSACTION_DEADLINE_S + commit_lock_wait_s, sqlite_store.BUSY_TIMEOUT_S)
    assert slowest <= half_of_what_clients_wait


def test_a_turn_not_had_by_the_deadline_says_so() -> None:
    turns = Turns()
    with turns.retrying("tasks/hot"), turns.turn("tasks/hot", timeout=1) as first:
        assert first is True
        answers: list[bool] = []

        def late() -> None:
            with turns.turn("tasks/hot", timeout=0.05) as acquired:
                answers.append(acquired)

        thread = threading.Thread(target=late)
        thread.start()
        thread.join(5)
    assert answers == [False]
