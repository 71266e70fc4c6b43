"""JSON on the wire, strictly (RFC 8259), in both directions.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity` tokens, lone UTF-16 surrogates and
deep nesting, and writes non-finite floats back out as those same tokens, which `JSON.parse`
and most other parsers refuse. A value that got in that way was stored and then poisoned
every later answer that carried it. So requests are decoded with the parser the MCP SDK uses
for handshake-era requests (pydantic-core's), with non-finite numbers refused, and answers are
encoded with `allow_nan=False`.

`loads` tells two kinds of bad body apart: `NotStrictJson` is a body Python's lenient parser
would have taken (so something down the line might have accepted it) and that the wire refuses
in its own words; `NotJson` is a body no JSON parser takes, which the MCP SDK refuses in its own
words at each protocol version.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pydantic_core

PARSE_ERROR = -32700


class NotStrictJson(ValueError):
    """Lenient JSON that the wire refuses (non-finite numbers, lone surrogates, too deep)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotJson(ValueError):
    """Not JSON at all."""


def loads(body: bytes) -> Any:
    """The decoded body; raises NotStrictJson or NotJson."""
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        lenient = _lenient_problem(body)
        if lenient is None:
            raise NotJson(str(exc)) from None
        raise NotStrictJson(lenient or f"Parse error: {exc}") from None
    if _has_non_finite(value):
        # A literal such as 1e400 parses, as a float, to infinity.
        raise NotStrictJson("Parse error: a number is too large for a 64-bit float (it would be Infinity); "
                            "send a finite number")
    return value


def dumps(value: Any) -> str:
    """Compact JSON text that any JSON parser accepts; raises ValueError for NaN or Infinity
    (and for strings that cannot be encoded as UTF-8, i.e. lone surrogates), TypeError for
    values JSON has no form for.

    orjson encodes (several times faster than `json`, most of an answer's encoding cost),
    but writes NaN and Infinity as null: so a body whose text has a null is searched for a
    non-finite number, and refused if it holds one. What orjson refuses (lone surrogates,
    integers beyond 64 bits, non-string keys, datetimes) goes to `json`, which encodes it as
    before or raises the error above."""
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _json_dumps(value)
    if b"null" in data and _has_non_finite(value):
        raise ValueError("Out of range float values are not JSON compliant (NaN or Infinity)")
    return data.decode()


def quoted(text: str) -> str:
    """`text` as a JSON string (the text content an answer carries next to its structured form)."""
    return orjson.dumps(text).decode()


#: datetimes and dataclasses have no JSON form here (as with `json`): orjson hands them back.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_dumps(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text.encode()  # raises UnicodeEncodeError (a ValueError) on a lone surrogate
    return text


def parse_error(message: str) -> bytes:
    """A JSON-RPC parse error without a request id, as the MCP SDK writes one."""
    return dumps({"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": message}}).encode()


def _lenient_problem(body: bytes) -> str | None:
    """Why Python's parser accepts a body the strict one refused: a message naming a
    non-finite token, "" for any other reason (the strict parser's message says it), or None
    when Python's parser refuses the body too."""
    found: list[str] = []

    def constant(name: str) -> None:
        found.append(name)

    try:
        json.loads(body, parse_constant=constant)
    except (ValueError, RecursionError):
        return None
    if found:
        return (f"Parse error: {found[0]} is not a JSON number (JSON has no NaN or Infinity); "
                "send a finite number, or null")
    return ""


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and not math.isfinite(item):
            return True
    return False
