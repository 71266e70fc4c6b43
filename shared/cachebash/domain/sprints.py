"""Sprints: stories in waves with dependencies, and the one rule that says when a story may start.

A story is *locked* until every story of an earlier wave is complete or skipped and each of
its own dependencies is complete. The rule is a pure function of the stories' statuses, so
the service evaluates it inside a transaction and any re-run (a retried transaction, an
event delivered twice) reaches the same answer. Everything an agent may be refused for is
decided here, with a message that says what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from cachebash.domain.errors import Code, Conflict, InvalidInput
from cachebash.domain.inputs import NAME_PATTERN, Id, Input, LongText, Name, ShortText, Title
from cachebash.domain.tasks import Priority

MAX_STORIES = 100  # one transaction writes a sprint, its stories and their tasks: stay far below Firestore's limits
MAX_WAVE = 50
MAX_RETRIES = 5
DEFAULT_TARGET = "builders"

StoryId = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class StoryStatus(StrEnum):
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETE = "complete"
    FAILED = "failed"
    SKIPPED = "skipped"


class SprintStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


Q, A, C, F, K = StoryStatus.QUEUED, StoryStatus.ACTIVE, StoryStatus.COMPLETE, StoryStatus.FAILED, StoryStatus.SKIPPED

# Statuses that let later waves go. A failed story is not among them: it blocks until it is
# retried (back to queued) or skipped, so a failure can never be stepped over silently.
FINISHED = frozenset({C, K})
OPEN = frozenset({Q, A})

# What update_sprint_story may set, from each status. Complete and skipped are final, so a
# wave that has unlocked the next one can never be re-opened underneath it.
STORY_MOVES: dict[StoryStatus, frozenset[StoryStatus]] = {
    Q: frozenset({Q, A, C, F, K}),
    A: frozenset({Q, A, C, F, K}),
    F: frozenset({Q, K}),
    C: frozenset(),
    K: frozenset(),
}
# Moves that claim work happened, so they need an unlocked story. Skipping never does.
NEEDS_UNLOCKED = frozenset({A, C, F})


# --- tool inputs -------------------------------------------------------------------------

class StoryInput(Input):
    id: StoryId = Field(
        description="Your id for the story, unique in the sprint (e.g. 'story-1'); dependencies refer to it. "
                    "Letters, digits, '_', '.', '-' (max 64).",
    )
    title: Title = Field(description="What the story delivers, in one line (max 200 chars).")
    wave: int = Field(
        1, ge=1, le=MAX_WAVE,
        description="Stories of one wave run in parallel. Wave N unlocks only when every story of earlier waves "
                    "is complete or skipped. Default 1.",
    )
    dependencies: list[StoryId] = Field(
        default_factory=list, max_length=MAX_STORIES,
        description="Ids of stories (same or earlier wave) that must be complete, not just skipped, before this "
                    "one unlocks.",
    )
    target: Name | None = Field(
        None, description="Program or group whose members may claim this story; default: the sprint's target.",
    )
    instructions: LongText | None = Field(
        None, description="What the builder needs: files, acceptance criteria. Sent in the story's task.",
    )
    priority: Priority | None = Field(None, description="Priority of the story's task; default: the sprint's.")
    maxRetries: int | None = Field(
        None, ge=0, le=MAX_RETRIES,
        description="How many times a failed story is retried automatically, each time as a fresh task "
                    "(never after a PERMANENT failure). Default: the sprint's maxRetries.",
    )


class CreateSprint(Input):
    projectName: Title = Field(description="What the sprint delivers, e.g. 'Add user management'.")
    branch: ShortText | None = Field(None, description="Git branch the work goes on; shown in every story's task.")
    stories: list[StoryInput] = Field(
        min_length=1, max_length=MAX_STORIES,
        description=f"The stories (1-{MAX_STORIES}). Stories that are unlocked at once (wave 1 without "
                    "dependencies) become claimable tasks immediately; the rest as their waves unlock.",
    )
    target: Name = Field(
        DEFAULT_TARGET,
        description="Program or group that claims the stories' tasks unless a story names its own. Default "
                    "'builders'.",
    )
    instructions: LongText | None = Field(
        None, description="Context every story's task includes: repository, conventions, definition of done.",
    )
    priority: Priority = Field(Priority.NORMAL, description="Priority of the stories' tasks (high, normal, low).")
    maxRetries: int = Field(
        0, ge=0, le=MAX_RETRIES,
        description="Default for every story: automatic retries after a failure (0-5; default 0 = a failed story "
                    "waits for you to retry or skip it).",
    )


class SprintRef(Input):
    sprintId: Id = Field(description="The sprint's id (sprintId from create_sprint).")


class UpdateSprintStory(SprintRef):
    storyId: StoryId = Field(description="The story's id, as given in create_sprint.")
    status: StoryStatus | None = Field(
        None,
        description="queued (also: retry a failed story), active (work started; refused while the story is "
                    "locked), complete, failed, or skipped (lets later waves go without it). Complete and skipped "
                    "are final.",
    )
    progress: int | None = Field(None, ge=0, le=100, description="Percent done, 0-100.")
    currentAction: ShortText | None = Field(None, description="What is being done now, in a sentence.")


class AddStoryToSprint(SprintRef):
    story: StoryInput = Field(
        description="The new story. Its wave may not be earlier than a wave that has already unlocked.",
    )


class CompleteSprint(SprintRef):
    cancel: bool = Field(
        False,
        description="false: close a sprint whose stories are all complete, skipped or failed. true: cancel it "
                    "now; unclaimed story tasks are cancelled.",
    )
    reason: ShortText | None = Field(None, description="Why, for the record (shown in get_sprint).")


# --- the lock rule -----------------------------------------------------------------------

@dataclass(frozen=True)
class StoryState:
    """What the lock rule needs to know about a story."""

    id: str
    wave: int
    dependencies: tuple[str, ...]
    status: StoryStatus

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> StoryState:
        return cls(doc["storyId"], int(doc["wave"]), tuple(doc.get("dependencies", ())), StoryStatus(doc["status"]))


@dataclass(frozen=True)
class Wait:
    """One thing a locked story waits for."""

    story_id: str
    wave: int
    status: StoryStatus
    dependency: bool

    def to_dict(self) -> dict[str, Any]:
        return {"storyId": self.story_id, "wave": self.wave, "status": self.status.value,
                "reason": "dependency" if self.dependency else "earlier wave"}


def waiting_for(story: StoryState, stories: Mapping[str, StoryState]) -> list[Wait]:
    """Everything `story` waits for; empty means unlocked."""
    waits = [
        Wait(other.id, other.wave, other.status, other.id in story.dependencies)
        for other in sorted(stories.values(), key=lambda s: (s.wave, s.id))
        if other.wave < story.wave and other.status not in FINISHED
    ]
    listed = {w.story_id for w in waits}
    for dep_id in story.dependencies:
        dep = stories.get(dep_id)
        if dep is not None and dep.status is not C and dep_id not in listed:
            waits.append(Wait(dep.id, dep.wave, dep.status, True))
    return waits


def is_locked(story: StoryState, stories: Mapping[str, StoryState]) -> bool:
    return bool(waiting_for(story, stories))


_WAIT_HINTS = {
    F: "failed: retry it with update_sprint_story status 'queued', or skip it",
    K: "skipped, so it will never be complete: skip this story too",
}


def describe_waits(story_id: str, waits: Sequence[Wait]) -> str:
    parts = []
    for wait in waits:
        kind = "dependency" if wait.dependency else f"wave {wait.wave}"
        parts.append(f"{wait.story_id} ({kind}, {_WAIT_HINTS.get(wait.status, wait.status.value)})")
    return f"story '{story_id}' is locked: it waits for " + ", ".join(parts)


def current_wave(stories: Iterable[StoryState]) -> int | None:
    """The earliest wave with a story not yet complete or skipped; None when all are."""
    open_waves = [s.wave for s in stories if s.status not in FINISHED]
    return min(open_waves) if open_waves else None


# --- validation ----------------------------------------------------------------------------

def check_new_stories(new: Sequence[tuple[str, StoryInput]], existing: Mapping[str, StoryState] | None = None) -> None:
    """Refuse stories that could never run as written: duplicate ids, unknown or later-wave
    dependencies, cycles. `new` pairs each story with the argument path that names it."""
    existing = existing or {}
    waves = {story_id: state.wave for story_id, state in existing.items()}
    for field, story in new:
        if story.id in waves:
            raise InvalidInput(f"{field}.id: '{story.id}' is already used by another story in this sprint; "
                               "story ids must be unique", field=f"{field}.id")
        waves[story.id] = story.wave
    for field, story in new:
        for dep in story.dependencies:
            _check_dependency(field, story, dep, waves)
    cycle = _find_cycle({story.id: tuple(story.dependencies) for _, story in new})
    if cycle:
        field = next(f for f, s in new if s.id == cycle[0])
        raise InvalidInput(f"{field}.dependencies: dependencies form a cycle ({' -> '.join(cycle)}), so none of "
                           "these stories could ever unlock", field=f"{field}.dependencies")


def _check_dependency(field: str, story: StoryInput, dep: str, waves: Mapping[str, int]) -> None:
    where = f"{field}.dependencies"
    if dep == story.id:
        raise InvalidInput(f"{where}: story '{story.id}' cannot depend on itself", field=where)
    if dep not in waves:
        raise InvalidInput(f"{where}: no story '{dep}' in this sprint", field=where)
    if waves[dep] > story.wave:
        raise InvalidInput(
            f"{where}: '{dep}' is in wave {waves[dep]}, after this story's wave {story.wave}; a story may depend "
            "only on stories of its own or an earlier wave", field=where)


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                if node in on_path:
                    return [*path[path.index(node):], node]
                if node in done or node not in graph:
                    continue
                path.append(node)
                on_path.add(node)
            deps = graph[node]
            if i < len(deps):
                stack += [(node, i + 1), (deps[i], 0)]
            else:
                done.add(node)
                on_path.discard(path.pop())
    return None


def check_wave_still_open(field: str, wave: int, stories: Iterable[Mapping[str, Any]]) -> None:
    """A new story must not re-lock stories that have already been handed out as tasks."""
    released = [int(s["wave"]) for s in stories if s.get("unlockedAt")]
    latest = max(released, default=1)
    if wave < latest:
        raise InvalidInput(f"{field}.wave: wave {latest} has already unlocked; a story added now must be in wave "
                           f"{latest} or later, or it would lock work already handed out", field=f"{field}.wave")


def check_story_move(story_id: str, current: StoryStatus, new: StoryStatus, waits: Sequence[Wait], *,
                     reports_work: bool = False) -> None:
    """Whether update_sprint_story may set `new` from `current`; `reports_work` is a progress
    report without a status, which also needs an unlocked story."""
    if new not in STORY_MOVES[current]:
        if not STORY_MOVES[current]:
            raise Conflict(f"story '{story_id}' is already {current.value}, which is final", code=Code.STORY_FINISHED,
                           status=current.value)
        allowed = ", ".join(sorted(s.value for s in STORY_MOVES[current]))
        raise Conflict(f"story '{story_id}' is {current.value}, so it cannot become {new.value} (allowed: {allowed})",
                       code=Code.INVALID_TRANSITION, status=current.value)
    if (new in NEEDS_UNLOCKED or reports_work) and waits:
        raise Conflict(describe_waits(story_id, waits), code=Code.STORY_LOCKED, field="storyId",
                       waitingFor=[w.to_dict() for w in waits])
