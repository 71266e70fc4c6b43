"""How a sprint moves by itself: stories become tasks when they unlock, and finished tasks
finish their stories.

Two handlers, both idempotent:

- `sync_story` (TaskFinished): copies the outcome of a story's current task onto the
  story (or starts the story's next run under its retry policy), in a transaction that
  writes that one story document only, so builders finishing stories of one wave never
  contend. Claims and progress are not copied: get_sprint reads them from the task, so
  they cost no extra write (and, in the cloud, no extra event).
- `on_story_changed` (StoryChanged, emitted when a story finished or was retried; in the
  cloud published to the `sprint_waves` function): `release()` reads the sprint and all its
  stories in one transaction, creates the task of every story that is unlocked but has none
  yet, marks those stories released and tells the stories' targets, or completes the sprint
  when every story is finished.

Exactly once: a story counts as released when its document holds the task id of its current
run, and the transaction that decides to release it also writes that id. Two releases racing
both read the story, so the store lets only one commit and re-runs the other, which then
finds it released. Never missed: every finish commits before its release runs, so the
release that runs after the last finish of a wave sees the whole wave finished; and should a
release fail, the event's outbox entry is delivered again by the sweeper; and `repair`, run
by the sweeper too, brings any story whose task finished in line with it (its event was lost
before events were kept in the outbox) and hands out what that unlocks. No function is
triggered by a story's write: stories are written when created, released and edited too, and
each such write would start a release that finds nothing due.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachebash.domain.messages import DEFAULT_MESSAGE_TTL, MessageType
from cachebash.domain.sprint_report import summarize
from cachebash.domain.sprint_tasks import (
    OPEN_TASK,
    SYSTEM,
    TASK_TYPE,
    parse_story_task_id,
    released,
    story_changes_for_task,
    story_task_id,
)
from cachebash.domain.sprints import FINISHED, OPEN, SprintStatus, StoryState, StoryStatus, is_locked
from cachebash.domain.task_states import PHASES, HistoryEntry, TaskStatus, with_history
from cachebash.domain.tasks import PRIORITY_RANK, Action, Priority, queue_rank
from cachebash.ports.store import Query, Transaction
from cachebash.services import activity, directory, quota, usage
from cachebash.services.events import MulticastSent, StoryChanged, TaskFinished, TaskQueued
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Runtime, new_id, tenant_path

# --- where things live -----------------------------------------------------------------------

def sprint_path(tenant_id: str, sprint_id: str) -> str:
    return tenant_path(tenant_id, "sprints", sprint_id)


def stories_collection(tenant_id: str, sprint_id: str) -> str:
    return f"{sprint_path(tenant_id, sprint_id)}/stories"


def story_path(tenant_id: str, sprint_id: str, story_id: str) -> str:
    return f"{stories_collection(tenant_id, sprint_id)}/{story_id}"


def task_path(tenant_id: str, task_id: str) -> str:
    return tenant_path(tenant_id, "tasks", task_id)


def stories_query(tenant_id: str, sprint_id: str) -> Query:
    """All stories of a sprint: its own subcollection, served by the automatic single-field
    index (the order also makes it a query, not a bare collection, for the Firestore client's
    transactions)."""
    return Query(stories_collection(tenant_id, sprint_id)).order("storyId")


def load_stories(tx: Transaction, tenant_id: str, sprint_id: str) -> dict[str, dict[str, Any]]:
    return {doc.id: doc.data for doc in tx.query(stories_query(tenant_id, sprint_id))}


def read_tasks(tx: Transaction, tenant_id: str, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The tasks that exist among `task_ids`. Asks nothing for an empty list: Firestore (its
    emulator, at least) answers an empty batch read with an error."""
    if not task_ids:
        return {}
    found = tx.get_all([task_path(tenant_id, i) for i in task_ids])
    return {i: doc for i, doc in zip(task_ids, found, strict=True) if doc is not None}


def load_programs(tx: Transaction, tenant_id: str) -> list[dict[str, Any]]:
    """Who is in which group, read inside the transaction so a notice matches the release it announces."""
    return [doc.data for doc in tx.query(directory.programs_query(tenant_id).order("programId"))]


def unlock_may_follow(changes: Mapping[str, Any]) -> bool:
    """A story finishing can unlock others; a retry needs its new task."""
    return changes.get("status") in FINISHED or "run" in changes


# --- releasing unlocked stories --------------------------------------------------------------

@dataclass
class Released:
    """What a transaction released, and so the events it emits (`announce`)."""

    tasks: list[tuple[str, str]] = field(default_factory=list)  # (taskId, target)
    multicasts: list[str] = field(default_factory=list)
    completed: bool = False

    def merge(self, other: Released) -> Released:
        return Released(self.tasks + other.tasks, self.multicasts + other.multicasts, self.completed or other.completed)


def due_for_release(sprint: Mapping[str, Any], stories: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Stories that are open and unlocked but whose current run has no task yet."""
    if sprint["status"] != SprintStatus.ACTIVE.value:
        return []
    states = {sid: StoryState.of(doc) for sid, doc in stories.items()}
    return [sid for sid, doc in sorted(stories.items(), key=lambda kv: (kv[1]["wave"], kv[1].get("position", 0)))
            if StoryStatus(doc["status"]) in OPEN and not released(doc) and not is_locked(states[sid], states)]


def write_release(tx: Transaction, rt: Runtime, tenant_id: str, sprint: Mapping[str, Any],
                  stories: Mapping[str, Mapping[str, Any]], due: Sequence[str], existing_tasks: set[str],
                  programs: list[dict[str, Any]], now: str,
                  hold: bool = True) -> tuple[dict[str, dict[str, Any]], Released]:
    """Write the tasks and notices for `due` (all reads but the quota's done); return each story's
    changes for the caller to write, since a story being created must be written once, with them.

    The plan admits the new tasks in story order (services/quota). Those over it are held: the
    story stays unlocked without a task, `heldReason` says why, and the sweeper's `repair` hands
    it out once the month turns or the plan allows more. With `hold=False` (a direct call:
    create_sprint, add_story_to_sprint) the refusal is the call's error and nothing is written."""
    changes: dict[str, dict[str, Any]] = {}
    out = Released()
    by_target: dict[str, list[tuple[Mapping[str, Any], str]]] = {}
    tasks = {sid: story_task(rt, sprint, stories[sid], now) for sid in due}
    fresh = [task for task in tasks.values() if task["taskId"] not in existing_tasks]
    admitted, refused = quota.admit_some(tx, rt, tenant_id, fresh)
    if refused is not None and not hold:
        raise refused
    held = {task["storyId"] for task in fresh[admitted:]}
    for story_id in due:
        story, task = stories[story_id], tasks[story_id]
        if story_id in held:
            if refused is not None and story.get("heldReason") != refused.message:
                changes[story_id] = {"heldReason": refused.message, "updatedAt": now}
            continue
        if task["taskId"] not in existing_tasks:
            tx.create(task_path(tenant_id, task["taskId"]), task)
            usage.count(tx, rt, tenant_id, None, task)
            out.tasks.append((task["taskId"], task["target"]))
        changes[story_id] = {"taskId": task["taskId"], "unlockedAt": story.get("unlockedAt") or now, "updatedAt": now,
                             "heldReason": None}
        by_target.setdefault(story["target"], []).append((story, task["taskId"]))
    for target, items in by_target.items():
        recipients = members_of(programs, target)
        if recipients:
            group = target if target in directory.known_groups(programs) else None
            path, doc = notice(rt, tenant_id, group, recipients, ready_text(sprint, items), MessageType.STATUS,
                               sprint["sprintId"], now)
            tx.create(path, doc)
            out.multicasts.append(doc["multicastId"])
    return changes, out


def release(rt: Runtime, tenant_id: str, sprint_id: str) -> Released:
    """Hand out every unlocked story that has no task yet; complete the sprint when all are finished."""
    if not _work_due(rt, tenant_id, sprint_id):
        return Released()
    now = rt.clock.iso()

    def run(tx: Changes) -> Released:
        sprint = tx.get(sprint_path(tenant_id, sprint_id))
        if sprint is None or sprint["status"] != SprintStatus.ACTIVE.value:
            return Released()
        stories = load_stories(tx, tenant_id, sprint_id)
        due = due_for_release(sprint, stories)
        finished = _all_finished(stories)
        if not due and not finished:
            return Released()  # a concurrent release got there first
        ids = [story_task_id(sprint_id, sid, int(stories[sid]["run"])) for sid in due]
        existing = set(read_tasks(tx, tenant_id, ids))
        programs = load_programs(tx, tenant_id)
        changes, out = write_release(tx, rt, tenant_id, sprint, stories, due, existing, programs, now)
        for sid, change in changes.items():
            tx.update(story_path(tenant_id, sprint_id, sid), change)
        if finished:
            _, closed = close_sprint(tx, rt, tenant_id, sprint, list(stories.values()), programs, now,
                                     SprintStatus.COMPLETED, SYSTEM, None)
            out = out.merge(closed)
        announce(tx, tenant_id, out)
        return out

    return activity.stories_released(tenant_id, sprint_id, transact(rt, run))


def _work_due(rt: Runtime, tenant_id: str, sprint_id: str) -> bool:
    """Look before locking: most finishes unlock nothing, and on Firestore a transaction that
    reads every story holds locks that the builders' own story updates then wait on. Reads
    are strongly consistent, so the release running after the last finish of a wave still
    sees the whole wave finished; the transaction checks again before writing."""
    sprint = rt.store.get(sprint_path(tenant_id, sprint_id))
    if sprint is None or sprint["status"] != SprintStatus.ACTIVE.value:
        return False
    stories = {doc.id: doc.data for doc in rt.store.query(stories_query(tenant_id, sprint_id))}
    return bool(due_for_release(sprint, stories)) or _all_finished(stories)


def _all_finished(stories: Mapping[str, Mapping[str, Any]]) -> bool:
    return bool(stories) and all(s["status"] in FINISHED for s in stories.values())


def close_sprint(tx: Transaction, rt: Runtime, tenant_id: str, sprint: Mapping[str, Any],
                 stories: list[dict[str, Any]], programs: list[dict[str, Any]], now: str, status: SprintStatus,
                 by: str, reason: str | None) -> tuple[dict[str, Any], Released]:
    """End the sprint with its summary, and tell its creator. Returns the sprint's changes."""
    summary = summarize(sprint, stories, now)
    changes = {"status": status.value, "completedAt": now, "closedBy": by, "reason": reason, "summary": summary}
    tx.update(sprint_path(tenant_id, sprint["sprintId"]), changes)
    creator = sprint["createdBy"]
    if not members_of(programs, creator):
        return changes, Released(completed=True)
    text = (f"Sprint '{sprint['projectName']}' ({sprint['sprintId']}) {status.value}: {summary['total']} stories, "
            f"{summary['complete']} complete, {summary['skipped']} skipped, {summary['failed']} failed, "
            f"{summary['retries']} retries, {summary['durationSeconds']:.0f} s. Details: get_sprint.")
    path, doc = notice(rt, tenant_id, None, [creator], text, MessageType.RESULT, sprint["sprintId"], now)
    tx.create(path, doc)
    return changes, Released(multicasts=[doc["multicastId"]], completed=True)


def announce(tx: Changes, tenant_id: str, out: Released) -> None:
    """With the release: wake workers for the new tasks, fan the notices out."""
    for task_id, target in out.tasks:
        tx.emit(TaskQueued(tenant_id, task_id=task_id, target=target))
    for multicast_id in out.multicasts:
        tx.emit(MulticastSent(tenant_id, multicast_id=multicast_id))


# --- the story's task -------------------------------------------------------------------------

def story_task(rt: Runtime, sprint: Mapping[str, Any], story: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The claimable task for the story's current run, shaped like one from create_task."""
    run = int(story["run"])
    priority = Priority(story.get("priority") or sprint["priority"])
    status = TaskStatus.CREATED
    return {
        "taskId": story_task_id(sprint["sprintId"], story["storyId"], run),
        "title": f"[{sprint['projectName']}] {story['title']}"[:200],
        "instructions": task_instructions(sprint, story),
        "type": TASK_TYPE, "priority": priority.value, "priorityRank": queue_rank(priority, Action.SPRINT),
        "action": Action.SPRINT.value, "status": status.value, "phase": PHASES[status].value,
        "target": story["target"], "originalTarget": None, "source": sprint["createdBy"], "projectId": None,
        "threadId": sprint["sprintId"], "replyTo": None, "fallback": None,
        "provenance": f"sprint {sprint['sprintId']} story {story['storyId']} run {run}",
        "attempt": 1, "claimToken": 0, "maxAttempts": rt.policy.max_attempts,
        "expiresAt": None, "createdAt": now, "updatedAt": now,
        "history": with_history([], HistoryEntry(now, "create", SYSTEM, None, status.value,
                                                 f"story {story['storyId']} unlocked")),
        "sprintId": sprint["sprintId"], "storyId": story["storyId"], "storyRun": run,
    }


def task_instructions(sprint: Mapping[str, Any], story: Mapping[str, Any]) -> str:
    run = int(story["run"])
    lines = [f"Sprint '{sprint['projectName']}' (sprintId {sprint['sprintId']}), story {story['storyId']}, "
             f"wave {story['wave']}" + (f", run {run} (earlier: {story.get('lastError')})" if run > 1 else "") + "."]
    if sprint.get("branch"):
        lines.append(f"Branch: {sprint['branch']}")
    if story.get("instructions"):
        lines += ["", story["instructions"]]
    if sprint.get("instructions"):
        lines += ["", "Sprint context:", sprint["instructions"]]
    lines += ["", "When done, complete_task SUCCESS (or FAILED with error_class); the sprint records it and "
                  "unlocks whatever waits on this story."]
    return "\n".join(lines)


def ready_text(sprint: Mapping[str, Any], items: Sequence[tuple[Mapping[str, Any], str]]) -> str:
    waves = sorted({int(story["wave"]) for story, _ in items})
    listed = "; ".join(
        f"{story['storyId']} '{story['title']}'" + (f" (run {story['run']})" if int(story["run"]) > 1 else "")
        + f" -> task {task_id}" for story, task_id in items)
    where = "wave " + ", ".join(str(w) for w in waves)
    return (f"Sprint '{sprint['projectName']}' ({sprint['sprintId']}): {len(items)} "
            f"{'story' if len(items) == 1 else 'stories'} ready to claim in {where}: {listed}. "
            "Find them with get_tasks type 'sprint-story', then claim_task.")


def notice(rt: Runtime, tenant_id: str, group: str | None, recipients: list[str], text: str, kind: MessageType,
           thread: str, now: str) -> tuple[str, dict[str, Any]]:
    """A message from CacheBash as a multicast record, written in the caller's transaction so it
    exists exactly when the change it announces does; the relay's fan-out delivers the copies."""
    multicast_id = new_id()
    return tenant_path(tenant_id, "multicasts", multicast_id), {
        "source": SYSTEM, "message_type": kind.value, "message": text, "priority": Priority.NORMAL.value,
        "priorityRank": PRIORITY_RANK[Priority.NORMAL], "threadId": thread, "reply_to": None, "createdAt": now,
        "expiresAt": rt.clock.iso(DEFAULT_MESSAGE_TTL), "multicastId": multicast_id, "group": group,
        "recipients": recipients,
    }


def members_of(programs: list[dict[str, Any]], target: str) -> list[str]:
    if target in directory.known_groups(programs):
        return directory.group_members(programs, target)
    return [target] if any(p["programId"] == target for p in programs) else []


# --- handlers ---------------------------------------------------------------------------------

def sync_story(rt: Runtime, event: TaskFinished) -> dict[str, Any]:
    """A story task finished: record it on the story (only its current run's task counts)."""
    ref = parse_story_task_id(event.task_id)
    if ref is None:
        return {}  # not a story task: nothing read, so ordinary tasks cost nothing here
    sprint_id, story_id, run = ref
    tenant_id, now = event.tenant_id, rt.clock.iso()
    task_id = story_task_id(sprint_id, story_id, run)
    path = story_path(tenant_id, sprint_id, story_id)

    def apply(tx: Changes) -> dict[str, Any]:
        task, story, sprint = tx.get_all([task_path(tenant_id, task_id), path, sprint_path(tenant_id, sprint_id)])
        if task is None or story is None or sprint is None or sprint["status"] != SprintStatus.ACTIVE.value:
            return {}
        if story.get("taskId") != task_id or int(story["run"]) != run:
            return {}  # an earlier run's task: the story has moved on
        changes = story_changes_for_task(story, task, now)
        if changes:
            tx.update(path, changes)
        if unlock_may_follow(changes):
            tx.emit(StoryChanged(tenant_id, sprint_id=sprint_id, story_id=story_id))
        return changes

    return transact(rt, apply)


def on_story_changed(rt: Runtime, event: StoryChanged) -> Released:
    return release(rt, event.tenant_id, event.sprint_id)



def repair(rt: Runtime, tenant_id: str, limit: int = 200) -> int:
    """Bring every active sprint of a tenant in line with its tasks; returns how many moved.

    For the periodic sweeper. Lost events are redelivered from the outbox; this covers what no
    entry records: a story whose task finished while its event could still be lost (before the
    outbox), or a release a handler never ran. A story still open whose current task is
    finished gets that task's outcome (`sync_story`), then `release` hands out what is due.
    Costs one read of each active sprint's stories, and of their open tasks, when nothing is due."""
    active = Query(tenant_path(tenant_id, "sprints")).where("status", "==", SprintStatus.ACTIVE.value).take(limit)
    moved = 0
    for doc in rt.store.query(active):
        synced = sum(bool(sync_story(rt, TaskFinished(tenant_id, task_id=task_id, status=status)))
                     for task_id, status in _finished_behind(rt, tenant_id, doc.id))
        out = release(rt, tenant_id, doc.id)
        moved += bool(synced or out.tasks or out.completed)
    return moved


def _finished_behind(rt: Runtime, tenant_id: str, sprint_id: str) -> list[tuple[str, str]]:
    """(taskId, status) of each open story's current task that finished without the story knowing."""
    stories = [d.data for d in rt.store.query(stories_query(tenant_id, sprint_id))]
    waiting = [s["taskId"] for s in stories if StoryStatus(s["status"]) in OPEN and released(s)]
    if not waiting:
        return []
    tasks = rt.store.run_transaction(lambda tx: read_tasks(tx, tenant_id, waiting))
    return [(task_id, task["status"]) for task_id, task in tasks.items() if task["status"] not in OPEN_TASK]
