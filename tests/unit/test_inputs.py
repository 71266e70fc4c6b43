"""Input validation: every rejection names the field and the rule."""

from __future__ import annotations

from typing import Any

import pytest

from cachebash.domain.errors import InvalidInput
from cachebash.domain.inputs import MAX_TEXT, parse
from cachebash.domain.messages import SendMessage
from cachebash.domain.tasks import CreateTask, GetTasks, Priority


@pytest.mark.parametrize(("arguments", "field", "rule"), [
    ({"target": "builder"}, "title", "is required"),
    ({"title": "x", "target": "builder", "priority": "urgent"}, "priority", "'high', 'normal' or 'low'"),
    ({"title": 42, "target": "builder"}, "title", "valid text"),
    ({"title": "x", "target": "builder", "ttl": "soon"}, "ttl", "integer"),
    ({"title": "x", "target": "builder", "ttl": 0}, "ttl", "greater than or equal to 1"),
    ({"title": "   ", "target": "builder"}, "title", "at least 1 character"),
    ({"title": "x" * 201, "target": "builder"}, "title", "at most 200"),
    ({"title": "x", "target": "builder", "instructions": "y" * (MAX_TEXT + 1)}, "instructions", "at most"),
    ({"title": "x", "target": "bad target!"}, "target", "pattern"),
    ({"title": "x", "target": "builder", "priority": "high", "ttl": "soon"}, "ttl", "integer"),
])
def test_create_task_rejections_name_field_and_rule(arguments: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(CreateTask, arguments)
    assert info.value.field == field
    assert rule in info.value.message
    assert info.value.message.startswith(field)


def test_defaults_follow_the_seeds() -> None:
    task = parse(CreateTask, {"title": "Fix", "target": "builder"})
    assert task.priority is Priority.NORMAL and task.type.value == "task" and task.action.value == "queue"
    query = parse(GetTasks, {})
    assert query.status.value == "created" and query.limit == 10 and query.type == "task"


def test_limit_bounds() -> None:
    for bad in (0, 51):
        with pytest.raises(InvalidInput, match="limit"):
            parse(GetTasks, {"limit": bad})
    assert parse(GetTasks, {"limit": 50, "type": "all"}).type == "all"


def test_message_types_are_the_eight() -> None:
    with pytest.raises(InvalidInput) as info:
        parse(SendMessage, {"target": "b", "message": "hi", "message_type": "SHOUT"})
    assert info.value.field == "message_type"
    for kind in ("PING", "PONG", "HANDSHAKE", "DIRECTIVE", "STATUS", "ACK", "QUERY", "RESULT"):
        assert parse(SendMessage, {"target": "b", "message": "hi", "message_type": kind}).message_type == kind
