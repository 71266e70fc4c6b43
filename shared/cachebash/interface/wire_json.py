"""JSON on the wire, strictly (RFC 8259), in both directions.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity` tokens, lone UTF-16 surrogates and
deep nesting, and writes non-finite floats back out as those same tokens, which `JSON.parse`
and most other parsers refuse. A value that got in that way was stored and then poisoned
every later answer that carried it. So requests are decoded with the parser the MCP SDK uses
for handshake-era requests (pydantic-core's), with non-finite numbers refused, and answers are
encoded strictly too (`domain.strict_json`, the one encoder for answers and stored documents).

`loads` tells two kinds of bad body apart: `NotStrictJson` is a body Python's lenient parser
would have taken (so something down the line might have accepted it) and that the wire refuses
in its own words; `NotJson` is a body no JSON parser takes, which the MCP SDK refuses in its own
words at each protocol version.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pydantic_core

from cachebash.domain.strict_json import dumps, has_non_finite

__all__ = ["NotJson", "NotStrictJson", "dumps", "loads", "parse_error", "quoted"]

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
    if has_non_finite(value):
        # A literal such as 1e400 parses, as a float, to infinity.
        raise NotStrictJson("Parse error: a number is too large for a 64-bit float (it would be Infinity); "
                            "send a finite number")
    return value


def quoted(text: str) -> str:
    """`text` as a JSON string (the text content an answer carries next to its structured form)."""
    return orjson.dumps(text).decode()


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
