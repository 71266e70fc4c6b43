"""Per-program memory across sessions: what a program was doing and what it left open."""

from __future__ import annotations

import json
from typing import Any

from cachebash.domain.errors import Forbidden, InvalidInput
from cachebash.domain.programs import MAX_STATE_BYTES, GetProgramState, UpdateProgramState
from cachebash.ports.store import Transaction
from cachebash.services.runtime import Caller, Runtime, tenant_path


def _path(caller: Caller, program_id: str) -> str:
    return tenant_path(caller.tenant_id, "program_state", program_id)


def get_program_state(rt: Runtime, caller: Caller, cmd: GetProgramState) -> dict[str, Any]:
    program_id = cmd.programId or caller.program_id
    if program_id != caller.program_id and not caller.admin:
        raise Forbidden(f"you may read only your own state ('{caller.program_id}'); admin keys read any",
                        field="programId")
    state = rt.store.get(_path(caller, program_id))
    return {
        "success": True, "programId": program_id, "exists": state is not None,
        "contextSummary": (state or {}).get("contextSummary", {}), "updatedAt": (state or {}).get("updatedAt"),
    }


def update_program_state(rt: Runtime, caller: Caller, cmd: UpdateProgramState) -> dict[str, Any]:
    program_id = cmd.programId or caller.program_id
    if program_id != caller.program_id:
        raise Forbidden(f"a program writes only its own state; you are '{caller.program_id}'", field="programId")
    now = rt.clock.iso()
    changes = cmd.contextSummary.model_dump(exclude_unset=True, mode="json")
    path = _path(caller, program_id)

    def write(tx: Transaction) -> dict[str, Any]:
        current = (tx.get(path) or {}).get("contextSummary", {})
        merged = {**current, **changes}
        if len(json.dumps(merged)) > MAX_STATE_BYTES:
            raise InvalidInput(f"contextSummary: larger than {MAX_STATE_BYTES} bytes once merged",
                               field="contextSummary")
        tx.set(path, {"programId": program_id, "contextSummary": merged, "updatedAt": now})
        return merged

    merged = rt.store.run_transaction(write)
    return {"success": True, "programId": program_id, "contextSummary": merged, "updatedAt": now}
