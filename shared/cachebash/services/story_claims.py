"""Builders take and report on stories with update_sprint_story, as the seeds show.

Setting an unlocked story `active` claims its task for the caller when the caller may claim it
(it is the story's target, or in the target group) and nobody holds it: the same claim as
claim_task (`claims.claim_changes`), written in update_sprint_story's transaction with the
story, so of builders racing for one story exactly one wins and the others get
ALREADY_CLAIMED naming the holder. The holder's later updates with progress or currentAction
are heartbeats of that claim (they go onto the task and extend its lease, like
report_task_progress), and `complete`/`failed` finish the task (`sprints._task_follows`).
The sprint's creator and admin keys still decide by hand without claiming anything, unless
they may claim the story's task themselves and it is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cachebash.domain.errors import Code, Conflict
from cachebash.domain.sprint_tasks import ACTIVE_TASK
from cachebash.domain.sprints import StoryStatus, UpdateSprintStory
from cachebash.domain.task_states import Phase
from cachebash.services import claims
from cachebash.services.runtime import Caller, Runtime

#: How long a builder should wait when a story unlocked a moment ago and its task is not written yet.
RELEASE_RETRY_SECONDS = 1


def holds(task: Mapping[str, Any] | None, caller: Caller) -> bool:
    return task is not None and task.get("status") in ACTIVE_TASK and task.get("claimedBy") == caller.program_id


def takes(caller: Caller, sprint: Mapping[str, Any], story: Mapping[str, Any], task: Mapping[str, Any] | None,
          status: StoryStatus | None) -> bool:
    """Whether this update is the caller taking the story, i.e. claiming its task."""
    if status is not StoryStatus.ACTIVE or story["target"] not in caller.addresses or holds(task, caller):
        return False
    manages = caller.admin or caller.program_id == sprint["createdBy"]
    return not manages or (task is not None and task.get("phase") == Phase.QUEUED.value)


def claim(rt: Runtime, task: dict[str, Any] | None, story: Mapping[str, Any], caller: Caller,
          cmd: UpdateSprintStory, now: str) -> dict[str, Any]:
    """The task's changes for the caller's claim (and its first progress report, if it gave one)."""
    if task is None and story.get("heldReason"):
        raise Conflict(f"story '{story['storyId']}' is unlocked but its task is held back by the plan: "
                       f"{story['heldReason']}", code=Code.NOT_AVAILABLE_YET, field="storyId",
                       heldReason=story["heldReason"])
    if task is None:
        raise Conflict(f"story '{story['storyId']}' has just unlocked and its task is still being created; call again "
                       f"in {RELEASE_RETRY_SECONDS} s", code=Code.NOT_AVAILABLE_YET, field="storyId",
                       retryAfterSeconds=RELEASE_RETRY_SECONDS)
    changes = claims.claim_changes(rt, task, caller, None, None, now)
    return {**changes, **(heartbeat(rt, {**task, **changes}, caller, cmd, now) or {})}


def heartbeat(rt: Runtime, task: dict[str, Any], caller: Caller, cmd: UpdateSprintStory,
              now: str) -> dict[str, Any] | None:
    """The holder reporting on its story (`active`, progress, currentAction): the same report
    on its task, which also renews the lease; None for any other update (complete, failed…)."""
    if cmd.status not in (None, StoryStatus.ACTIVE):
        return None
    return claims.progress_changes(rt, task, caller.program_id, cmd.progress, cmd.currentAction, now)


def result(cmd: UpdateSprintStory, story: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to a take or a report: the story as get_sprint shows it, and what the builder
    needs next (the task id, its claim token and lease)."""
    return {
        "success": True, "sprintId": cmd.sprintId, "storyId": cmd.storyId, "status": StoryStatus.ACTIVE.value,
        "run": story["run"], "progress": task.get("progress"), "currentAction": task.get("progressNote"),
        "task": {"taskId": task["taskId"], "status": task["status"], "claimToken": task.get("claimToken"),
                 "leaseExpiresAt": task.get("leaseExpiresAt"), "attempt": task.get("attempt", 1),
                 "next": "report with update_sprint_story (progress, currentAction) or report_task_progress; finish "
                         "with update_sprint_story status 'complete' or 'failed' (or complete_task with claim_token "
                         f"{task.get('claimToken')})"},
    }
