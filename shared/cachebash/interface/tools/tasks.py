"""Task tools: the dispatch queue."""

from __future__ import annotations

from cachebash.domain.tasks import (
    ClaimNext,
    ClaimTask,
    CompleteTask,
    CreateTask,
    GetTasks,
    ReleaseTask,
    RenewClaim,
    ReportProgress,
    TaskRef,
)
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import claims, tasks, wakeups

TOOLS = [
    ToolSpec(
        "create_task",
        "Hand work to another agent: queue a task for a program (e.g. 'builder') or a group (e.g. 'builders'). "
        "Put everything the claimer needs in `instructions`. Returns taskId. Your identity (source) comes from "
        "your API key. Counts against the tenant's plan: a monthly task quota (QUOTA_EXCEEDED says when it "
        "resets) and a limit of open tasks (LIMIT_EXCEEDED); questions to 'human' do not count monthly.",
        CreateTask,
        tasks.create_task,
        output=results.TaskCreated,
        title="Create a task",
    ),
    ToolSpec(
        "get_tasks",
        "List tasks: interrupts first, then highest priority, then oldest; backlog tasks last. Default: tasks of "
        "type 'task' waiting for you or your groups (status 'created'); an empty answer says in `note` when "
        "other types (e.g. sprint stories) wait. Call at session start and after finishing a task. status "
        "'active' shows claimed or in-progress tasks, 'dead' those whose attempts ran out. Page with nextCursor. "
        "With wait_seconds, waits for a task to arrive instead of returning empty.",
        GetTasks,
        tasks.get_tasks,
        read_only=True,
        wait_keys=wakeups.queue_keys,
        output=results.TaskPage,
        title="List tasks",
    ),
    ToolSpec(
        "get_task",
        "Read one task in full, including its history of status changes.",
        TaskRef,
        tasks.get_task,
        read_only=True,
        output=results.TaskDetail,
        title="Read a task",
    ),
    ToolSpec(
        "claim_task",
        "Take ownership of a task before working on it. Atomic: if several agents claim the same task, exactly "
        "one succeeds and the others get ALREADY_CLAIMED naming the owner. The claim is a lease (leaseExpiresAt): "
        "keep it alive with report_task_progress or renew_claim, or the task goes back to the queue. Returns the "
        "instructions and a claimToken to pass to later calls.",
        ClaimTask,
        claims.claim_task,
        output=results.Claimed,
        title="Claim a task",
    ),
    ToolSpec(
        "report_task_progress",
        "Tell others you are working on a task you claimed (moves it to in_progress) and how far along you "
        "are; also renews your lease. Call when you start and at milestones.",
        ReportProgress,
        claims.report_progress,
        output=results.Progress,
        title="Report progress on a task",
    ),
    ToolSpec(
        "complete_task",
        "Finish a task: SUCCESS or FAILED after claiming it (the claimer or the task's creator may do this), "
        "SKIPPED or CANCELLED before work starts. Include tokens/cost/model when known. FAILED with error_class "
        "TRANSIENT puts the task back in the queue for another attempt (until its attempts run out). A finished "
        "task cannot be finished again.",
        CompleteTask,
        claims.complete_task,
        output=results.Completed,
        title="Finish a task",
    ),
    ToolSpec(
        "claim_next",
        "Take the best task waiting for you (or your groups) in one atomic step: interrupts first, then highest "
        "priority, then oldest; backlog tasks only when nothing else is waiting. Any type (sprint stories too) "
        "unless `type` narrows it. Preferred over get_tasks + claim_task for workers. With wait_seconds, waits "
        "for work to arrive instead of returning empty.",
        ClaimNext,
        claims.claim_next,
        wait_keys=wakeups.queue_keys,
        output=results.NextClaim,
        title="Claim the next task",
    ),
    ToolSpec(
        "renew_claim",
        "Heartbeat: extend the lease on a task you hold, before leaseExpiresAt, when work takes long.",
        RenewClaim,
        claims.renew_claim,
        idempotent=True,
        output=results.Renewed,
        title="Renew a claim",
    ),
    ToolSpec(
        "release_task",
        "Hand a claimed task back to the queue (e.g. you cannot finish it) with a reason; another agent may "
        "claim it. Does not count as a failed attempt.",
        ReleaseTask,
        claims.release_task,
        output=results.TaskMoved,
        title="Hand a task back",
    ),
]
