"""Sprint rules over a real store: waves and dependencies are enforced, unlocking happens by
itself exactly once, failures block until retried or skipped, and bad plans are refused
with the field that is wrong."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import CacheBashError, Conflict, Forbidden, InvalidInput
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages
from cachebash.domain.sprints import (
    AddStoryToSprint,
    CompleteSprint,
    CreateSprint,
    SprintRef,
    UpdateSprintStory,
)
from cachebash.domain.tasks import ClaimTask, CompleteTask, GetTasks, ReportProgress
from cachebash.ports.bus import Bus, Event
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query, Store
from cachebash.services import claims, relay, sprint_flow, sprints, tasks
from cachebash.services.events import StoryChanged, TaskFinished, TaskQueued
from cachebash.services.handlers import HANDLERS
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import make_caller
from support.seeds import SEED_STORIES


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return {
        "orchestrator": make_caller(runtime, "orchestrator"),
        **{f"b{i}": make_caller(runtime, f"b{i}", groups=("builders",)) for i in range(1, 4)},
        "outsider": make_caller(runtime, "outsider"),
        "admin": make_caller(runtime, "admin", admin=True),
    }


def create(rt: Runtime, who: Caller, stories: list[dict[str, Any]] | None = None, **args: Any) -> str:
    args = {"projectName": "Add user management", "branch": "feature/user-management",
            "stories": SEED_STORIES if stories is None else stories, **args}
    return str(sprints.create_sprint(rt, who, parse(CreateSprint, args))["sprintId"])


def queue(rt: Runtime, who: Caller) -> dict[str, str]:
    """storyId -> taskId of the story tasks waiting in `who`'s queue."""
    found = tasks.get_tasks(rt, who, parse(GetTasks, {"type": "sprint-story", "limit": 50}))["tasks"]
    return {t["taskId"].split(":")[1]: t["taskId"] for t in found}


def view(rt: Runtime, who: Caller, sprint_id: str) -> dict[str, Any]:
    return sprints.get_sprint(rt, who, SprintRef(sprintId=sprint_id))


def stories_of(rt: Runtime, who: Caller, sprint_id: str) -> dict[str, dict[str, Any]]:
    return {s["storyId"]: s for w in view(rt, who, sprint_id)["waves"] for s in w["stories"]}


def update(rt: Runtime, who: Caller, sprint_id: str, story: str, **args: Any) -> dict[str, Any]:
    return sprints.update_sprint_story(rt, who, parse(UpdateSprintStory,
                                                      {"sprintId": sprint_id, "storyId": story, **args}))


def finish(rt: Runtime, who: Caller, task_id: str, status: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    claims.claim_task(rt, who, ClaimTask(taskId=task_id))
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(30)
    return claims.complete_task(rt, who, parse(CompleteTask, {"taskId": task_id, "completed_status": status,
                                                              **extra}))


def inbox(rt: Runtime, who: Caller) -> list[dict[str, Any]]:
    return list(relay.get_messages(rt, who, parse(GetMessages, {"limit": 50}))["messages"])


def docs(rt: Runtime, collection: str) -> list[dict[str, Any]]:
    return [d.data for d in rt.store.query(Query(collection))]


# --- the seeds' two-wave example -------------------------------------------------------------

def test_wave_two_unlocks_only_when_all_of_wave_one_is_complete(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1, b2, b3 = team["orchestrator"], team["b1"], team["b2"], team["b3"]
    sprint_id = create(runtime, orch)
    ready = queue(runtime, b1)
    assert sorted(ready) == ["story-1", "story-2", "story-3"], "only unlocked stories are tasks"
    assert [m["message_type"] for m in inbox(runtime, b1)] == ["STATUS"], "builders are told wave 1 is ready"
    for who, story, left in ((b1, "story-1", ["story-2", "story-3"]), (b2, "story-2", ["story-3"])):
        finish(runtime, who, ready[story])
        assert sorted(queue(runtime, b1)) == left, "wave 2 waits for the whole of wave 1"
        assert view(runtime, orch, sprint_id)["waves"][1]["state"] == "locked"
    finish(runtime, b3, ready["story-3"])
    assert sorted(queue(runtime, b1)) == ["story-4", "story-5", "story-6"], "wave 2 unlocked by itself"
    unlock = inbox(runtime, b2)[-1]
    assert unlock["message_type"] == "STATUS" and "wave 2" in unlock["message"] and "story-4" in unlock["message"]
    shown = view(runtime, orch, sprint_id)
    assert shown["currentWave"] == 2 and shown["progress"] == 50 and shown["waves"][0]["state"] == "done"
    assert shown["waves"][1]["state"] == "open" and shown["blocked"] == []


def test_sprint_completes_itself_with_a_summary(runtime: Runtime, team: dict[str, Caller],
                                                clock: ManualClock) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    for _ in range(2):
        for task_id in queue(runtime, b1).values():
            finish(runtime, b1, task_id)
    sprint = view(runtime, orch, sprint_id)["sprint"]
    assert sprint["status"] == "completed" and sprint["closedBy"] == "cachebash"
    summary = sprint["summary"]
    assert summary["total"] == 6 and summary["complete"] == 6 and summary["retries"] == 0
    assert summary["durationSeconds"] == 6 * 30 and summary["storyDurationSeconds"]["average"] == 30
    assert [w["wave"] for w in summary["waves"]] == [1, 2] and summary["waves"][0]["durationSeconds"] == 90
    assert any(m["message_type"] == "RESULT" and "completed" in m["message"] for m in inbox(runtime, orch))
    with pytest.raises(Conflict) as closed:
        update(runtime, orch, sprint_id, "story-1", progress=5)
    assert closed.value.code == "SPRINT_CLOSED"


# --- locks -----------------------------------------------------------------------------------

def test_locked_story_cannot_start_and_the_error_names_what_it_waits_for(runtime: Runtime,
                                                                        team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    finish(runtime, b1, queue(runtime, b1)["story-1"])
    for status in ("active", "complete", "failed"):
        with pytest.raises(Conflict) as locked:
            update(runtime, orch, sprint_id, "story-4", status=status)
        assert locked.value.code == "STORY_LOCKED" and locked.value.field == "storyId"
        assert "story-2 (dependency, queued)" in locked.value.message
        assert "story-3 (wave 1, queued)" in locked.value.message and "story-1" not in locked.value.message
    with pytest.raises(Conflict, match="locked"):
        update(runtime, orch, sprint_id, "story-5", progress=10)
    assert stories_of(runtime, orch, sprint_id)["story-4"]["locked"] is True
    assert "taskId" not in stories_of(runtime, orch, sprint_id)["story-4"], "a locked story has no task to claim"


def test_dependency_must_be_complete_not_just_skipped(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    ready = queue(runtime, b1)
    update(runtime, orch, sprint_id, "story-2", status="skipped")
    finish(runtime, b1, ready["story-1"])
    finish(runtime, b1, ready["story-3"])
    assert sorted(queue(runtime, b1)) == ["story-5", "story-6"], "story-4 depends on the skipped story-2"
    with pytest.raises(Conflict, match="skip this story too"):
        update(runtime, orch, sprint_id, "story-4", status="active")
    update(runtime, orch, sprint_id, "story-4", status="skipped")
    assert view(runtime, orch, sprint_id)["blocked"] == []


def test_dependency_inside_a_wave_orders_its_stories(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    create(runtime, orch, [{"id": "schema", "title": "Schema"},
                           {"id": "api", "title": "API", "dependencies": ["schema"]}])
    assert sorted(queue(runtime, b1)) == ["schema"]
    finish(runtime, b1, queue(runtime, b1)["schema"])
    assert sorted(queue(runtime, b1)) == ["api"]


# --- failures and retries ------------------------------------------------------------------

def test_failed_story_blocks_later_waves_until_retried(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    ready = queue(runtime, b1)
    finish(runtime, b1, ready["story-1"])
    finish(runtime, b1, ready["story-2"], "FAILED", error_code="TESTS_RED")
    finish(runtime, b1, ready["story-3"])
    assert queue(runtime, b1) == {}, "a failed story keeps wave 2 locked"
    shown = view(runtime, orch, sprint_id)
    assert "story-2 (failed)" in shown["next"] and "retry" in shown["next"]
    assert stories_of(runtime, orch, sprint_id)["story-2"]["lastError"] == "TESTS_RED"
    retried = update(runtime, orch, sprint_id, "story-2", status="queued")
    assert retried["run"] == 2
    assert queue(runtime, b1) == {"story-2": f"{sprint_id}:story-2:2"}, "a retry is a fresh task"
    finish(runtime, b1, f"{sprint_id}:story-2:2")
    assert sorted(queue(runtime, b1)) == ["story-4", "story-5", "story-6"]


def test_skipping_a_failed_story_lets_later_waves_go(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch, [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "wave": 2}])
    finish(runtime, b1, queue(runtime, b1)["a"], "FAILED")
    assert queue(runtime, b1) == {}
    update(runtime, orch, sprint_id, "a", status="skipped")
    assert sorted(queue(runtime, b1)) == ["b"]


def test_retry_policy_retries_a_bounded_number_of_times(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch, [{"id": "a", "title": "A", "maxRetries": 2},
                                       {"id": "b", "title": "B", "wave": 2}])
    for run in (1, 2, 3):
        assert queue(runtime, b1) == {"a": f"{sprint_id}:a:{run}"}
        finish(runtime, b1, f"{sprint_id}:a:{run}", "FAILED", error_code=f"E{run}")
    story = stories_of(runtime, orch, sprint_id)["a"]
    assert story["status"] == "failed" and story["run"] == 3 and story["autoRetries"] == 2
    assert queue(runtime, b1) == {}, "retries used up: the story waits for a decision"


def test_permanent_failure_is_not_retried(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch, [{"id": "a", "title": "A"}], maxRetries=3)
    finish(runtime, b1, queue(runtime, b1)["a"], "FAILED", error_class="PERMANENT")
    assert stories_of(runtime, orch, sprint_id)["a"]["status"] == "failed" and queue(runtime, b1) == {}


def test_transient_failure_retries_the_same_task_and_requeues_the_story(runtime: Runtime, team: dict[str, Caller],
                                                                        clock: ManualClock) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch, [{"id": "a", "title": "A"}])
    task_id = queue(runtime, b1)["a"]
    claims.claim_task(runtime, b1, ClaimTask(taskId=task_id))
    assert stories_of(runtime, orch, sprint_id)["a"]["status"] == "active"
    claims.complete_task(runtime, b1, parse(CompleteTask, {"taskId": task_id, "completed_status": "FAILED",
                                                           "error_class": "TRANSIENT"}))
    story = stories_of(runtime, orch, sprint_id)["a"]
    assert story["status"] == "queued" and story["run"] == 1, "dispatch retries the task itself"
    clock.advance(3600)
    assert queue(runtime, b1) == {"a": task_id}


# --- the story follows its task ------------------------------------------------------------

def test_claim_and_progress_show_on_the_story(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b2 = team["orchestrator"], team["b2"]
    sprint_id = create(runtime, orch)
    task_id = queue(runtime, b2)["story-2"]
    claimed = claims.claim_task(runtime, b2, ClaimTask(taskId=task_id))
    assert claimed["type"] == "sprint-story" and "feature/user-management" in claimed["instructions"]
    claims.report_progress(runtime, b2, ReportProgress(taskId=task_id, progress=40, note="writing handlers"))
    story = stories_of(runtime, orch, sprint_id)["story-2"]
    assert (story["status"], story["claimedBy"], story["progress"], story["currentAction"]) == \
        ("active", "b2", 40, "writing handlers")
    update(runtime, b2, sprint_id, "story-2", progress=60, currentAction="adding tests")
    shown = view(runtime, orch, sprint_id)
    assert stories_of(runtime, orch, sprint_id)["story-2"]["progress"] == 60
    assert shown["waves"][0]["progress"] == 20 and shown["counts"]["active"] == 1


def test_deciding_a_story_by_hand_closes_its_task(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    ready = queue(runtime, b1)
    done = update(runtime, orch, sprint_id, "story-1", status="complete")
    assert done["task"]["status"] == "skipped", "an unclaimed task is closed so nobody claims done work"
    claims.claim_task(runtime, b1, ClaimTask(taskId=ready["story-2"]))
    failed = update(runtime, orch, sprint_id, "story-2", status="failed", currentAction="wrong approach")
    assert failed["task"]["status"] == "failed" and failed["status"] == "failed"
    claims.claim_task(runtime, b1, ClaimTask(taskId=ready["story-3"]))
    claims.report_progress(runtime, b1, ReportProgress(taskId=ready["story-3"]))
    with pytest.raises(Conflict, match="work has started"):
        update(runtime, orch, sprint_id, "story-3", status="skipped")
    with pytest.raises(Conflict) as held:
        update(runtime, orch, sprint_id, "story-3", status="queued")
    assert held.value.code == "STORY_TASK_HELD"


def test_final_statuses_stay_final(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    finish(runtime, b1, queue(runtime, b1)["story-1"])
    with pytest.raises(Conflict) as final:
        update(runtime, orch, sprint_id, "story-1", status="queued")
    assert final.value.code == "STORY_FINISHED"


def test_who_may_change_a_sprint(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1, b2, outsider = team["orchestrator"], team["b1"], team["b2"], team["outsider"]
    sprint_id = create(runtime, orch)
    task_id = queue(runtime, b1)["story-1"]
    claims.claim_task(runtime, b1, ClaimTask(taskId=task_id))
    update(runtime, b1, sprint_id, "story-1", progress=10)
    with pytest.raises(Forbidden):
        update(runtime, b2, sprint_id, "story-1", progress=20)
    with pytest.raises(Forbidden):
        sprints.add_story_to_sprint(runtime, outsider, parse(AddStoryToSprint, {
            "sprintId": sprint_id, "story": {"id": "x", "title": "X", "wave": 2}}))
    with pytest.raises(Forbidden):
        sprints.complete_sprint(runtime, b1, CompleteSprint(sprintId=sprint_id, cancel=True))
    update(runtime, team["admin"], sprint_id, "story-2", status="skipped")
    assert view(runtime, outsider, sprint_id)["counts"]["skipped"] == 1, "anyone in the tenant may look"


# --- adding, closing ---------------------------------------------------------------------------

def test_add_story(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch)
    now = sprints.add_story_to_sprint(runtime, orch, parse(AddStoryToSprint, {
        "sprintId": sprint_id, "story": {"id": "story-7", "title": "Add logging"}}))
    assert now["taskId"] == f"{sprint_id}:story-7:1" and "story-7" in queue(runtime, b1)
    later = sprints.add_story_to_sprint(runtime, orch, parse(AddStoryToSprint, {
        "sprintId": sprint_id, "story": {"id": "story-8", "title": "Polish", "wave": 3, "dependencies": ["story-4"]}}))
    assert later["taskId"] is None
    for task_id in queue(runtime, b1).values():
        finish(runtime, b1, task_id)
    with pytest.raises(InvalidInput) as early:
        sprints.add_story_to_sprint(runtime, orch, parse(AddStoryToSprint, {
            "sprintId": sprint_id, "story": {"id": "story-9", "title": "Late", "wave": 1}}))
    assert early.value.field == "story.wave" and "wave 2 has already unlocked" in early.value.message


def test_complete_sprint_needs_every_story_decided_or_cancel(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1, b2 = team["orchestrator"], team["b1"], team["b2"]
    sprint_id = create(runtime, orch)
    ready = queue(runtime, b1)
    with pytest.raises(Conflict) as still_open:
        sprints.complete_sprint(runtime, orch, CompleteSprint(sprintId=sprint_id))
    assert still_open.value.code == "SPRINT_OPEN" and "story-4 (queued)" in still_open.value.message
    claims.claim_task(runtime, b2, ClaimTask(taskId=ready["story-2"]))
    claims.report_progress(runtime, b2, ReportProgress(taskId=ready["story-2"]))
    inbox(runtime, b2)
    done = sprints.complete_sprint(runtime, orch, CompleteSprint(sprintId=sprint_id, cancel=True, reason="pivot"))
    assert done["sprint"]["status"] == "cancelled" and done["sprint"]["reason"] == "pivot"
    assert sorted(done["cancelledTasks"]) == sorted([ready["story-1"], ready["story-3"]])
    assert done["stillRunning"] == [{"taskId": ready["story-2"], "claimedBy": "b2"}]
    assert "pivot" in inbox(runtime, b2)[-1]["message"], "the builder still working is told"
    assert queue(runtime, b1) == {}


def test_complete_sprint_accepts_failed_stories(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch, [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}])
    finish(runtime, b1, queue(runtime, b1)["a"])
    finish(runtime, b1, queue(runtime, b1)["b"], "FAILED")
    assert view(runtime, orch, sprint_id)["sprint"]["status"] == "active", "a failure waits for a decision"
    closed = sprints.complete_sprint(runtime, orch, CompleteSprint(sprintId=sprint_id))
    assert closed["sprint"]["summary"]["failed"] == 1 and closed["sprint"]["status"] == "completed"


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize(("stories", "field", "rule"), [
    ([{"id": "a", "title": "A"}, {"id": "a", "title": "B"}], "stories.1.id", "must be unique"),
    ([{"id": "a", "title": "A", "dependencies": ["nope"]}], "stories.0.dependencies", "no story 'nope'"),
    ([{"id": "a", "title": "A", "dependencies": ["b"]}, {"id": "b", "title": "B", "wave": 2}],
     "stories.0.dependencies", "after this story's wave 1"),
    ([{"id": "a", "title": "A", "dependencies": ["a"]}], "stories.0.dependencies", "cannot depend on itself"),
    ([{"id": "a", "title": "A", "dependencies": ["c"]}, {"id": "b", "title": "B", "dependencies": ["a"]},
      {"id": "c", "title": "C", "dependencies": ["b"]}], "stories.0.dependencies", "cycle (a -> c -> b -> a)"),
    ([{"id": "a", "title": "A", "wave": 0}], "stories.0.wave", "greater than or equal to 1"),
    ([{"id": "a b", "title": "A"}], "stories.0.id", "pattern"),
    ([{"id": "a"}], "stories.0.title", "is required"),
    ([{"id": "a", "title": "A", "maxRetries": 9}], "stories.0.maxRetries", "less than or equal to 5"),
    ([], "stories", "at least 1"),
])
def test_bad_plans_are_refused_naming_the_field(runtime: Runtime, team: dict[str, Caller],
                                                stories: list[dict[str, Any]], field: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(runtime, team["orchestrator"], stories)
    assert refused.value.field == field and rule in refused.value.message
    assert refused.value.message.startswith(field)
    assert docs(runtime, tenant_path("default", "sprints")) == [], "nothing was written"


def test_add_story_is_validated_against_the_sprint(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch = team["orchestrator"]
    sprint_id = create(runtime, orch)
    for story, field, rule in (({"id": "story-1", "title": "Dup"}, "story.id", "unique"),
                               ({"id": "x", "title": "X", "dependencies": ["story-9"]}, "story.dependencies",
                                "no story 'story-9'"),
                               ({"id": "x", "title": "X", "dependencies": ["story-4"]}, "story.dependencies",
                                "after this story's wave 1")):
        with pytest.raises(InvalidInput) as refused:
            sprints.add_story_to_sprint(runtime, orch, parse(AddStoryToSprint, {"sprintId": sprint_id,
                                                                                "story": story}))
        assert refused.value.field == field and rule in refused.value.message
    with pytest.raises(InvalidInput) as empty:
        update(runtime, orch, sprint_id, "story-1")
    assert empty.value.field == "status"


def test_create_sprint_is_all_or_nothing(runtime: Runtime, team: dict[str, Caller],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the tasks are written (here: while writing the notice) leaves no trace."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("store went away")

    monkeypatch.setattr(sprint_flow, "notice", broken)
    with pytest.raises(RuntimeError):
        create(runtime, team["orchestrator"])
    assert docs(runtime, tenant_path("default", "sprints")) == []
    assert queue(runtime, team["b1"]) == {}
    assert docs(runtime, tenant_path("default", "multicasts")) == []


# --- at-least-once events and races -----------------------------------------------------------

def snapshot(rt: Runtime, sprint_id: str) -> tuple[Any, ...]:
    return (docs(rt, tenant_path("default", "tasks")), docs(rt, tenant_path("default", "multicasts")),
            docs(rt, tenant_path("default", "messages")), docs(rt, sprint_flow.stories_collection("default",
                                                                                                 sprint_id)),
            docs(rt, tenant_path("default", "sprints")))


def test_redelivered_events_change_nothing(runtime: Runtime, team: dict[str, Caller]) -> None:
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(runtime, orch, [{"id": "a", "title": "A", "maxRetries": 1},
                                       {"id": "b", "title": "B"}, {"id": "c", "title": "C", "wave": 2}])
    ready = queue(runtime, b1)
    finish(runtime, b1, ready["a"], "FAILED")  # retried: run 2
    finish(runtime, b1, ready["b"])
    before = snapshot(runtime, sprint_id)
    for task_id in ready.values():
        runtime.bus.publish(TaskQueued("default", task_id=task_id, target="builders"))
        for status in ("claimed", "in_progress", "completed", "failed"):
            runtime.bus.publish(TaskFinished("default", task_id=task_id, status=status))
    runtime.bus.publish(StoryChanged("default", sprint_id=sprint_id, story_id="a"))
    assert snapshot(runtime, sprint_id) == before, "stale runs are ignored and releases are not repeated"


class _Recording(Bus):
    """A bus that only records, so a test decides when (and how often) handlers run."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


def _threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


WIDE = [{"id": f"w1-{i}", "title": f"Wave one #{i}"} for i in range(8)] + \
       [{"id": f"w2-{i}", "title": f"Wave two #{i}", "wave": 2} for i in range(3)]


@pytest.mark.real_transactions
@pytest.mark.parametrize("round_", range(3))
def test_racing_completions_unlock_the_next_wave_exactly_once(
        runtime: Runtime, team: dict[str, Caller], store_factory: Callable[[], Store], clock: ManualClock,
        round_: int) -> None:
    """Eight builders, each on its own store connection, finish the eight stories of wave 1 at once."""
    orch = team["orchestrator"]
    builders = [make_caller(runtime, f"racer{i}", groups=("builders",)) for i in range(8)]
    sprint_id = create(runtime, orch, WIDE)
    ready = sorted(queue(runtime, builders[0]).values())
    for who, task_id in zip(builders, ready, strict=True):
        claims.claim_task(runtime, who, ClaimTask(taskId=task_id))
    for who in builders:
        inbox(runtime, who)

    def complete(i: int) -> None:
        rt = embedded_runtime(store_factory(), clock, strict=True)
        try:
            claims.complete_task(rt, builders[i], parse(CompleteTask, {"taskId": ready[i]}))
        finally:
            rt.store.close()

    assert _threads(8, complete) == []
    assert sorted(queue(runtime, builders[0])) == ["w2-0", "w2-1", "w2-2"]
    wave_two = [t for t in docs(runtime, tenant_path("default", "tasks")) if t["taskId"].split(":")[1][:2] == "w2"]
    assert len(wave_two) == 3, "no story was handed out twice"
    for who in builders:
        notes = inbox(runtime, who)
        assert len(notes) == 1 and "wave 2" in notes[0]["message"], "one unlock, announced once"
    assert view(runtime, orch, sprint_id)["currentWave"] == 2


@pytest.mark.real_transactions
def test_concurrent_releases_after_the_same_finish_hand_out_each_story_once(
        store: Store, team: dict[str, Caller], store_factory: Callable[[], Store], clock: ManualClock) -> None:
    """The worst interleaving: every finish has committed before any release runs, so every
    release sees wave 2 due at the same moment; and each event is delivered twice."""
    recorder = _Recording()
    quiet = Runtime(store=store, bus=recorder, clock=clock)
    full = embedded_runtime(store, clock, strict=True)
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(full, orch, WIDE)
    for task_id in sorted(queue(full, b1).values()):
        claims.claim_task(quiet, b1, ClaimTask(taskId=task_id))
        claims.complete_task(quiet, b1, parse(CompleteTask, {"taskId": task_id}))
    for event in [e for e in recorder.events if isinstance(e, TaskFinished)]:
        sprint_flow.sync_story(quiet, event)
    changed = [e for e in recorder.events if isinstance(e, StoryChanged)]
    assert len(changed) == 8 and queue(full, b1) == {}

    def release(i: int) -> None:
        rt = Runtime(store=store_factory(), bus=_Recording(), clock=clock)
        try:
            sprint_flow.on_story_changed(rt, changed[i % len(changed)])
        finally:
            rt.store.close()

    assert _threads(16, release) == []
    assert sorted(queue(full, b1)) == ["w2-0", "w2-1", "w2-2"]
    assert len(docs(full, tenant_path("default", "multicasts"))) == 2, "wave 1 and wave 2, one notice each"
    stories = stories_of(full, orch, sprint_id)
    assert all(stories[f"w2-{i}"]["taskId"] == f"{sprint_id}:w2-{i}:1" for i in range(3))


def test_handlers_table_wires_sprints() -> None:
    assert HANDLERS[TaskFinished] == [sprint_flow.sync_story]
    others = [handlers for kind, handlers in HANDLERS.items() if kind is not TaskFinished]
    assert not any(sprint_flow.sync_story in handlers for handlers in others), \
        "claims and progress are read live, not copied"
    assert HANDLERS[StoryChanged] == [sprint_flow.on_story_changed]


def test_ordinary_task_events_cost_no_reads(runtime: Runtime, team: dict[str, Caller]) -> None:
    assert sprint_flow.sync_story(runtime, TaskFinished("default", task_id="0123abcd", status="completed")) == {}
    with pytest.raises(CacheBashError):
        sprints.get_sprint(runtime, team["b1"], SprintRef(sprintId="missing"))


def test_a_lost_release_is_repaired_by_the_sweep(store: Store, team: dict[str, Caller], clock: ManualClock) -> None:
    """The handler that should have unlocked wave 2 never ran (crash, dropped event): the
    periodic repair hands wave 2 out, once, and completes the sprint when all is done."""
    recorder = _Recording()
    deaf = Runtime(store=store, bus=recorder, clock=clock)
    full = embedded_runtime(store, clock, strict=True)
    orch, b1 = team["orchestrator"], team["b1"]
    sprint_id = create(full, orch, [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "wave": 2}])
    for story in ("a", "b"):
        task_id = queue(full, b1)[story]
        claims.claim_task(deaf, b1, ClaimTask(taskId=task_id))
        claims.complete_task(deaf, b1, parse(CompleteTask, {"taskId": task_id}))
        sprint_flow.sync_story(deaf, TaskFinished("default", task_id=task_id, status="completed"))
        assert queue(full, b1) == {}, "the release event was lost"
        assert sprint_flow.repair(full, "default") == 1
        assert sprint_flow.repair(full, "default") == 0, "repair is idempotent"
    assert view(full, orch, sprint_id)["sprint"]["status"] == "completed"
