"""Program state tools: memory across sessions."""

from __future__ import annotations

from cachebash.domain.programs import GetProgramState, ListPrograms, UpdateProgramState
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import fleet, program_state

TOOLS = [
    ToolSpec(
        "get_program_state",
        "Load what your previous session left: last task, active work items, open questions, handoff notes. "
        "Call at the start of a session.",
        GetProgramState,
        program_state.get_program_state,
        read_only=True,
        output=results.ProgramState,
        title="Load your saved context",
    ),
    ToolSpec(
        "update_program_state",
        "Save your working context for your next session (fields given replace the stored ones; others are "
        "kept). Call before a session ends or after finishing a task.",
        UpdateProgramState,
        program_state.update_program_state,
        idempotent=True,
        output=results.ProgramState,
        title="Save your context",
    ),
    ToolSpec(
        "list_programs",
        "Who is in your tenant: every program with its groups, when it was last seen, whether it is available "
        "(seen in the last 10 minutes), its live sessions, the tasks it holds now (ids and titles) and the "
        "lastTask of its program state. Use it to pick a target, or a fallback, for create_task.",
        ListPrograms,
        lambda rt, caller, _: fleet.list_programs(rt, caller),
        read_only=True,
        output=results.Programs,
        title="See who is in your tenant",
    ),
]
