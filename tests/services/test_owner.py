"""The person's moves on the services, on every store: console sessions, task actions agents
cannot make, and presence."""

from __future__ import annotations

from typing import Any

import pytest

from cachebash.domain.errors import Conflict, Forbidden, Unauthenticated
from cachebash.domain.inputs import parse
from cachebash.domain.programs import CreateKey
from cachebash.domain.tasks import ClaimNext, ClaimTask, CompleteTask, CreateTask, ReportProgress
from cachebash.ports.clock import ManualClock
from cachebash.services import claims, console_auth, devices, keys, owner_tasks, tasks
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import make_caller


def create(rt: Runtime, who: Caller, **args: Any) -> str:
    return str(tasks.create_task(rt, who, parse(CreateTask, {"title": "t", "target": "builder", **args}))["taskId"])


def test_a_login_token_opens_one_session_which_expires(runtime: Runtime, clock: ManualClock) -> None:
    token = console_auth.issue_login(runtime, "default")
    session = console_auth.redeem_login(runtime, token)
    assert console_auth.session(runtime, session.session_id).tenant_id == "default"
    with pytest.raises(Unauthenticated, match="already used"):
        console_auth.redeem_login(runtime, token)
    with pytest.raises(Forbidden):
        console_auth.check_csrf(session, "wrong")
    console_auth.check_csrf(session, session.csrf)
    clock.advance(console_auth.SESSION_TTL_SECONDS + 1)
    with pytest.raises(Unauthenticated, match="expired"):
        console_auth.session(runtime, session.session_id)
    late = console_auth.issue_login(runtime, "default")
    clock.advance(console_auth.LOGIN_TTL_SECONDS + 1)
    with pytest.raises(Unauthenticated, match="expired"):
        console_auth.redeem_login(runtime, late)


def test_retry_of_a_dead_task_is_a_fresh_task_and_the_old_one_stays_finished(runtime: Runtime) -> None:
    architect, builder = make_caller(runtime, "architect"), make_caller(runtime, "builder")
    task_id = create(runtime, architect, max_attempts=1, title="flaky")
    claims.claim_task(runtime, builder, parse(ClaimTask, {"taskId": task_id}))
    claims.complete_task(runtime, builder, parse(CompleteTask, {"taskId": task_id, "completed_status": "FAILED",
                                                                "error_class": "TRANSIENT"}))
    assert owner_tasks.detail(runtime, "default", task_id)["actions"] == ["retry"]
    fresh = owner_tasks.retry(runtime, "default", task_id)
    assert fresh["taskId"] != task_id and fresh["status"] == "created"
    old = owner_tasks.detail(runtime, "default", task_id)
    assert old["task"]["status"] == "dead" and old["task"]["retriedAs"] == fresh["taskId"] and old["actions"] == []
    new = owner_tasks.detail(runtime, "default", fresh["taskId"])["task"]
    assert (new["title"], new["source"], new["attempt"], new["retryOf"]) == ("flaky", "architect", 1, task_id)
    with pytest.raises(Conflict):
        owner_tasks.retry(runtime, "default", task_id)
    assert claims.claim_next(runtime, builder, parse(ClaimNext, {}))["taskId"] == fresh["taskId"]


def test_cancel_stops_running_work_and_fences_its_holder(runtime: Runtime) -> None:
    architect, builder = make_caller(runtime, "architect"), make_caller(runtime, "builder")
    task_id = create(runtime, architect)
    claimed = claims.claim_task(runtime, builder, parse(ClaimTask, {"taskId": task_id}))
    claims.report_progress(runtime, builder, parse(ReportProgress, {"taskId": task_id, "progress": 10}))
    cancelled = owner_tasks.cancel(runtime, "default", task_id, owner_tasks.CancelTask(reason="wrong repo"))
    assert cancelled["status"] == "cancelled"
    with pytest.raises(Conflict) as refused:
        claims.complete_task(runtime, builder, parse(CompleteTask, {"taskId": task_id,
                                                                    "claim_token": claimed["claimToken"]}))
    assert refused.value.code == "TASK_FINISHED"
    history = owner_tasks.detail(runtime, "default", task_id)["task"]["history"]
    assert (history[-1]["event"], history[-1]["by"], history[-1]["note"]) == ("abort", "human", "wrong repo")


def test_the_board_filters_by_state_target_program_and_text(runtime: Runtime) -> None:
    architect = make_caller(runtime, "architect")
    create(runtime, architect, title="Fix login", target="builder", priority="high")
    create(runtime, architect, title="Write docs", target="writer")
    everything = owner_tasks.board(runtime, "default", owner_tasks.BoardFilter())
    assert everything["counts"] == {"queued": 2, "active": 0, "done": 0, "dead": 0}
    only = owner_tasks.board(runtime, "default", parse(owner_tasks.BoardFilter, {"target": "writer"}))
    assert [t["title"] for t in only["tasks"]] == ["Write docs"]
    text = owner_tasks.board(runtime, "default", parse(owner_tasks.BoardFilter, {"q": "LOGIN", "priority": "high"}))
    assert [t["title"] for t in text["tasks"]] == ["Fix login"]
    nobody = owner_tasks.board(runtime, "default", parse(owner_tasks.BoardFilter, {"program": "builder"}))
    assert nobody["tasks"] == []


def test_last_seen_is_written_at_most_once_a_minute(runtime: Runtime, clock: ManualClock) -> None:
    created = keys.issue_key(runtime, "default", CreateKey(programId="builder"), "test")
    path = keys.key_path(keys.hash_key(created["apiKey"]))
    keys.authenticate(runtime, created["apiKey"])
    first = runtime.store.get(path)["lastUsedAt"]  # type: ignore[index]
    clock.advance(30)
    keys.authenticate(runtime, created["apiKey"])
    assert runtime.store.get(path)["lastUsedAt"] == first  # type: ignore[index]
    clock.advance(31)
    keys.authenticate(runtime, created["apiKey"])
    assert runtime.store.get(path)["lastUsedAt"] > first  # type: ignore[index]


def test_a_browser_registers_once_as_a_push_device(runtime: Runtime) -> None:
    first = devices.register(runtime, "default", "fcm-token-1")
    again = devices.register(runtime, "default", "fcm-token-1")
    assert first["deviceId"] == again["deviceId"]
    stored = runtime.store.get(tenant_path("default", "devices", first["deviceId"]))
    assert stored is not None and stored["token"] == "fcm-token-1" and stored["platform"] == "web"
