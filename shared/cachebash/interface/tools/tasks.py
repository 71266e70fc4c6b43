"""Task tools: the dispatch queue."""

from __future__ import annotations

from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask, GetTasks, ReportProgress, TaskRef
from cachebash.interface.tools import ToolSpec
from cachebash.services import tasks

TOOLS = [
    ToolSpec(
        "create_task",
        "Hand work to another agent: queue a task for a program (e.g. 'builder') or a group (e.g. 'builders'). "
        "Put everything the claimer needs in `instructions`. Returns taskId. Your identity (source) comes from "
        "your API key.",
        CreateTask,
        tasks.create_task,
    ),
    ToolSpec(
        "get_tasks",
        "List tasks, highest priority first then oldest. Default: tasks waiting for you or your groups "
        "(status 'created'). Call at session start and after finishing a task. status 'active' shows claimed "
        "or in-progress tasks. Page with nextCursor.",
        GetTasks,
        tasks.get_tasks,
        read_only=True,
    ),
    ToolSpec(
        "get_task",
        "Read one task in full, including its history of status changes.",
        TaskRef,
        tasks.get_task,
        read_only=True,
    ),
    ToolSpec(
        "claim_task",
        "Take ownership of a task before working on it. Atomic: if several agents claim the same task, exactly "
        "one succeeds and the others get ALREADY_CLAIMED naming the owner. Returns the instructions.",
        ClaimTask,
        tasks.claim_task,
    ),
    ToolSpec(
        "report_task_progress",
        "Tell others you are working on a task you claimed (moves it to in_progress) and how far along you "
        "are. Call when you start and at milestones.",
        ReportProgress,
        tasks.report_progress,
    ),
    ToolSpec(
        "complete_task",
        "Finish a task: SUCCESS or FAILED after claiming it (the claimer or the task's creator may do this), "
        "SKIPPED or CANCELLED before work starts. Include tokens/cost/model when known. A finished task cannot "
        "be finished again.",
        CompleteTask,
        tasks.complete_task,
    ),
]
