"""How cloud-local wires the deploy plan, checked without starting it (no emulators needed):
the push subscriptions and the scheduler job come from `cachebash.deploy`, functions-framework
accepts a raw Pub/Sub push body, and the relay's Firestore events are what Eventarc sends."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cloudevents.http import from_http
from google.events.cloud.firestore_v1 import DocumentEventData

from cachebash import deploy
from cachebash.adapters.pubsub_bus import topic_id
from cachebash.cloud_local.firestore_relay import Trigger, event_document, written_event
from cachebash.cloud_local.pubsub_push import scheduler_job, subscriptions
from cachebash.cloud_local.topology import function_names

pytestmark = pytest.mark.cloud_local


def test_every_consumed_topic_has_a_push_subscription_to_its_function() -> None:
    wanted = {(name, topic_id(t)) for name, consumed in deploy.PUBSUB_FUNCTIONS.items() for t in consumed}
    made = subscriptions()
    assert {(s.function, s.topic) for s in made} == wanted
    assert len({s.name for s in made}) == len(made)
    assert set(function_names()) == {*deploy.HTTP_FUNCTIONS, *deploy.PUBSUB_FUNCTIONS, *deploy.FIRESTORE_FUNCTIONS}


def test_the_scheduler_publishes_the_deployed_jobs_message() -> None:
    topic, body = scheduler_job("demo-x")
    assert topic == topic_id(deploy.SWEEP_TOPIC)
    assert json.loads(body)["topic"] == deploy.SWEEP_TOPIC
    assert json.loads(body)["tenantId"] == "-", "the sweeper sweeps every tenant"


def test_functions_framework_turns_a_raw_push_body_into_the_pubsub_cloud_event(tmp_path: Path) -> None:
    """So the push subscriptions point straight at the functions, with no converter between."""
    import functions_framework

    data = base64.b64encode(b'{"topic":"sweeper.tick","tenantId":"-"}').decode()
    source = tmp_path / "main.py"
    source.write_text(f'''
import functions_framework

@functions_framework.cloud_event
def target(event):
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished", event["type"]
    assert event["source"] == "//pubsub.googleapis.com/projects/demo-x/topics/t1", event["source"]
    assert event["time"] == "2026-12-01T10:00:00Z", event["time"]
    assert event.data["message"]["data"] == "{data}"
    assert event.data["message"]["attributes"] == {{"event": "sweeper.tick"}}
''')
    client = functions_framework.create_app("target", str(source)).test_client()
    push = {"message": {"data": data, "attributes": {"event": "sweeper.tick"}, "messageId": "1",
                        "publishTime": "2026-12-01T10:00:00Z"}, "subscription": "projects/demo-x/subscriptions/s"}
    answer = client.post("/projects/demo-x/topics/t1", json=push)
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("tenants/{tenant}/tasks/{task}", "tenants/t1/tasks/abc", True),
    ("tenants/{tenant}/tasks/{task}", "tenants/t1/sprints/s/tasks/abc", False),
    ("tenants/{tenant}/tasks/{task}", "keys/tasks", False),
    ("tenants/{tenant}/sprints/{sprint}/stories/{story}", "tenants/t1/sprints/s1/stories/story-1", True),
    ("tenants/{tenant}/sprints/{sprint}/stories/{story}", "tenants/t1/sprints/s1", False),
])
def test_trigger_patterns_match_as_eventarc_path_patterns_do(pattern: str, path: str, matches: bool) -> None:
    assert Trigger("f", pattern, "http://x").matches(path) is matches
    assert Trigger("f", pattern, "http://x").collection_id == pattern.split("/")[-2]


def test_every_deployed_firestore_pattern_names_its_collection() -> None:
    for name, trigger in deploy.FIRESTORE_FUNCTIONS.items():
        example = "/".join("x" if part.startswith("{") else part for part in trigger.pattern.split("/"))
        relayed = Trigger(name, trigger.pattern, "http://x", trigger.event)
        assert relayed.matches(example, created=True) and relayed.event_type == trigger.event_type


def test_a_trigger_on_creation_is_not_fired_by_changes_or_deletes() -> None:
    on_create = Trigger("f", "tenants/{tenant}/answers/{question}", "http://x", "created")
    assert on_create.matches("tenants/t1/answers/q1", created=True)
    assert not on_create.matches("tenants/t1/answers/q1", created=False)
    assert Trigger("f", "tenants/{tenant}/answers/{question}", "http://x").matches("tenants/t1/answers/q1",
                                                                                  created=False)


def snapshot(path: str, data: dict[str, object]) -> SimpleNamespace:
    from datetime import UTC, datetime

    stamp = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    return SimpleNamespace(reference=SimpleNamespace(path=path), to_dict=lambda: data, create_time=stamp,
                           update_time=stamp)


def test_a_relayed_change_is_the_binary_mode_protobuf_event_eventarc_sends() -> None:
    path = "tenants/t1/messages/m1"
    old = event_document(snapshot(path, {"message": "Merge?", "answer": None, "tags": ["a"], "n": 1}), "demo-x")
    new = event_document(snapshot(path, {"message": "Merge?", "answer": "Yes", "tags": ["a"], "n": 1}), "demo-x")
    headers, body = written_event("demo-x", path, new, old)
    event = from_http(headers, body)  # what functions-framework does with the request
    assert event["type"] == "google.cloud.firestore.document.v1.written"
    assert event["subject"] == f"documents/{path}"
    data = DocumentEventData.deserialize(event.data)
    assert data.value.name == data.old_value.name == f"projects/demo-x/databases/(default)/documents/{path}"
    assert data.value.fields["answer"].string_value == "Yes"
    assert list(data.update_mask.field_paths) == ["answer"]
    created_headers, created = written_event("demo-x", path, new, None, "google.cloud.firestore.document.v1.created")
    assert not DocumentEventData.deserialize(created).old_value.name
    assert from_http(created_headers, created)["type"] == "google.cloud.firestore.document.v1.created"
