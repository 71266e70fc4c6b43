"""Program state (own only, admins read any) and keys (admin only, hashed, revocable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.domain.errors import Forbidden, InvalidInput, Unauthenticated
from cachebash.domain.inputs import parse
from cachebash.domain.programs import CreateKey, GetProgramState, RevokeKey, UpdateProgramState
from cachebash.services import keys, program_state
from cachebash.services.runtime import Runtime
from support.callers import make_caller


def test_program_state_round_trip_and_merge(runtime: Runtime) -> None:
    builder = make_caller(runtime, "builder")
    empty = program_state.get_program_state(runtime, builder, GetProgramState())
    assert empty["exists"] is False and empty["contextSummary"] == {}
    program_state.update_program_state(runtime, builder, parse(UpdateProgramState, {"contextSummary": {
        "lastTask": {"taskId": "abc", "title": "Add endpoint", "outcome": "completed", "notes": "PR #42"},
        "activeWorkItems": ["user management"], "openQuestions": ["rate limits?"]}}))
    program_state.update_program_state(runtime, builder, parse(UpdateProgramState, {"contextSummary": {
        "handoffNotes": "resume at step 3"}}))
    state = program_state.get_program_state(runtime, builder, GetProgramState(programId="builder"))
    summary = state["contextSummary"]
    assert summary["lastTask"]["notes"] == "PR #42" and summary["handoffNotes"] == "resume at step 3"
    assert summary["activeWorkItems"] == ["user management"]


def test_program_state_permissions(runtime: Runtime) -> None:
    builder = make_caller(runtime, "builder")
    reviewer = make_caller(runtime, "reviewer")
    admin = make_caller(runtime, "boss", admin=True)
    program_state.update_program_state(runtime, builder, parse(UpdateProgramState, {"contextSummary": {
        "handoffNotes": "secret plan"}}))
    with pytest.raises(Forbidden):
        program_state.get_program_state(runtime, reviewer, GetProgramState(programId="builder"))
    with pytest.raises(Forbidden):
        program_state.update_program_state(runtime, reviewer, parse(UpdateProgramState, {
            "programId": "builder", "contextSummary": {"handoffNotes": "x"}}))
    with pytest.raises(Forbidden):
        program_state.update_program_state(runtime, admin, parse(UpdateProgramState, {
            "programId": "builder", "contextSummary": {"handoffNotes": "x"}}))
    read = program_state.get_program_state(runtime, admin, GetProgramState(programId="builder"))
    assert read["contextSummary"]["handoffNotes"] == "secret plan"


def test_only_admins_manage_keys(runtime: Runtime) -> None:
    builder = make_caller(runtime, "builder")
    with pytest.raises(Forbidden):
        keys.create_key(runtime, builder, CreateKey(programId="x"))
    with pytest.raises(Forbidden):
        keys.list_keys(runtime, builder)
    admin = make_caller(runtime, "boss", admin=True)
    created = keys.create_key(runtime, admin, CreateKey(programId="reviewer", label="Reviewer", groups=["council"]))
    assert created["apiKey"].startswith("cb_") and created["groups"] == ["council"]
    who = keys.authenticate(runtime, created["apiKey"])
    assert (who.program_id, who.tenant_id, who.groups, who.admin) == ("reviewer", "default", ("council",), False)
    listed = keys.list_keys(runtime, admin)["keys"]
    assert {k["programId"] for k in listed} == {"builder", "boss", "reviewer"}
    assert all("apiKey" not in k for k in listed)


def test_revoked_and_unknown_keys_are_refused(runtime: Runtime) -> None:
    admin = make_caller(runtime, "boss", admin=True)
    created = keys.create_key(runtime, admin, CreateKey(programId="builder"))
    keys.revoke_key(runtime, admin, RevokeKey(keyId=created["keyId"]))
    with pytest.raises(Unauthenticated, match="revoked"):
        keys.authenticate(runtime, created["apiKey"])
    for bad in ("", None, "cb_nope"):
        with pytest.raises(Unauthenticated):
            keys.authenticate(runtime, bad)


def test_keys_are_stored_only_as_hashes(runtime: Runtime, sqlite_path: Path) -> None:
    created = keys.issue_key(runtime, "default", CreateKey(programId="builder"), "test")
    record = runtime.store.get(keys.key_path(keys.hash_key(created["apiKey"])))
    assert record is not None and created["apiKey"] not in str(record)
    if isinstance(runtime.store, SqliteStore):
        runtime.store.close()
        files = [p for p in sqlite_path.parent.iterdir() if p.name.startswith(sqlite_path.name)]
        assert files and all(created["apiKey"].encode() not in p.read_bytes() for p in files)


def test_reserved_and_bad_names(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput):
        keys.issue_key(runtime, "default", CreateKey(programId="builders"), "test")
    with pytest.raises(InvalidInput):
        keys.issue_key(runtime, "bad tenant", CreateKey(programId="x"), "test")
