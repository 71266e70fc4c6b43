"""Issue #12, seed behaviour and presence, over a real store with a manual clock: actions mean
what the seeds say (interrupt first and announced, backlog last), claim_next takes any type,
an empty get_tasks says what else waits, builders take stories with update_sprint_story,
presence is throttled, fallback goes to whoever is there, list_programs shows the fleet."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import CacheBashError
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages
from cachebash.domain.programs import CreateKey, UpdateProgramState
from cachebash.domain.sprints import CreateSprint, SprintRef, UpdateSprintStory
from cachebash.domain.tasks import ClaimNext, ClaimTask, CompleteTask, CreateTask, GetTasks, TaskRef
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services import (
    claims,
    fleet,
    interrupt_marks,
    keys,
    presence,
    program_state,
    relay,
    sprints,
    sweeper,
    tasks,
)
from cachebash.services.directory import program_path
from cachebash.services.runtime import Caller, Runtime


class Team:
    """Programs with their keys, so a test can authenticate again (what every real call does)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.keys: dict[str, str] = {}

    def add(self, program: str, *groups: str) -> Caller:
        self.keys[program] = keys.issue_key(self.rt, "default", CreateKey(programId=program, groups=list(groups)),
                                            "test")["apiKey"]
        return self.call(program)

    def call(self, program: str) -> Caller:
        """The caller as a new request sees it: authenticated afresh (presence, interrupt marks)."""
        return keys.authenticate(self.rt, self.keys[program])


@pytest.fixture
def team(runtime: Runtime) -> Team:
    made = Team(runtime)
    made.add("lead")
    made.add("b1", "builders")
    made.add("b2", "builders")
    made.add("b3", "builders")
    return made


def create(rt: Runtime, who: Caller, **args: Any) -> dict[str, Any]:
    args.setdefault("title", "work")
    args.setdefault("target", "builders")
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(0.001)
    return tasks.create_task(rt, who, parse(CreateTask, args))


def queue(rt: Runtime, who: Caller, **args: Any) -> list[str]:
    return [t["title"] for t in tasks.get_tasks(rt, who, parse(GetTasks, args))["tasks"]]


def refused(call: Any) -> CacheBashError:
    with pytest.raises(CacheBashError) as info:
        call()
    return info.value


# ------------------------------------------------------------------ actions: interrupt, backlog

def test_interrupts_come_first_and_backlog_last_whatever_the_priority(runtime: Runtime, team: Team) -> None:
    lead, b1 = team.call("lead"), team.call("b1")
    create(runtime, lead, title="backlog high", action="backlog", priority="high")
    create(runtime, lead, title="queue low", priority="low")
    create(runtime, lead, title="interrupt low", action="interrupt", priority="low")
    create(runtime, lead, title="queue high", priority="high")
    create(runtime, lead, title="interrupt high", action="interrupt", priority="high")
    order = ["interrupt high", "interrupt low", "queue high", "queue low", "backlog high"]
    assert queue(runtime, b1) == order
    taken = [claims.claim_next(runtime, team.call("b1"), ClaimNext())["task"]["title"] for _ in order]
    assert taken == order


def test_a_backlog_task_waits_while_a_task_the_caller_could_take_is_queued(runtime: Runtime, team: Team) -> None:
    lead = team.call("lead")
    create(runtime, lead, title="someday", action="backlog", priority="high", target="b1")
    create(runtime, lead, title="for the group", priority="low")
    assert claims.claim_next(runtime, team.call("b1"), ClaimNext())["task"]["title"] == "for the group"
    assert claims.claim_next(runtime, team.call("b1"), ClaimNext())["task"]["title"] == "someday"


def test_an_interrupt_is_carried_by_every_result_until_claimed(runtime: Runtime, team: Team) -> None:
    lead = team.call("lead")
    before = team.call("b1")
    created = create(runtime, lead, title="stop the deploy", action="interrupt")
    assert interrupt_marks.attach(runtime, before, {"success": True}) == {"success": True}, \
        "marks are read at authentication: a call authenticated before the interrupt carries none"
    b1 = team.call("b1")
    assert b1.marks.interrupts == (created["taskId"],)
    body = interrupt_marks.attach(runtime, b1, {"success": True, "programId": "b1"})
    assert [(i["taskId"], i["title"], i["source"]) for i in body["interrupts"]] == [
        (created["taskId"], "stop the deploy", "lead")]
    inbox = relay.get_messages(runtime, team.call("b2"), GetMessages())
    assert inbox["count"] == 0 and [i["taskId"] for i in inbox["interrupts"]] == [created["taskId"]]
    assert "interrupts" not in relay.get_messages(runtime, lead, GetMessages()), "only its targets see it"

    claims.claim_task(runtime, team.call("b2"), ClaimTask(taskId=created["taskId"]))
    b1 = team.call("b1")
    assert "interrupts" not in interrupt_marks.attach(runtime, b1, {"success": True})
    assert runtime.store.get(program_path("default", "b1"))["interrupts"] == [], "the stale mark is dropped"  # type: ignore[index]
    assert team.call("b1").marks.interrupts == ()


def test_a_waiting_get_messages_reads_marks_that_arrived_after_authentication(runtime: Runtime, team: Team) -> None:
    b1 = team.call("b1")
    created = create(runtime, team.call("lead"), title="now", action="interrupt", target="b1")
    assert "interrupts" not in relay.get_messages(runtime, b1, GetMessages())
    waited = relay.get_messages(runtime, b1, parse(GetMessages, {"wait_seconds": 5}))
    assert [i["taskId"] for i in waited["interrupts"]] == [created["taskId"]]


def test_complete_task_says_task_marked_as_done_for_every_outcome(runtime: Runtime, team: Team) -> None:
    lead = team.call("lead")
    for status in ("SUCCESS", "FAILED", "SKIPPED", "CANCELLED"):
        task_id = create(runtime, lead, target="b1")["taskId"]
        if status in ("SUCCESS", "FAILED"):
            claims.claim_task(runtime, team.call("b1"), ClaimTask(taskId=task_id))
        done = claims.complete_task(runtime, team.call("b1") if status in ("SUCCESS", "FAILED") else lead,
                                    parse(CompleteTask, {"taskId": task_id, "completed_status": status}))
        assert done["message"] == "Task marked as done" and done["completedStatus"] == status


# ------------------------------------------------------------------ sprint stories in the ordinary loop

SPRINT = {"projectName": "Users", "stories": [{"id": "s1", "title": "Schema"}, {"id": "s2", "title": "API"},
                                              {"id": "s3", "title": "UI", "wave": 2}]}


def test_claim_next_takes_sprint_stories_by_default_and_get_tasks_says_they_wait(runtime: Runtime,
                                                                                  team: Team) -> None:
    sprints.create_sprint(runtime, team.call("lead"), parse(CreateSprint, SPRINT))
    listed = tasks.get_tasks(runtime, team.call("b1"), GetTasks())
    assert listed["count"] == 0
    assert listed["note"].startswith("no 'task' tasks, but 2 sprint-story task(s) wait for you or your groups; "
                                     "pass type 'sprint-story' or 'all'")
    assert "note" not in tasks.get_tasks(runtime, team.call("b1"), parse(GetTasks, {"type": "all"}))
    assert claims.claim_next(runtime, team.call("b1"), parse(ClaimNext, {"type": "task"}))["claimed"] is False
    taken = claims.claim_next(runtime, team.call("b1"), ClaimNext())
    assert taken["claimed"] and taken["task"]["type"] == "sprint-story"


# ------------------------------------------------------------------ builders take stories

def story(rt: Runtime, who: Caller, sprint_id: str, story_id: str, **args: Any) -> dict[str, Any]:
    return sprints.update_sprint_story(rt, who, parse(UpdateSprintStory, {"sprintId": sprint_id, "storyId": story_id,
                                                                          **args}))


def test_setting_a_story_active_claims_its_task_for_the_builder(runtime: Runtime, team: Team) -> None:
    sprint_id = sprints.create_sprint(runtime, team.call("lead"), parse(CreateSprint, SPRINT))["sprintId"]
    took = story(runtime, team.call("b1"), sprint_id, "s1", status="active", progress=50,
                 currentAction="Writing migration scripts")
    task_id = f"{sprint_id}:s1:1"
    assert took["status"] == "active" and took["task"]["taskId"] == task_id
    assert took["task"]["claimToken"] == 1 and took["task"]["status"] == "in_progress" and "next" in took["task"]
    task = tasks.get_task(runtime, team.call("lead"), TaskRef(taskId=task_id))["task"]
    assert (task["claimedBy"], task["progress"], task["progressNote"]) == ("b1", 50, "Writing migration scripts")

    lost = refused(lambda: story(runtime, team.call("b2"), sprint_id, "s1", status="active"))
    assert (lost.code, lost.details["claimedBy"]) == ("ALREADY_CLAIMED", "b1")
    assert refused(lambda: story(runtime, team.call("b2"), sprint_id, "s1", progress=60)).code == "FORBIDDEN"
    assert refused(lambda: claims.claim_task(runtime, team.call("b2"), ClaimTask(taskId=task_id))).code == \
        "ALREADY_CLAIMED"

    again = story(runtime, team.call("b1"), sprint_id, "s1", status="active", progress=80)
    assert again["task"]["claimToken"] == 1, "the holder setting active again reports, it does not re-claim"
    done = story(runtime, team.call("b1"), sprint_id, "s1", status="complete")
    assert done["task"] == {"taskId": task_id, "status": "completed"}
    locked = refused(lambda: story(runtime, team.call("b2"), sprint_id, "s3", status="active"))
    assert locked.code == "STORY_LOCKED", "a builder on a locked story learns what it waits for"
    story(runtime, team.call("b2"), sprint_id, "s2", status="active")
    story(runtime, team.call("b2"), sprint_id, "s2", status="complete")
    wave_two = story(runtime, team.call("b3"), sprint_id, "s3", status="active", progress=10)
    assert wave_two["task"]["taskId"] == f"{sprint_id}:s3:1"
    view = sprints.get_sprint(runtime, team.call("lead"), SprintRef(sprintId=sprint_id))
    s3 = [s for w in view["waves"] for s in w["stories"] if s["storyId"] == "s3"][0]
    assert s3["status"] == "active" and s3["progress"] == 10


@pytest.mark.real_transactions
def test_builders_racing_for_one_story_with_update_sprint_story_leave_one_winner(
        runtime: Runtime, team: Team, store_factory: Callable[[], Store], clock: ManualClock) -> None:
    """Each builder has its own store connection, so the database itself arbitrates."""
    sprint_id = sprints.create_sprint(runtime, team.call("lead"), parse(CreateSprint, SPRINT))["sprintId"]
    builders = [team.call(name) for name in ("b1", "b2", "b3")]
    barrier = threading.Barrier(len(builders))
    answers: dict[str, dict[str, Any] | CacheBashError] = {}

    def race(who: Caller) -> None:
        rt = embedded_runtime(store_factory(), clock)
        barrier.wait()
        try:
            answers[who.program_id] = story(rt, who, sprint_id, "s1", status="active", progress=50,
                                            currentAction="Writing migration scripts")
        except CacheBashError as exc:
            answers[who.program_id] = exc
        finally:
            rt.store.close()

    threads = [threading.Thread(target=race, args=(b,)) for b in builders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [who for who, a in answers.items() if isinstance(a, dict)]
    assert len(won) == 1
    lost = [a for a in answers.values() if isinstance(a, CacheBashError)]
    assert [(e.code, e.details["claimedBy"]) for e in lost] == [("ALREADY_CLAIMED", won[0])] * 2
    task = tasks.get_task(runtime, team.call("lead"), TaskRef(taskId=f"{sprint_id}:s1:1"))["task"]
    assert (task["claimedBy"], task["claimToken"]) == (won[0], 1)


def test_a_story_taken_this_way_goes_back_to_queued_when_its_lease_runs_out(runtime: Runtime, clock: ManualClock,
                                                                          team: Team) -> None:
    sprint_id = sprints.create_sprint(runtime, team.call("lead"), parse(CreateSprint, SPRINT))["sprintId"]
    story(runtime, team.call("b1"), sprint_id, "s1", status="active", progress=20)
    clock.advance(runtime.policy.lease_seconds + 60)  # b1 went silent; back-off over too
    sweeper.sweep(runtime)
    view = sprints.get_sprint(runtime, team.call("lead"), SprintRef(sprintId=sprint_id))
    assert view["waves"][0]["stories"][0]["status"] == "queued", "the story shows its task, not a stale 'active'"
    took = story(runtime, team.call("b2"), sprint_id, "s1", status="active")
    assert (took["task"]["claimToken"], took["task"]["attempt"]) == (2, 2)


def test_the_old_path_claim_task_then_complete_task_still_works(runtime: Runtime, team: Team) -> None:
    sprint_id = sprints.create_sprint(runtime, team.call("lead"), parse(CreateSprint, SPRINT))["sprintId"]
    claims.claim_task(runtime, team.call("b1"), ClaimTask(taskId=f"{sprint_id}:s1:1"))
    assert story(runtime, team.call("b1"), sprint_id, "s1", progress=40)["progress"] == 40
    claims.complete_task(runtime, team.call("b1"), CompleteTask(taskId=f"{sprint_id}:s1:1"))
    view = sprints.get_sprint(runtime, team.call("lead"), SprintRef(sprintId=sprint_id))
    assert view["waves"][0]["stories"][0]["status"] == "complete"


# ------------------------------------------------------------------ presence, fallback, list_programs

def test_a_program_is_seen_at_most_once_a_minute(runtime: Runtime, clock: ManualClock, team: Team) -> None:
    path = program_path("default", "b1")
    first = runtime.store.get(path)["lastSeenAt"]  # type: ignore[index]
    clock.advance(30)
    team.call("b1")
    assert runtime.store.get(path)["lastSeenAt"] == first  # type: ignore[index]
    clock.advance(31)
    team.call("b1")
    assert runtime.store.get(path)["lastSeenAt"] > first  # type: ignore[index]


def test_sessions_are_remembered_and_listed_while_live(runtime: Runtime, clock: ManualClock, team: Team) -> None:
    presence.note_session(runtime, team.call("b1"), "s-1")
    clock.advance(5)
    presence.note_session(runtime, team.call("b1"), "s-1")  # not due: no write
    presence.note_session(runtime, team.call("b1"), "s-2")
    row = {r["programId"]: r for r in fleet.list_programs(runtime, team.call("lead"))["programs"]}["b1"]
    assert [s["sessionId"] for s in row["liveSessions"]] == ["s-2", "s-1"] and row["available"]
    clock.advance(11 * 60)
    row = {r["programId"]: r for r in fleet.list_programs(runtime, team.call("lead"))["programs"]}["b1"]
    assert row["liveSessions"] == [] and row["available"] is False


def test_fallback_takes_the_task_of_a_target_away_longer_than_the_window(runtime: Runtime, clock: ManualClock,
                                                                         team: Team) -> None:
    team.add("reviewer")
    stays = create(runtime, team.call("lead"), target="b1", fallback="reviewer")
    assert stays["target"] == "b1" and "originalTarget" not in stays
    clock.advance(9 * 60)
    assert create(runtime, team.call("lead"), target="b1", fallback="reviewer")["target"] == "b1"
    clock.advance(2 * 60)
    team.call("reviewer")  # the fallback is here; b1 was last seen 11 minutes ago
    moved = create(runtime, team.call("lead"), target="b1", fallback="reviewer")
    assert (moved["target"], moved["originalTarget"]) == ("reviewer", "b1")
    assert moved["fallbackReason"].startswith("'b1' was not seen in the last 600 s (last seen ")
    task = tasks.get_task(runtime, team.call("lead"), TaskRef(taskId=moved["taskId"]))["task"]
    assert task["target"] == "reviewer" and task["originalTarget"] == "b1" and "last seen" in task["fallbackReason"]
    group = create(runtime, team.call("lead"), target="builders", fallback="reviewer")
    assert group["target"] == "reviewer" and "no member of 'builders'" in group["fallbackReason"]
    team.call("b2")  # one member back: the group is available again
    assert create(runtime, team.call("lead"), target="builders", fallback="reviewer")["target"] == "builders"


def test_list_programs_shows_groups_presence_holdings_and_last_task(runtime: Runtime, team: Team) -> None:
    task_id = create(runtime, team.call("lead"), title="Add /api/users", target="b1")["taskId"]
    claims.claim_task(runtime, team.call("b1"), ClaimTask(taskId=task_id))
    program_state.update_program_state(runtime, team.call("b1"), parse(UpdateProgramState, {"contextSummary": {
        "lastTask": {"taskId": "abc123", "title": "Earlier", "outcome": "completed"}}}))
    listed = fleet.list_programs(runtime, team.call("b2"))
    rows = {r["programId"]: r for r in listed["programs"]}
    assert sorted(rows) == ["b1", "b2", "b3", "lead"] and listed["count"] == 4
    b1 = rows["b1"]
    assert b1["groups"] == ["builders"] and b1["available"] and b1["lastSeenAt"]
    assert [(h["taskId"], h["title"]) for h in b1["holding"]] == [(task_id, "Add /api/users")]
    assert b1["lastTask"] == {"taskId": "abc123", "title": "Earlier", "outcome": "completed"}
    assert rows["lead"]["holding"] == [] and rows["lead"]["lastTask"] is None
    assert "keys" not in b1, "key records stay with admins (list_keys) and the console"
