"""Refusals that tell the agent its next step: a claim_token that is not the current one says
both tokens and who holds the task; NOT_FOUND says where such ids come from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cachebash.domain.errors import CacheBashError, Code
from cachebash.domain.inputs import parse
from cachebash.domain.messages import MessageRef
from cachebash.domain.programs import RevokeKey
from cachebash.domain.sprints import SprintRef
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask, ReportProgress, TaskRef
from cachebash.services import claims, keys, relay, sprints, tasks
from cachebash.services.runtime import Caller, Runtime
from support.callers import lead_and_builders, make_caller


def refused(call: Callable[[], Any]) -> CacheBashError:
    with pytest.raises(CacheBashError) as info:
        call()
    return info.value


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return lead_and_builders(runtime)


def test_a_wrong_claim_token_names_both_tokens_and_the_holder(runtime: Runtime, team: dict[str, Caller]) -> None:
    created = tasks.create_task(runtime, team["lead"], parse(CreateTask, {"title": "t", "target": "builders"}))
    task_id = created["taskId"]
    token = claims.claim_task(runtime, team["b1"], parse(ClaimTask, {"taskId": task_id}))["claimToken"]
    mine = refused(lambda: claims.report_progress(runtime, team["b1"], ReportProgress(taskId=task_id, claim_token=99)))
    assert mine.code == Code.CLAIM_LOST and mine.field == "claim_token"
    assert f"you passed 99; it is now held by you ('b1'): the current token is {token}" in mine.message
    assert f"pass claim_token {token}" in mine.message
    theirs = refused(lambda: claims.complete_task(runtime, team["b2"], CompleteTask(taskId=task_id, claim_token=99)))
    assert "you passed claim_token 99" in theirs.message and "held by 'b1'" in theirs.message
    assert claims.report_progress(runtime, team["b1"], ReportProgress(taskId=task_id, claim_token=token))["success"]


def test_not_found_says_where_the_ids_come_from(runtime: Runtime, team: dict[str, Caller]) -> None:
    admin = make_caller(runtime, "admin", admin=True)
    cases: dict[str, tuple[Callable[[], Any], str]] = {
        "taskId": (lambda: tasks.get_task(runtime, team["b1"], TaskRef(taskId="nope")), "create_task, get_tasks"),
        "messageId": (lambda: relay.get_message(runtime, team["b1"], MessageRef(messageId="nope")), "send_message"),
        "sprintId": (lambda: sprints.get_sprint(runtime, team["b1"], SprintRef(sprintId="nope")), "create_sprint"),
        "keyId": (lambda: keys.revoke_key(runtime, admin, RevokeKey(keyId="nope")), "list_keys"),
    }
    for field, (call, source) in cases.items():
        error = refused(call)
        assert (error.code, error.field) == (Code.NOT_FOUND, field)
        assert f"ids come from {source}" in error.message, error.message
