"""Sprint tools: stories in waves with dependencies, handed out as tasks when they unlock."""

from __future__ import annotations

from cachebash.domain.sprints import AddStoryToSprint, CompleteSprint, CreateSprint, SprintRef, UpdateSprintStory
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import sprints

TOOLS = [
    ToolSpec(
        "create_sprint",
        "Plan a body of work as stories in waves for several agents. Stories of one wave run in parallel; wave N "
        "unlocks only when every story of earlier waves is complete or skipped, and a story with dependencies "
        "also waits for them to be complete. CacheBash enforces this: each story becomes a claimable task "
        "(type 'sprint-story', for the story's target) only once it unlocks, and the target is told. Created in "
        "one step, all or nothing. Returns sprintId.",
        CreateSprint,
        sprints.create_sprint,
        output=results.SprintCreated,
        title="Plan a sprint",
    ),
    ToolSpec(
        "get_sprint",
        "See a sprint: its stories grouped by wave with status, who works on them and progress; progress per "
        "wave and overall; the current wave; which stories are locked and what each waits for; and what has to "
        "happen next. Closed sprints include their summary (counts, durations).",
        SprintRef,
        sprints.get_sprint,
        read_only=True,
        output=results.SprintView,
        title="See a sprint",
    ),
    ToolSpec(
        "update_sprint_story",
        "Take, report on or decide a story. A builder takes an unlocked story by setting it 'active': that "
        "claims the story's task for you atomically (of racing builders one wins; the others get ALREADY_CLAIMED "
        "naming the holder) and returns its taskId and claimToken. Then progress/currentAction report on it (and "
        "renew the lease), and 'complete' or 'failed' finish it. (claim_task/complete_task on the story's task "
        "work too.) The sprint's creator or an admin may set any status: 'queued' retries a failed story (a fresh "
        "task), 'skipped' lets later waves go without it. A locked story cannot be set active, complete or "
        "failed: the error names what it waits for.",
        UpdateSprintStory,
        sprints.update_sprint_story,
        output=results.StoryUpdated,
        title="Update a sprint story",
    ),
    ToolSpec(
        "add_story_to_sprint",
        "Add a story to a running sprint (its creator or an admin). Same rules as create_sprint; the story may "
        "not go into a wave earlier than one that has already unlocked. Claimable at once if it is unlocked.",
        AddStoryToSprint,
        sprints.add_story_to_sprint,
        output=results.StoryAdded,
        title="Add a story to a sprint",
    ),
    ToolSpec(
        "complete_sprint",
        "Close a sprint (its creator or an admin) with a summary. Without cancel, every story must be complete, "
        "skipped or failed (a sprint whose stories all finish completes by itself). With cancel=true it stops "
        "now: unclaimed story tasks are cancelled and holders of running ones are told.",
        CompleteSprint,
        sprints.complete_sprint,
        output=results.SprintClosed,
        title="Close or cancel a sprint",
        destructive=True,
    ),
]
