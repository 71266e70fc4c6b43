"""The wire's JSON: strict in (no NaN, Infinity, lone surrogates or too-deep nesting), strict out."""

from __future__ import annotations

import json
import math

import pytest

from cachebash.interface import refusals, wire_json


@pytest.mark.parametrize(("body", "named"), [
    (b'{"cost_usd": Infinity}', "Infinity"),
    (b'{"cost_usd": -Infinity}', "-Infinity"),
    (b'{"cost_usd": NaN}', "NaN"),
    (b'[1, [2, {"x": NaN}]]', "NaN"),
])
def test_non_finite_tokens_are_refused_by_name(body: bytes, named: str) -> None:
    with pytest.raises(wire_json.NotStrictJson) as refused:
        wire_json.loads(body)
    assert refused.value.message.startswith("Parse error: " + named + " is not a JSON number")


@pytest.mark.parametrize("body", [b"[1e400]", b'{"a": -1E+999}', b"[" + b"9" * 400 + b".0]"])
def test_numbers_that_overflow_to_infinity_are_refused(body: bytes) -> None:
    assert math.isinf(json.loads(body)[0] if body.startswith(b"[") else json.loads(body)["a"])
    with pytest.raises(wire_json.NotStrictJson, match="too large for a 64-bit float"):
        wire_json.loads(body)


@pytest.mark.parametrize("body", [
    b'{"taskId": "\\ud800"}',            # a lone surrogate escape
    b'{"taskId": "\xed\xa0\x80"}',       # a surrogate encoded as UTF-8
    b"[" * 300 + b"]" * 300,             # deeper than the SDK's parser allows (Python's allows it)
    b'\xef\xbb\xbf{"a": 1}',             # a byte order mark
])
def test_what_only_pythons_parser_accepts_is_refused(body: bytes) -> None:
    json.loads(body)  # Python's own parser takes it...
    with pytest.raises(wire_json.NotStrictJson) as refused:
        wire_json.loads(body)
    assert refused.value.message.startswith("Parse error: ")


@pytest.mark.parametrize("body", [b"", b"{", b'{"a": 1,}', b"\xff", b"[" * 2000 + b"]" * 2000, b'"a\x01"'])
def test_what_no_parser_accepts_is_not_json(body: bytes) -> None:
    with pytest.raises(wire_json.NotJson):
        wire_json.loads(body)


def test_strict_json_decodes_as_python_does() -> None:
    body = b'{"a": [1, 2.5, -0.0, 1e-400, 1e308, "t\\u00e2che", null, true], "a": {"b": "\\ud83d\\ude00"}}'
    assert wire_json.loads(body) == json.loads(body)
    assert wire_json.loads(b"[" + b"1" * 4300 + b"]") == json.loads(b"[" + b"1" * 4300 + b"]")


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), {"nested": [float("inf")]}])
def test_answers_never_carry_non_finite_numbers(value: object) -> None:
    with pytest.raises(ValueError):
        wire_json.dumps(value)


def test_answers_never_carry_lone_surrogates_or_non_json_types() -> None:
    with pytest.raises(ValueError):
        wire_json.dumps({"text": "\ud800"})
    with pytest.raises(TypeError):
        wire_json.dumps({"when": object()})
    assert wire_json.dumps({"a": "tâche", "b": [1.5, None]}) == '{"a":"tâche","b":[1.5,null]}'


def test_the_parse_error_is_the_sdks_shape() -> None:
    assert json.loads(wire_json.parse_error("Parse error: x")) == {
        "jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error: x"}}


def test_refusal_codes_and_internal_errors() -> None:
    assert json.loads(refusals.error_body(413, "too big", maxBytes=5)) == {
        "success": False, "error": {"code": "PAYLOAD_TOO_LARGE", "message": "too big", "maxBytes": 5}}
    assert refusals.code_for(599) == "HTTP_599"
    error = refusals.internal_error("get_task").to_dict()
    assert error["code"] == "INTERNAL" and error["requestId"].startswith("req_")
    assert error["requestId"] in error["message"]


def test_answers_encode_as_json_would_where_orjson_differs() -> None:
    # orjson writes NaN as null: a body that also has a real null is still refused.
    with pytest.raises(ValueError):
        wire_json.dumps({"a": None, "b": [float("nan")]})
    for value in [{"big": 2**70}, {1: "int key"}, {"a": None, "t": "tâche 😀", "f": 0.0042, "n": -0.0}]:
        assert wire_json.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(wire_json.quoted('{"a":"tâche \\"x\\""}')) == '{"a":"tâche \\"x\\""}'
