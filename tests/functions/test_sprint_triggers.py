"""Sprints in the cloud: a finished story task reaches `sprint_sync` over Pub/Sub; the story's
finish it records publishes StoryChanged, which reaches `sprint_waves` over Pub/Sub and unlocks
the next wave. Both run twice without doing anything twice."""

from __future__ import annotations

from cachebash.domain.inputs import parse
from cachebash.domain.sprints import CreateSprint, SprintRef
from cachebash.domain.tasks import ClaimTask, CompleteTask
from cachebash.services import claims, sprints
from cachebash.services.events import StoryChanged, TaskFinished
from cachebash.services.runtime import Runtime
from support.callers import make_caller
from support.gcp import Outbox, app, pubsub_event, raw_pubsub


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

    changed = next(e for e in outbox.events if isinstance(e, StoryChanged))
    waves_function = app("sprint_waves", "cloudevent")
    assert waves_function.post("/", **pubsub_event(changed)).status_code == 200
    assert waves_function.post("/", **pubsub_event(changed)).status_code == 200, "redelivered: nothing twice"
    waves = sprints.get_sprint(cloud_env, lead, SprintRef(sprintId=sprint_id))["waves"]
    second = waves[1]["stories"][0]
    assert second["taskId"], "sprint_waves unlocked wave 2"
    assert [type(e) for e in outbox.events].count(StoryChanged) == 1, "releasing wave 2 announces no change"
    assert claims.claim_task(cloud_env, builder, ClaimTask(taskId=second["taskId"]))["success"]


def test_sprint_waves_refuses_other_events_and_garbage(cloud_env: Runtime) -> None:
    waves_function = app("sprint_waves", "cloudevent")
    assert waves_function.post("/", **pubsub_event(TaskFinished("default", task_id="t", status="completed"))
                               ).status_code == 200, "mis-routed: acknowledged, not handled"
    assert waves_function.post("/", **raw_pubsub(b"\xff\x00not json")).status_code == 200
