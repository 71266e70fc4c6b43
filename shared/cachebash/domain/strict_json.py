"""JSON text that any JSON parser accepts (RFC 8259), for answers and for stored documents alike.

Python's `json` writes non-finite floats as `NaN` and `Infinity`, which `JSON.parse`, SQLite's
`json_extract` and most other parsers refuse: a value written that way poisoned every later
read of it. One encoder, so the wire and the store keep the same rule.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text that any JSON parser accepts; raises ValueError for NaN or Infinity
    (and for strings that cannot be encoded as UTF-8, i.e. lone surrogates), TypeError for
    values JSON has no form for.

    orjson encodes (several times faster than `json`: most of an answer's encoding cost, and a
    tenth of an embedded write's), but writes NaN and Infinity as null: so a value whose text
    has a null is searched for a non-finite number, and refused if it holds one. What orjson
    refuses (lone surrogates, integers beyond 64 bits, non-string keys, datetimes) goes to
    `json`, which encodes it as before or raises the error above."""
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _json_dumps(value)
    if b"null" in data and has_non_finite(value):
        raise ValueError("Out of range float values are not JSON compliant (NaN or Infinity)")
    return data.decode()


#: datetimes and dataclasses have no JSON form here (as with `json`): orjson hands them back.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_dumps(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text.encode()  # raises UnicodeEncodeError (a ValueError) on a lone surrogate
    return text


def has_non_finite(value: Any) -> bool:
    """Whether a decoded JSON value holds NaN or an infinity anywhere."""
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
