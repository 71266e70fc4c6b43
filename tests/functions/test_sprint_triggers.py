"""Sprints in the cloud: a finished story task reaches `sprint_sync` over Pub/Sub; the story
document it writes fires `sprint_waves` (a Firestore CloudEvent with a protobuf body), which
unlocks the next wave. Both run twice without doing anything twice."""

from __future__ import annotations

import uuid
from typing import Any

from google.events.cloud.firestore_v1 import Document, DocumentEventData

from cachebash.domain.inputs import parse
from cachebash.domain.sprints import CreateSprint, SprintRef
from cachebash.domain.tasks import ClaimTask, CompleteTask
from cachebash.services import claims, sprints
from cachebash.services.events import StoryChanged, TaskFinished
from cachebash.services.runtime import Runtime
from support.callers import make_caller
from support.gcp import Outbox, app, pubsub_event

PROJECT = "demo-cachebash"


def story_written(tenant: str, sprint_id: str, story_id: str) -> dict[str, Any]:
    """`google.cloud.firestore.document.v1.written` as Eventarc delivers it: binary mode, protobuf."""
    name = f"projects/{PROJECT}/databases/(default)/documents/tenants/{tenant}/sprints/{sprint_id}/stories/{story_id}"
    body = DocumentEventData(value=Document(name=name), old_value=Document(name=name))
    headers = {
        "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "ce-subject": name.split("/", 5)[-1], "ce-time": "2026-11-23T12:00:00Z",
        "Content-Type": "application/protobuf",
    }
    return {"headers": headers, "data": DocumentEventData.serialize(body)}


def test_story_task_completion_then_story_trigger_unlocks_wave_two(cloud_env: Runtime) -> None:
    outbox = Outbox()
    cloud_env.bus = outbox
    lead = make_caller(cloud_env, "lead")
    builder = make_caller(cloud_env, "builder", groups=("builders",))
    created = sprints.create_sprint(cloud_env, lead, parse(CreateSprint, {
        "projectName": "Two waves", "target": "builders",
        "stories": [{"id": "s1", "title": "first", "wave": 1}, {"id": "s2", "title": "second", "wave": 2}],
    }))
    sprint_id = created["sprintId"]
    view = sprints.get_sprint(cloud_env, lead, SprintRef(sprintId=sprint_id))
    first_task = next(s["taskId"] for w in view["waves"] for s in w["stories"] if s["storyId"] == "s1")
    claims.claim_task(cloud_env, builder, ClaimTask(taskId=first_task))
    claims.complete_task(cloud_env, builder, CompleteTask(taskId=first_task))
    finished = next(e for e in outbox.events if isinstance(e, TaskFinished))

    sync = app("sprint_sync", "cloudevent")
    assert sync.post("/", **pubsub_event(finished)).status_code == 200
    assert sync.post("/", **pubsub_event(finished)).status_code == 200, "redelivered: no second change"
    assert [type(e) for e in outbox.events].count(StoryChanged) == 1
    waves = sprints.get_sprint(cloud_env, lead, SprintRef(sprintId=sprint_id))["waves"]
    assert [s["status"] for w in waves for s in w["stories"]] == ["complete", "queued"]
    assert all("taskId" not in s for s in waves[1]["stories"]), "wave 2 still locked: no task yet"

    trigger = app("sprint_waves", "cloudevent")
    assert trigger.post("/", **story_written("default", sprint_id, "s1")).status_code == 200
    assert trigger.post("/", **story_written("default", sprint_id, "s1")).status_code == 200
    waves = sprints.get_sprint(cloud_env, lead, SprintRef(sprintId=sprint_id))["waves"]
    second = waves[1]["stories"][0]
    assert second["taskId"], "the trigger unlocked wave 2"
    assert claims.claim_task(cloud_env, builder, ClaimTask(taskId=second["taskId"]))["success"]


def test_other_documents_and_garbage_are_acknowledged(cloud_env: Runtime) -> None:
    trigger = app("sprint_waves", "cloudevent")
    other = story_written("default", "sp", "x")
    other["data"] = DocumentEventData.serialize(DocumentEventData(value=Document(
        name=f"projects/{PROJECT}/databases/(default)/documents/tenants/default/tasks/abc")))
    assert trigger.post("/", **other).status_code == 200
    garbage = story_written("default", "sp", "x")
    garbage["data"] = b"\xff\x00not protobuf"
    assert trigger.post("/", **garbage).status_code == 200
