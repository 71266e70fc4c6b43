"""Opaque page cursors: the last document's order values, so a page never skips or repeats.

A cursor comes back from the agent, so `decode` trusts nothing in it: it must be the shape
`encode` makes (one JSON scalar per order-by field, then a document id), with integers and
text inside what every store can take, or the call is refused naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from cachebash.domain.errors import InvalidInput
from cachebash.domain.inputs import ID_PATTERN, MAX_INT
from cachebash.ports.store import Doc, Query

MAX_TEXT_VALUE = 1500  # Firestore indexes at most 1500 bytes of a string; no order value we write is longer
_ID = re.compile(ID_PATTERN)


def encode(doc: Doc, query: Query) -> str:
    raw = json.dumps(list(doc.cursor(query)), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, query: Query) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        values = None
    if not (isinstance(values, list) and len(values) == len(query.order_by) + 1
            and all(_order_value(v) for v in values[:-1]) and _document_id(values[-1])):
        raise InvalidInput("cursor: not a cursor this tool returned; pass nextCursor unchanged", field="cursor")
    return tuple(values)


def _order_value(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -MAX_INT <= value <= MAX_INT
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_TEXT_VALUE and _unicode(value)


def _unicode(text: str) -> bool:
    """Whether `text` is valid Unicode (JSON lets a lone surrogate through; stores refuse it)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _document_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None
