"""Property-based fuzzing of every tool through `invoke`, the call both HTTP paths make.

Arguments are generated from each tool's published input schema (what an agent reads in
`tools/list`), valid ones and broken ones: a wrong type in one place, an unknown parameter, a
required one missing, a string one character too long. Whatever comes in, the answer is strict
JSON equal to the structured body; a refusal is a structured error (never INTERNAL), a
validation error names the field at fault; and a refusal leaves every document in the store as
it was. SQLite only: the snapshot lists its collections (`iter_collections`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cachebash.adapters.sqlite_store import SqliteStore, iter_collections
from cachebash.bootstrap import embedded_runtime
from cachebash.interface.tool_calls import invoke, make_runner
from cachebash.interface.tools import ToolSpec, all_tools
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller
from support.query_guard import QueryRecorder
from support.rules_file import rule_for_collection

TOOLS = {spec.name: spec for spec in all_tools()}
EXAMPLES = 30
#: Ids that exist in the fixture's store, so generated calls reach past "not found" now and then.
KNOWN: dict[str, list[str]] = {}

Json = Any


# ---------------------------------------------------------------- the store and its snapshot


@pytest.fixture
def runtime(tmp_path: Path, query_recorder: QueryRecorder) -> Iterator[Runtime]:
    store = SqliteStore(tmp_path / "fuzz.db")
    store.observers.append(query_recorder.observe)  # the index guard checks what the fuzzing asked
    rt = embedded_runtime(store, ManualClock(), strict=True)
    yield rt
    unnamed = sorted(c for c in iter_collections(store) if rule_for_collection(c) is None)
    store.close()
    assert unnamed == [], f"collections written but not named in firestore.rules: {unnamed}"


def snapshot(rt: Runtime) -> dict[str, Json]:
    """Every document in the store, by path (after the outbox's background deletions settle)."""
    while rt.dispatcher.flush():
        pass
    assert isinstance(rt.store, SqliteStore)
    # Rate-limit buckets (`rates`) are spent by every call, refused or not: the call's cost, not its change.
    return {f"{collection}/{doc.id}": doc.data for collection in sorted(iter_collections(rt.store))
            if not collection.endswith("/rates") for doc in rt.store.query(Query(collection))}


def seed(rt: Runtime, admin: Caller) -> None:
    """A task (claimed), a message and a sprint, their ids in KNOWN."""

    def call(tool: str, **arguments: Any) -> dict[str, Any]:
        answer = anyio.run(invoke, TOOLS[tool], rt, make_runner(rt), admin, arguments)
        assert not answer.error, answer.body
        return answer.body

    task = call("create_task", title="seeded", target="admin")
    call("claim_task", taskId=task["taskId"])
    message = call("send_message", target="builder", message="seeded")
    sprint = call("create_sprint", projectName="seeded", branch="main",
                  stories=[{"id": "story-1", "title": "one"}, {"id": "story-2", "title": "two", "wave": 2}])
    keys = call("list_keys")["keys"]
    KNOWN.update(taskId=[task["taskId"]], messageId=[message["messageId"]], sprintId=[sprint["sprintId"]],
                 storyId=["story-1", "story-2"], keyId=[k["keyId"] for k in keys], programId=["admin", "builder"],
                 target=["admin", "builder", "builders"])


# ---------------------------------------------------------------- arguments from a JSON schema

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False,
                                                                              allow_infinity=False) | st.text()
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def from_schema(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> st.SearchStrategy[Json]:
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[1]], defs, name)
    if "anyOf" in schema:
        return st.one_of([from_schema(option, defs, name) for option in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        if name == "wait_seconds":  # a real wait on the wall clock: keep it short
            return st.floats(0, 0.01)
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), defs, name), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" and "properties" in schema:
        return _object(schema, defs)
    if kind == "object":
        return st.dictionaries(st.text(max_size=8), any_json, max_size=3)
    return any_json


def _string(schema: dict[str, Any], name: str) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
    if "pattern" in schema:
        generated: st.SearchStrategy[str] = st.from_regex(re.compile(schema["pattern"]), fullmatch=True).filter(
            lambda s: low <= len(s) <= schema.get("maxLength", 10**9))
    else:
        generated = st.text(min_size=low, max_size=max(low, high))
    known = KNOWN.get(name)
    return st.sampled_from(known) | generated if known else generated


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Json]]:
    properties = schema["properties"]
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: from_schema(properties[name], defs, name) for name in properties if name in required},
        optional={name: from_schema(properties[name], defs, name) for name in properties if name not in required})


@st.composite
def broken(draw: st.DrawFn, spec: ToolSpec) -> dict[str, Json]:
    """Arguments with one thing wrong (or more, by chance): the refusals an agent might provoke."""
    schema = spec.input.model_json_schema()
    arguments: dict[str, Json] = dict(draw(from_schema(schema, schema.get("$defs", {}))))
    properties: dict[str, Any] = schema.get("properties", {})
    how = draw(st.sampled_from(["unknown", "wrong type", "missing", "too long"]))
    if how == "unknown":
        arguments[draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in properties))] = draw(any_json)
    elif how == "wrong type" and properties:
        arguments[draw(st.sampled_from(sorted(properties)))] = draw(any_json)
    elif how == "missing" and schema.get("required"):
        arguments.pop(draw(st.sampled_from(sorted(schema["required"]))), None)
    elif how == "too long":
        limited = [n for n, p in properties.items() if isinstance(p.get("maxLength"), int)]
        if limited:
            field = draw(st.sampled_from(limited))
            arguments[field] = "x" * (properties[field]["maxLength"] + 1)
    return arguments


def arguments_for(spec: ToolSpec) -> st.SearchStrategy[dict[str, Json]]:
    schema = spec.input.model_json_schema()
    return from_schema(schema, schema.get("$defs", {})) | broken(spec)


# ---------------------------------------------------------------- the property


def _strict(text: str) -> Json:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in an answer")

    return json.loads(text, parse_constant=refuse)


def check_refusal(error: dict[str, Any], arguments: dict[str, Json], spec: ToolSpec) -> None:
    """A code (never INTERNAL) and a sentence; a validation error names its field, and any
    `field` names an argument or a parameter of the tool (refusals about the key itself, such
    as FORBIDDEN for a non-admin key on an admin tool, name none)."""
    assert isinstance(error.get("code"), str) and error["code"] != "INTERNAL", error
    assert isinstance(error.get("message"), str) and error["message"], error
    field = error.get("field")
    if error["code"] == "VALIDATION_ERROR":
        assert isinstance(field, str), error
    if field is not None:
        top = field.split(".")[0]
        named = field in arguments or top in arguments or top in spec.input.model_fields
        assert field == "(arguments)" or named, error


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_any_arguments_get_a_strict_answer_and_a_refusal_changes_nothing(runtime: Runtime, tool: str) -> None:
    spec = TOOLS[tool]
    admin = make_caller(runtime, "admin", admin=True)
    builder = make_caller(runtime, "builder", groups=("builders",))
    seed(runtime, admin)
    run = make_runner(runtime)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(arguments=arguments_for(spec), as_admin=st.booleans())
    def property_holds(arguments: dict[str, Json], as_admin: bool) -> None:
        before = snapshot(runtime)
        answer = anyio.run(invoke, spec, runtime, run, admin if as_admin else builder, arguments)
        assert _strict(answer.text) == answer.body
        assert answer.body["success"] is (not answer.error)
        event("refused: " + answer.body["error"]["code"] if answer.error else "done")  # --hypothesis-show-statistics
        if answer.error:
            check_refusal(answer.body["error"], arguments, spec)
            assert snapshot(runtime) == before, f"{tool} refused {arguments} but changed the store"

    property_holds()
