"""Programs (agent identities), their groups and their persistent state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from cachebash.domain.inputs import Input, LongText, Name, ShortText

BUILTIN_GROUPS: tuple[str, ...] = ("council", "builders", "intelligence")
ALL_GROUP = "all"
# The person behind the phone app: agents address questions and directives to it.
HUMAN = "human"
RESERVED_NAMES = frozenset({*BUILTIN_GROUPS, ALL_GROUP, HUMAN, "cachebash"})
MAX_STATE_BYTES = 64 * 1024
# A program's queue is read as one query over the names that reach it: itself, its groups and
# `all`, and a store query takes at most 30 values in one `in` (Firestore's limit, ports.store).
MAX_GROUPS_PER_PROGRAM = 30 - 2
#: A program none of whose sessions was seen for this long is unavailable: a task's `fallback`
#: gets its work (CACHEBASH_AWAY_SECONDS; list_programs counts sessions seen since as live).
AWAY_SECONDS = 10 * 60
#: Presence is written at most once per key, program and session per this many seconds.
SEEN_EVERY_SECONDS = 60
#: A program's document remembers its most recently seen sessions, at most this many.
MAX_SESSIONS = 10
#: ... and the interrupt tasks announced to it and not yet seen claimed, at most this many.
MAX_INTERRUPT_MARKS = 20


@dataclass(frozen=True)
class ProgramMarks:
    """What authentication read of the caller's own program document, so that a call can act on
    presence and pending interrupts without reading it again (`tenants/{t}/programs/{p}`:
    `lastSeenAt`, `sessions` [{sessionId, seenAt}], `interrupts` [taskId])."""

    last_seen: str | None = None
    sessions: tuple[tuple[str, str], ...] = ()
    interrupts: tuple[str, ...] = ()

    @classmethod
    def of(cls, program: Mapping[str, Any]) -> ProgramMarks:
        sessions = tuple((str(s["sessionId"]), str(s["seenAt"])) for s in program.get("sessions") or ()
                         if isinstance(s, Mapping) and s.get("sessionId") and s.get("seenAt"))
        return cls(program.get("lastSeenAt"), sessions, tuple(str(i) for i in program.get("interrupts") or ()))


class LastTask(Input):
    taskId: ShortText | None = Field(None, description="Id of the task (taskId from create_task or get_tasks).")
    title: ShortText | None = Field(None, description="Its title, so the next session knows it without a lookup.")
    outcome: ShortText | None = Field(None, description="How it ended, e.g. 'SUCCESS: PR #12 open' or 'blocked on "
                                                         "review'.")
    notes: LongText | None = Field(None, description="Anything the next session needs to carry on: what is left, "
                                                     "where to look.")


class ContextSummary(Input):
    lastTask: LastTask | None = Field(None, description="The task you worked on last and how it ended.")
    activeWorkItems: list[ShortText] | None = Field(None, max_length=100, description="What is in flight.")
    openQuestions: list[ShortText] | None = Field(None, max_length=100, description="Questions still open.")
    handoffNotes: LongText | None = Field(None, description="Notes for your next session.")


class GetProgramState(Input):
    programId: Name | None = Field(
        None,
        description="Defaults to you. Only admin keys may read another program's state.",
    )


class UpdateProgramState(Input):
    programId: Name | None = Field(None, description="Defaults to you; a program may only write its own state.")
    contextSummary: ContextSummary = Field(
        description="Fields given replace the stored ones; fields left out are kept.",
    )


class ListPrograms(Input):
    pass


class CreateKey(Input):
    programId: Name = Field(description="Program id the key acts as (its identity), e.g. 'builder'.")
    label: ShortText | None = Field(None, description="Human label, e.g. 'Builder Agent - Claude Code'.")
    groups: list[Name] = Field(
        default_factory=list, max_length=MAX_GROUPS_PER_PROGRAM,
        description=f"Groups to add the program to, e.g. ['builders']; a program is in at most "
                    f"{MAX_GROUPS_PER_PROGRAM} groups, over all its keys.",
    )
    admin: bool = Field(False, description="Whether the key may manage keys and read every program's state.")


class RevokeKey(Input):
    keyId: ShortText = Field(description="keyId from list_keys.")
