"""Program state tools: memory across sessions."""

from __future__ import annotations

from cachebash.domain.programs import GetProgramState, UpdateProgramState
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import program_state

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
]
