"""Sprints: the orchestrator's tools. Stories in waves with dependencies, enforced.

Data: `tenants/{t}/sprints/{sprintId}` holds what the sprint is and, once it ends, its
summary; each story is its own document in the sprint's `stories` subcollection. Story
updates (claims, progress, completions from many builders) therefore write different
documents, and the sprint document is written only when the sprint is created and closed,
far below Firestore's ~1 write/s per document. Reading a whole sprint is one query on the
subcollection, which needs no composite index.

Each mutation here is one transaction; what unlocks afterwards is `sprint_flow.release`,
run by the `sprint.story_changed` handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cachebash.domain.errors import Code, Conflict, Forbidden, InvalidInput, NotFound
from cachebash.domain.messages import MessageType
from cachebash.domain.sprint_report import public_sprint, sprint_view
from cachebash.domain.sprint_tasks import ACTIVE_TASK, OPEN_TASK, released, story_task_id, with_story_history
from cachebash.domain.sprints import (
    FINISHED,
    OPEN,
    AddStoryToSprint,
    CompleteSprint,
    CreateSprint,
    SprintRef,
    SprintStatus,
    StoryInput,
    StoryState,
    StoryStatus,
    UpdateSprintStory,
    check_new_stories,
    check_story_move,
    check_wave_still_open,
    waiting_for,
)
from cachebash.domain.task_states import PHASES, HistoryEntry, TaskEvent, TaskStatus, transition, with_history
from cachebash.ports.store import Transaction
from cachebash.services import claims, directory, quota, story_claims, usage
from cachebash.services.events import StoryChanged
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Caller, Runtime, new_id
from cachebash.services.sprint_flow import (
    Released,
    announce,
    close_sprint,
    due_for_release,
    load_programs,
    load_stories,
    members_of,
    notice,
    read_tasks,
    sprint_path,
    story_path,
    task_path,
    unlock_may_follow,
    write_release,
)

S = StoryStatus


def create_sprint(rt: Runtime, caller: Caller, cmd: CreateSprint) -> dict[str, Any]:
    """Sprint, stories, and the tasks of the stories unlocked from the start: all in one transaction."""
    check_new_stories([(f"stories.{i}", story) for i, story in enumerate(cmd.stories)])
    now, sprint_id = rt.clock.iso(), new_id()
    sprint = {
        "sprintId": sprint_id, "projectName": cmd.projectName, "branch": cmd.branch, "target": cmd.target,
        "instructions": cmd.instructions, "priority": cmd.priority.value, "maxRetries": cmd.maxRetries,
        "status": SprintStatus.ACTIVE.value, "createdBy": caller.program_id, "createdAt": now,
        "completedAt": None, "closedBy": None, "reason": None, "summary": None,
    }
    stories = {s.id: new_story(sprint, s, i, caller.program_id, now) for i, s in enumerate(cmd.stories)}
    warnings = _target_warnings(rt, caller, {s["target"] for s in stories.values()})

    def write(tx: Changes) -> Released:
        due = due_for_release(sprint, stories)
        programs = load_programs(tx, caller.tenant_id)
        changes, out = write_release(tx, rt, caller.tenant_id, sprint, stories, due, set(), programs, now,
                                     hold=False)
        tx.create(sprint_path(caller.tenant_id, sprint_id), sprint)
        for story_id, story in stories.items():
            tx.create(story_path(caller.tenant_id, sprint_id, story_id), {**story, **changes.get(story_id, {})})
        announce(tx, caller.tenant_id, out)
        return out

    out = transact(rt, write)
    result: dict[str, Any] = {
        "success": True, "sprintId": sprint_id, "projectName": cmd.projectName, "stories": len(stories),
        "waves": sorted({s.wave for s in cmd.stories}),
        "claimable": [{"storyId": task_id.split(":")[1], "taskId": task_id, "target": target}
                      for task_id, target in out.tasks],
    }
    if warnings:
        result["warning"] = "; ".join(warnings)
    return result


def new_story(sprint: Mapping[str, Any], story: StoryInput, position: int, by: str, now: str) -> dict[str, Any]:
    doc = {
        "sprintId": sprint["sprintId"], "storyId": story.id, "title": story.title, "wave": story.wave,
        "dependencies": list(dict.fromkeys(story.dependencies)), "target": story.target or sprint["target"],
        "instructions": story.instructions,
        "priority": story.priority.value if story.priority else sprint["priority"],
        "maxRetries": story.maxRetries if story.maxRetries is not None else sprint["maxRetries"],
        "position": position, "status": S.QUEUED.value, "run": 1, "autoRetries": 0, "taskId": None,
        "claimedBy": None, "progress": None, "currentAction": None, "unlockedAt": None, "startedAt": None,
        "completedAt": None, "lastError": None, "createdAt": now, "updatedAt": now,
    }
    doc["history"] = with_history([], HistoryEntry(now, "create", by, None, S.QUEUED.value))
    return doc


def _target_warnings(rt: Runtime, caller: Caller, targets: set[str]) -> list[str]:
    warnings = []
    for target in sorted(targets):
        if not directory.resolve_target(rt, caller, target)[2]:
            warnings.append(f"no program or group member named '{target}' exists yet; its stories wait for one")
    return warnings


def get_sprint(rt: Runtime, caller: Caller, cmd: SprintRef) -> dict[str, Any]:
    def read(tx: Transaction) -> dict[str, Any]:
        sprint = _load_sprint(tx, caller, cmd.sprintId)
        stories = load_stories(tx, caller.tenant_id, cmd.sprintId)
        ids = [s["taskId"] for s in stories.values() if s.get("taskId")]
        return sprint_view(sprint, list(stories.values()), read_tasks(tx, caller.tenant_id, ids))

    return rt.store.run_transaction(read)


def update_sprint_story(rt: Runtime, caller: Caller, cmd: UpdateSprintStory) -> dict[str, Any]:
    if cmd.status is None and cmd.progress is None and cmd.currentAction is None:
        raise InvalidInput("status: give at least one of status, progress or currentAction", field="status")
    now = rt.clock.iso()

    def write(tx: Changes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, bool]:
        sprint = _open_sprint(tx, caller, cmd.sprintId)
        stories = load_stories(tx, caller.tenant_id, cmd.sprintId)
        story = stories.get(cmd.storyId)
        if story is None:
            raise NotFound(f"no story '{cmd.storyId}' in sprint {cmd.sprintId}", field="storyId")
        task, lapse = _story_task(rt, tx, caller, story, now)
        taking = story_claims.takes(caller, sprint, story, task, cmd.status)
        if not taking:
            _check_reporter(caller, sprint, story, task)
        current = S(story["status"])
        states = {sid: StoryState.of(doc) for sid, doc in stories.items()}
        waits = [] if released(story) else waiting_for(states[cmd.storyId], states)
        if cmd.status is None and current not in OPEN:
            raise Conflict(f"story '{cmd.storyId}' is {current.value}; progress is reported on queued or active "
                           "stories", code=Code.INVALID_TRANSITION, status=current.value)
        check_story_move(cmd.storyId, current, cmd.status or current, waits, reports_work=cmd.status is None)
        if taking or story_claims.holds(task, caller):
            # The task carries a claim and its progress; the story document is left alone (get_sprint
            # reads who works on it and how far from the task), so a lost lease leaves no stale story.
            held = (story_claims.claim(rt, task, story, caller, cmd, now) if taking
                    else story_claims.heartbeat(rt, dict(task or {}), caller, cmd, now))
            if held is not None and task is not None:
                tx.update(task_path(caller.tenant_id, task["taskId"]), {**lapse, **held})
                usage.count(tx, rt, caller.tenant_id, task, {**lapse, **held})
                return story, {}, {**task, **lapse, **held}, True
        changes = _story_changes(story, current, cmd, caller, now)
        task_changes = _task_follows(task, current, cmd.status, caller, now) if task else None
        if task is not None and task_changes:
            quota.closing(tx, caller.tenant_id, [(task, {**task, **lapse, **task_changes})])
        tx.update(story_path(caller.tenant_id, cmd.sprintId, cmd.storyId), changes)
        closed = None
        if task is not None and task_changes:
            closed = {**task, **lapse, **task_changes}
            # No TaskFinished: the story it would sync is written right here (sprint_sync would find nothing).
            tx.update(task_path(caller.tenant_id, closed["taskId"]), {**lapse, **task_changes})
            usage.count(tx, rt, caller.tenant_id, task, {**lapse, **task_changes})
        if unlock_may_follow(changes):
            tx.emit(StoryChanged(caller.tenant_id, sprint_id=cmd.sprintId, story_id=cmd.storyId))
        return story, changes, closed, False

    story, changes, task, held = transact(rt, write)
    if held and task is not None:
        return story_claims.result(cmd, story, task)
    after = {**story, **changes}
    result = {"success": True, "sprintId": cmd.sprintId, "storyId": cmd.storyId, "status": after["status"],
              "run": after["run"], "progress": after.get("progress"), "currentAction": after.get("currentAction")}
    if task is not None:
        result["task"] = {"taskId": task["taskId"], "status": task["status"]}
    return result


def _story_task(rt: Runtime, tx: Transaction, caller: Caller, story: Mapping[str, Any],
                now: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The task of the story's current run as it stands now (a lapsed lease has ended), and the
    changes that record the lapse, to be written with any change to the task."""
    if not released(story) or (stored := tx.get(task_path(caller.tenant_id, story["taskId"]))) is None:
        return None, {}
    task, lapse, _ = claims.settle(rt, caller.tenant_id, stored, now)
    return task, lapse


def _check_reporter(caller: Caller, sprint: Mapping[str, Any], story: Mapping[str, Any],
                    task: Mapping[str, Any] | None) -> None:
    """The sprint's creator, an admin, or whoever holds the story's task may report on it."""
    if caller.admin or caller.program_id == sprint["createdBy"]:
        return
    if task is not None and task.get("status") in ACTIVE_TASK and task.get("claimedBy") == caller.program_id:
        return
    raise Forbidden(f"only the sprint's creator ('{sprint['createdBy']}'), an admin key, or the holder of story "
                    f"'{story['storyId']}''s task may update it", field="storyId")


def _story_changes(story: Mapping[str, Any], current: StoryStatus, cmd: UpdateSprintStory, caller: Caller,
                   now: str) -> dict[str, Any]:
    new = cmd.status or current
    changes: dict[str, Any] = {"status": new.value}
    if new is S.ACTIVE:
        changes["startedAt"] = story.get("startedAt") or now
    elif new in FINISHED:
        changes["completedAt"] = now
        if new is S.COMPLETE:
            changes["progress"] = 100
    elif new is S.FAILED:
        changes["lastError"] = cmd.currentAction or f"marked failed by '{caller.program_id}'"
    elif new is S.QUEUED and current is S.FAILED:
        # A retry: a new run, whose task the release handler creates.
        changes.update(run=int(story["run"]) + 1, claimedBy=None, progress=None, currentAction=None)
    if cmd.progress is not None:
        changes["progress"] = cmd.progress
    if cmd.currentAction is not None:
        changes["currentAction"] = cmd.currentAction
    return with_story_history(story, changes, now, "update_sprint_story", by=caller.program_id,
                              note=cmd.currentAction)


# Finishing a story by hand closes its open task the way the state table allows, so no
# builder keeps working on (or can still claim) a story that was decided without them.
_FOLLOW_WHEN_CLAIMED = {S.COMPLETE: TaskEvent.SUCCESS, S.FAILED: TaskEvent.FAILED, S.SKIPPED: TaskEvent.SKIPPED}
_FOLLOW_WHEN_QUEUED = {S.COMPLETE: TaskEvent.SKIPPED, S.FAILED: TaskEvent.CANCELLED, S.SKIPPED: TaskEvent.SKIPPED}


def _task_follows(task: Mapping[str, Any], current: StoryStatus, new: StoryStatus | None, caller: Caller,
                  now: str) -> dict[str, Any] | None:
    status = str(task.get("status"))
    if new is None or status not in OPEN_TASK:
        return None
    if new is S.QUEUED and status in ACTIVE_TASK:
        raise Conflict(f"story's task {task['taskId']} is held by '{task.get('claimedBy')}'; they hand it back with "
                       "release_task, or finish it with complete_task", code=Code.STORY_TASK_HELD,
                       claimedBy=task.get("claimedBy"))
    events = _FOLLOW_WHEN_CLAIMED if status in ACTIVE_TASK else _FOLLOW_WHEN_QUEUED
    event = events.get(new)
    if event is None:
        return None
    return close_task_changes(task, event, caller.program_id, now, f"story set {new.value} with update_sprint_story")


def close_task_changes(task: Mapping[str, Any], event: TaskEvent, by: str, now: str, note: str) -> dict[str, Any]:
    current = TaskStatus(task["status"])
    target = transition(task["taskId"], current, event)
    entry = HistoryEntry(now, event.value, by, current.value, target.value, note)
    return {"status": target.value, "phase": PHASES[target].value, "updatedAt": now,
            "history": with_history(list(task.get("history", [])), entry), "completedStatus": event.value,
            "completedAt": now, "completedBy": by, "leaseExpiresAt": None, "result": note}


def add_story_to_sprint(rt: Runtime, caller: Caller, cmd: AddStoryToSprint) -> dict[str, Any]:
    now = rt.clock.iso()
    warnings = _target_warnings(rt, caller, {cmd.story.target} if cmd.story.target else set())

    def write(tx: Changes) -> tuple[Released, dict[str, Any]]:
        sprint = _open_sprint(tx, caller, cmd.sprintId)
        _check_owner(caller, sprint, "add stories to")
        stories = load_stories(tx, caller.tenant_id, cmd.sprintId)
        check_new_stories([("story", cmd.story)], {sid: StoryState.of(doc) for sid, doc in stories.items()})
        check_wave_still_open("story", cmd.story.wave, stories.values())
        story = new_story(sprint, cmd.story, len(stories), caller.program_id, now)
        everything = {**stories, cmd.story.id: story}
        due = due_for_release(sprint, everything)
        programs = load_programs(tx, caller.tenant_id)
        ids = [story_task_id(cmd.sprintId, sid, int(everything[sid]["run"])) for sid in due if sid != cmd.story.id]
        existing = set(read_tasks(tx, caller.tenant_id, ids))
        changes, out = write_release(tx, rt, caller.tenant_id, sprint, everything, due, existing, programs, now,
                                     hold=False)
        story.update(changes.pop(cmd.story.id, {}))
        tx.create(story_path(caller.tenant_id, cmd.sprintId, cmd.story.id), story)
        for sid, change in changes.items():
            tx.update(story_path(caller.tenant_id, cmd.sprintId, sid), change)
        announce(tx, caller.tenant_id, out)
        return out, story

    out, story = transact(rt, write)
    states_note = "claimable now" if story["taskId"] else "locked until its wave and dependencies allow"
    result: dict[str, Any] = {"success": True, "sprintId": cmd.sprintId, "storyId": cmd.story.id,
                              "wave": cmd.story.wave, "taskId": story["taskId"],
                              "message": f"Story added; {states_note}."}
    if warnings:
        result["warning"] = "; ".join(warnings)
    return result


def complete_sprint(rt: Runtime, caller: Caller, cmd: CompleteSprint) -> dict[str, Any]:
    now = rt.clock.iso()

    def write(tx: Changes) -> tuple[dict[str, Any], Released, list[dict[str, Any]], list[dict[str, Any]]]:
        sprint = _open_sprint(tx, caller, cmd.sprintId)
        _check_owner(caller, sprint, "complete or cancel")
        stories = list(load_stories(tx, caller.tenant_id, cmd.sprintId).values())
        still_open = sorted((s for s in stories if s["status"] in OPEN), key=lambda s: (s["wave"], s["storyId"]))
        if still_open and not cmd.cancel:
            listed = ", ".join(f"{s['storyId']} ({s['status']})" for s in still_open)
            raise Conflict(f"{len(still_open)} stories are not finished: {listed}; finish or skip them, or pass "
                           "cancel=true", code=Code.SPRINT_OPEN, field="cancel")
        ids = [s["taskId"] for s in still_open if released(s)]
        tasks = list(read_tasks(tx, caller.tenant_id, ids).values())
        programs = load_programs(tx, caller.tenant_id)
        closing = [(task, close_task_changes(task, TaskEvent.CANCELLED, caller.program_id, now, "sprint cancelled"))
                   for task in tasks if task["status"] in ("created", "claimed")]
        running = [task for task in tasks if task["status"] in ACTIVE_TASK and task["status"] != "claimed"]
        quota.closing(tx, caller.tenant_id, [(task, {**task, **changes}) for task, changes in closing])
        cancelled = []
        for task, changes in closing:
            tx.update(task_path(caller.tenant_id, task["taskId"]), changes)
            usage.count(tx, rt, caller.tenant_id, task, changes)
            cancelled.append({**task, **changes})
        status = SprintStatus.CANCELLED if cmd.cancel else SprintStatus.COMPLETED
        changes, out = close_sprint(tx, rt, caller.tenant_id, sprint, stories, programs, now, status,
                                    caller.program_id, cmd.reason)
        out = out.merge(_tell_running(tx, rt, caller, sprint, cmd.reason, running, programs, now))
        # No TaskFinished for the cancelled tasks: their sprint is closed here, so sprint_sync would find nothing.
        announce(tx, caller.tenant_id, out)
        return {**sprint, **changes}, out, cancelled, running

    sprint, out, cancelled, running = transact(rt, write)
    result = {"success": True, "sprint": public_sprint(sprint), "cancelledTasks": [t["taskId"] for t in cancelled]}
    if running:
        result["stillRunning"] = [{"taskId": t["taskId"], "claimedBy": t.get("claimedBy")} for t in running]
    return result


def _tell_running(tx: Transaction, rt: Runtime, caller: Caller, sprint: Mapping[str, Any], reason: str | None,
                  running: list[dict[str, Any]], programs: list[dict[str, Any]], now: str) -> Released:
    """Builders still working on a story of a closed sprint hear it from CacheBash, not by surprise."""
    holders = sorted({t["claimedBy"] for t in running if t.get("claimedBy")})
    recipients = [h for h in holders if members_of(programs, h)]
    if not recipients:
        return Released()
    text = (f"Sprint '{sprint['projectName']}' ({sprint['sprintId']}) was closed by '{caller.program_id}'"
            f"{': ' + reason if reason else ''}. Stop work on its stories and "
            "finish your task with complete_task (FAILED if unfinished).")
    path, doc = notice(rt, caller.tenant_id, None, recipients, text, MessageType.STATUS,
                       sprint["sprintId"], now)
    tx.create(path, doc)
    return Released(multicasts=[doc["multicastId"]])


def _load_sprint(tx: Transaction, caller: Caller, sprint_id: str) -> dict[str, Any]:
    sprint = tx.get(sprint_path(caller.tenant_id, sprint_id))
    if sprint is None:
        raise NotFound(f"no sprint {sprint_id}", field="sprintId")
    return sprint


def _open_sprint(tx: Transaction, caller: Caller, sprint_id: str) -> dict[str, Any]:
    sprint = _load_sprint(tx, caller, sprint_id)
    if sprint["status"] != SprintStatus.ACTIVE.value:
        raise Conflict(f"sprint {sprint_id} is {sprint['status']} (since {sprint.get('completedAt')}); a closed "
                       "sprint cannot change", code=Code.SPRINT_CLOSED, status=sprint["status"])
    return sprint


def _check_owner(caller: Caller, sprint: Mapping[str, Any], what: str) -> None:
    if not (caller.admin or caller.program_id == sprint["createdBy"]):
        raise Forbidden(f"only the sprint's creator ('{sprint['createdBy']}') or an admin key may {what} the sprint",
                        field="sprintId")
