"""What each tool answers, written once: the published `outputSchema` of every tool, and what
the e2e suite validates every real answer against.

Each shape names the fields an agent can rely on and allows more (`extra="allow"`), so a field
added to an answer later still validates; a tool's schema is `its shape | Refusal`, since a
refusal is structured content too. A new tool needs one class here and `output=` on its spec.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class Result(Shape):
    """Every successful answer."""

    success: Literal[True]
    warning: str | None = Field(None, description="Something worth knowing that did not stop the call, e.g. an "
                                                  "unknown target.")


class ErrorBody(Shape):
    code: str = Field(description="Stable machine code (see the README's error table), e.g. VALIDATION_ERROR.")
    message: str = Field(description="What was wrong and what to do next.")
    field: str | None = Field(None, description="The parameter at fault, when one was.")


class Refusal(Shape):
    """Every refused call (isError: true); nothing was changed."""

    success: Literal[False]
    error: ErrorBody


# --- tasks ---------------------------------------------------------------------------------

Nullable = str | None


class Task(Shape):
    taskId: str
    title: str
    status: str = Field(description="created, claimed, in_progress, completed, failed, cancelled, skipped, expired "
                                    "or dead.")
    priority: str | None = None
    type: str | None = None
    target: str | None = None
    source: str | None = None
    instructions: Nullable = None
    claimedBy: Nullable = None
    claimToken: int | None = Field(None, description="Pass back as claim_token on later calls about this task.")
    leaseExpiresAt: Nullable = None
    createdAt: Nullable = None


class TaskCreated(Result):
    taskId: str
    title: str
    status: str
    target: str = Field(description="Who receives it (the fallback, when that was used).")


class TaskPage(Result):
    hasTasks: bool
    count: int
    tasks: list[Task]
    nextCursor: Nullable = Field(description="Pass as cursor for the next page; null on the last one.")


class TaskDetail(Result):
    task: Task = Field(description="The task in full, with its history.")


class Claimed(Result):
    taskId: str
    title: str
    status: str
    claimedBy: str
    claimToken: int = Field(description="Pass back as claim_token to report_task_progress, renew_claim, "
                                        "release_task and complete_task.")
    attempt: int
    leaseExpiresAt: str = Field(description="Renew before this (renew_claim or report_task_progress).")
    instructions: Nullable


class NextClaim(Result):
    claimed: bool = Field(description="false: nothing you may claim is waiting (see note).")
    taskId: str | None = None
    task: Claimed | None
    note: str | None = None


class TaskMoved(Result):
    taskId: str
    status: str


class Progress(TaskMoved):
    progress: int | None = None
    leaseExpiresAt: str


class Renewed(TaskMoved):
    claimToken: int
    leaseExpiresAt: str


class Completed(TaskMoved):
    completedStatus: str = Field(description="SUCCESS, FAILED, SKIPPED or CANCELLED, as passed.")
    message: str


# --- messages ------------------------------------------------------------------------------

class Message(Shape):
    messageId: str
    source: str
    target: str
    message_type: str
    message: str
    priority: str | None = None
    threadId: str | None = None
    createdAt: str | None = None


class Sent(Result):
    messageId: str
    target: str
    recipients: list[str] = Field(description="Programs that get a copy.")
    multicastId: str | None = None
    inboxFull: list[str] | None = Field(None, description="Group members left out: their inbox is full (plan limit).")


class Inbox(Result):
    hasMessages: bool
    count: int
    messages: list[Message]


class Thread(Result):
    threadId: str
    count: int
    messages: list[Message]
    nextCursor: Nullable = None


class OneMessage(Result):
    message: Message


class Group(Shape):
    name: str
    builtin: bool
    members: list[str]


class Groups(Result):
    count: int
    groups: list[Group]


# --- sprints -------------------------------------------------------------------------------

class Claimable(Shape):
    storyId: str
    taskId: str
    target: str


class SprintCreated(Result):
    sprintId: str
    projectName: str
    stories: int
    waves: list[int]
    claimable: list[Claimable] = Field(description="Stories unlocked at once, as tasks to claim.")


class Sprint(Shape):
    sprintId: str
    projectName: str
    status: str = Field(description="active, completed or cancelled.")


class Wave(Shape):
    wave: int
    state: str
    progress: int | float
    stories: list[dict[str, Any]]


class SprintView(Result):
    sprint: Sprint
    progress: int | float
    counts: dict[str, int]
    currentWave: int | None
    waves: list[Wave]
    next: str | None = Field(None, description="What has to happen next.")


class StoryUpdated(Result):
    sprintId: str
    storyId: str
    status: str


class StoryAdded(Result):
    sprintId: str
    storyId: str
    wave: int
    taskId: Nullable = Field(description="The story's task when it is unlocked at once; null while locked.")


class SprintClosed(Result):
    sprint: Sprint


# --- program state and keys ---------------------------------------------------------------

class ProgramState(Result):
    programId: str
    contextSummary: dict[str, Any]
    updatedAt: Nullable


class Holding(Shape):
    taskId: str
    title: str


class ProgramRow(Shape):
    programId: str
    groups: list[str]
    lastSeenAt: Nullable = Field(description="When any key or session of the program was last seen (to the minute).")
    available: bool = Field(description="Seen within awaySeconds: a target a fallback does not replace.")
    liveSessions: list[Any]
    holding: list[Holding] = Field(description="The tasks it holds now.")
    lastTask: dict[str, Any] | None = Field(None, description="lastTask of its program state.")


class Programs(Result):
    count: int
    programs: list[ProgramRow]
    awaySeconds: float = Field(description="How long unseen before a program counts as unavailable.")


class Duration(Shape):
    count: int = Field(description="Tasks completed or failed by their holder, timed from claim to finish.")
    meanSeconds: float | None
    p50Seconds: float | None = Field(description="Upper bound of the histogram bucket holding the median; None "
                                                 "with no durations or past the last bound (a day).")
    p90Seconds: float | None
    histogram: dict[str, int] = Field(description="Tasks per bucket: le1, le10, le60, le300, le1800, le3600, "
                                                  "le14400, le86400 (seconds), over.")


class UsageFigures(Shape):
    created: int
    attempts: int = Field(description="Claims (each claim of a task is an attempt).")
    completed: int
    failed: int
    dead: int = Field(description="Dead-lettered: attempts used up.")
    cancelled: int = Field(description="Cancelled, skipped or expired.")
    tokensIn: int
    tokensOut: int
    costUsd: float
    duration: Duration


class UsageRow(UsageFigures):
    key: str = Field(description="The program, model, provider, project, type or day (YYYY-MM-DD); 'unknown' "
                                 "where the task did not say.")


class Quota(Shape):
    month: str = Field(description="The UTC month, YYYY-MM.")
    used: int = Field(description="Tasks created this month (not questions to the human, not owners' retries).")
    limit: int | None = Field(description="The plan's monthly tasks; None: no quota.")
    remaining: int | None
    resetsAt: str = Field(description="When the month's count starts again (00:00 UTC on the 1st).")
    openTasks: int = Field(description="Tasks queued or active now, against openLimit.")
    openLimit: int | None = Field(description="The plan's max_open_tasks; None: no limit.")


class Usage(Result):
    period: str = Field(description="today, 7d, 30d, month, or range (from_date/to_date).")
    from_: str = Field(alias="from", description="First UTC day, YYYY-MM-DD.")
    to: str = Field(description="Last UTC day, included.")
    groupBy: str
    scope: Literal["tenant", "program"] = Field(description="tenant for an admin key, else your program's work.")
    programId: str | None
    totals: UsageFigures
    rows: list[UsageRow]
    plan: dict[str, Any] = Field(description="The tenant's plan: its name and limits (None: unlimited).")
    quota: Quota


class KeyCreated(Result):
    apiKey: str = Field(description="The key itself, shown this once.")
    keyId: str
    programId: str
    groups: list[str]
    admin: bool


class Key(Shape):
    keyId: str
    programId: str
    active: bool


class Keys(Result):
    count: int
    keys: list[Key]


class KeyRevoked(Result):
    keyId: str
    programId: str
    active: Literal[False]


@cache
def output_schema(shape: type[Result]) -> dict[str, Any]:
    """The published outputSchema: the tool's shape or a refusal."""
    schema = TypeAdapter(cast(Any, shape | Refusal)).json_schema()
    return {"type": "object", **schema}
