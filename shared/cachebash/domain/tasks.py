"""What agents may say about tasks: the vocabulary and the shape of each tool's input."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from cachebash.domain.inputs import (
    MAX_INT,
    Count,
    Id,
    IdempotencyKey,
    Input,
    LongText,
    Name,
    ShortText,
    Title,
    Ttl,
    WaitSeconds,
)


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# Stored on each task so ordering by priority is a plain ascending sort in any store.
PRIORITY_RANK: dict[Priority, int] = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}


class TaskType(StrEnum):
    TASK = "task"
    QUESTION = "question"
    DREAM = "dream"
    SPRINT = "sprint"
    SPRINT_STORY = "sprint-story"


class Action(StrEnum):
    QUEUE = "queue"
    INTERRUPT = "interrupt"
    SPRINT = "sprint"
    PARALLEL = "parallel"
    BACKLOG = "backlog"


# How far an action moves a task in its queue: interrupts before everything, backlog after
# everything else, by priority within each band. The bands are wider than the priorities, so
# an interrupt of low priority still comes before any high-priority task.
_ACTION_BAND: dict[Action, int] = {Action.INTERRUPT: -len(Priority), Action.BACKLOG: len(Priority)}


def queue_rank(priority: Priority, action: Action) -> int:
    """A task's place in its queue, stored as `priorityRank` so a queue stays one ascending
    sort (and one index); other actions keep the priority's own rank (0-2), as before."""
    return PRIORITY_RANK[priority] + _ACTION_BAND.get(action, 0)


class CompletionStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class ErrorClass(StrEnum):
    TRANSIENT = "TRANSIENT"
    PERMANENT = "PERMANENT"
    DEPENDENCY = "DEPENDENCY"
    POLICY = "POLICY"
    TIMEOUT = "TIMEOUT"
    UNKNOWN = "UNKNOWN"


class StatusFilter(StrEnum):
    CREATED = "created"
    ACTIVE = "active"
    DONE = "done"
    DEAD = "dead"
    ALL = "all"


# Generous for one task, and small enough that a tenant's sums stay finite numbers in every chart.
MAX_COST_USD = 1_000_000
SessionId = Annotated[ShortText, Field(description="Your session id, recorded for traceability.")]
MAX_ATTEMPTS_LIMIT = 10
LeaseSeconds = Annotated[
    int,
    Field(ge=1, le=24 * 3600, description="How long your claim lasts without a heartbeat (default 900 s, at most "
                                           "the server's maximum, 7200 s by default). Renew with renew_claim or "
                                           "report_task_progress."),
]
ClaimToken = Annotated[
    int,
    Field(ge=1, le=MAX_INT, description="claimToken from your claim_task; if the task was re-claimed since, the call "
                                        "is refused instead of overwriting the newer attempt."),
]


class CreateTask(Input):
    title: Title = Field(
        description="Short description of the work (max 200 chars). Convention: '[SOURCE→TARGET] Title'.",
    )
    target: Name = Field(
        description="Program id or group (builders, council, intelligence, all, or a custom group) that should do it.",
    )
    instructions: LongText | None = Field(
        None,
        description="Everything the claiming agent needs: findings, file paths, acceptance criteria.",
    )
    type: TaskType = Field(TaskType.TASK, description="Kind of work item.")
    priority: Priority = Field(Priority.NORMAL, description="high is picked before normal, normal before low.")
    action: Action = Field(
        Action.QUEUE,
        description="queue (default); interrupt: offered before every other task and the target is told at once "
                    "(its waiting calls wake, its tool results carry it under 'interrupts' until claimed); "
                    "backlog: offered only once nothing else is; sprint, parallel: like queue.",
    )
    source: Name | None = Field(
        None,
        description="Optional; always your own program id (taken from your API key). Any other value is refused.",
    )
    projectId: ShortText | None = Field(None, description="Project this task belongs to.")
    ttl: Ttl | None = Field(None, description="Seconds until the task expires if nobody claims it.")
    replyTo: Id | None = Field(None, description="Id of a task this one responds to.")
    threadId: ShortText | None = Field(None, description="Thread grouping related tasks and messages.")
    provenance: ShortText | None = Field(None, description="Where this work came from, e.g. 'dream-session-5'.")
    fallback: Name | None = Field(
        None,
        description="Program or group to receive the task if `target` does not exist or is unavailable (no member "
                    "seen for 10 minutes) while the fallback is.",
    )
    max_attempts: int | None = Field(
        None,
        ge=1,
        le=MAX_ATTEMPTS_LIMIT,
        description="Attempts before the task is dead-lettered (lost leases and TRANSIENT failures count; default 3).",
    )
    idempotency_key: IdempotencyKey | None = None


class GetTasks(Input):
    status: StatusFilter = Field(
        StatusFilter.CREATED,
        description="created = waiting to be claimed; active = claimed or in progress; done = finished; all.",
    )
    type: TaskType | Literal["all"] = Field(
        TaskType.TASK,
        description="task (default), question, dream, sprint, sprint-story, or all.",
    )
    target: Name | None = Field(
        None,
        description="Queue to look at (program or group). Default: your own queue, i.e. tasks for you and for your "
                    "groups.",
    )
    limit: int = Field(10, ge=1, le=50, description="Results per page (1-50).")
    cursor: ShortText | None = Field(None, description="nextCursor from a previous call, to get the next page.")
    wait_seconds: WaitSeconds = 0


class TaskRef(Input):
    taskId: Id = Field(description="The task's id (taskId from create_task or get_tasks).")


class ClaimTask(TaskRef):
    sessionId: SessionId | None = None
    lease_seconds: LeaseSeconds | None = None
    idempotency_key: IdempotencyKey | None = None


class ClaimNext(Input):
    target: Name | None = Field(
        None, description="Queue to take from (program or group). Default: your own queue (you and your groups)."
    )
    type: TaskType | Literal["all"] = Field("all", description="Kind of task to take (default: any kind, sprint "
                                                               "stories included).")
    sessionId: SessionId | None = None
    lease_seconds: LeaseSeconds | None = None
    wait_seconds: WaitSeconds = 0


class HeldTaskRef(TaskRef):
    claim_token: ClaimToken | None = None


class RenewClaim(HeldTaskRef):
    lease_seconds: LeaseSeconds | None = None


class ReleaseTask(HeldTaskRef):
    reason: ShortText = Field(description="Why you are handing it back, for the next claimer and the task history.")


class ReportProgress(HeldTaskRef):
    progress: int | None = Field(None, ge=0, le=100, description="Percent done, 0-100.")
    note: ShortText | None = Field(None, description="What you are doing now, in a sentence.")


class CompleteTask(HeldTaskRef):
    completed_status: CompletionStatus = Field(
        CompletionStatus.SUCCESS,
        description="SUCCESS, FAILED (after a claim), SKIPPED or CANCELLED (before work starts).",
    )
    result: LongText | None = Field(None, description="Outcome summary for the task's creator (PR link, findings).")
    tokens_in: Count | None = Field(None, description="Input tokens consumed.")
    tokens_out: Count | None = Field(None, description="Output tokens generated.")
    cost_usd: float | None = Field(None, ge=0, le=MAX_COST_USD, description="Estimated cost in USD.")
    model: ShortText | None = Field(None, description="Model used, e.g. 'claude-sonnet-4-5'.")
    provider: ShortText | None = Field(None, description="Provider, e.g. 'anthropic'.")
    error_code: ShortText | None = Field(None, description="Error identifier when FAILED.")
    error_class: ErrorClass | None = Field(
        None,
        description="When FAILED: TRANSIENT (may be retried), PERMANENT (needs a human or a new approach), DEPENDENCY, "
                    "POLICY, TIMEOUT, UNKNOWN.",
    )
    idempotency_key: IdempotencyKey | None = None
