"""Opaque page cursors: the last document's order values, so a page never skips or repeats."""

from __future__ import annotations

import base64
import json
from typing import Any

from cachebash.domain.errors import InvalidInput
from cachebash.ports.store import Doc, Query


def encode(doc: Doc, query: Query) -> str:
    raw = json.dumps(list(doc.cursor(query)), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, query: Query) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(query.order_by) + 1:
        raise InvalidInput("cursor: not a cursor this tool returned; pass nextCursor unchanged", field="cursor")
    return tuple(values)
