"""The plan on the owner API over HTTP: the owner reads it with what is used of it, changes it
(embedded, where the owner is the operator) and meets it as any agent does; in the cloud the
same route refuses the change, since there a plan is billing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachebash.bootstrap import cloud_runtime, embedded_runtime
from cachebash.config import Settings
from cachebash.interface import owner_api
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from support.console import Owner
from support.server import ServerProcess


@pytest.fixture
def owner(server: ServerProcess) -> Iterator[Owner]:
    person = Owner(server, "t-" + uuid.uuid4().hex[:10])
    yield person
    person.close()


def test_the_owner_reads_changes_and_meets_the_plan(owner: Owner) -> None:
    shown = owner.get("/plan")
    assert shown["plan"]["name"] == "self-hosted" and shown["default"] and shown["ownerMayChange"]
    assert shown["usage"]["tasksThisMonth"] == 0
    refused = owner.send("PUT", "/plan", {"overrides": {"monthly_tasks": 1}}, csrf=False, status=403)
    assert refused["error"]["code"] == "CSRF"
    bad = owner.send("PUT", "/plan", {"overrides": {"monthly_tasks": -1}}, status=400)
    assert bad["error"]["field"] == "monthly_tasks"
    unknown = owner.send("PUT", "/plan", {"plan": "gold"}, status=400)
    assert unknown["error"]["field"] == "plan" and unknown["error"]["allowed"][0] == "free"
    changed = owner.send("PUT", "/plan", {"plan": "free", "overrides": {"monthly_tasks": 1}})
    assert changed["plan"]["monthly_tasks"] == 1 and changed["overrides"] == {"monthly_tasks": 1}
    owner.post("/tasks", {"title": "one", "target": "builder"})
    over = owner.post("/tasks", {"title": "two", "target": "builder"}, status=429)
    assert over["error"]["code"] == "QUOTA_EXCEEDED" and over["error"]["plan"] == "free"
    assert [t["title"] for t in owner.get("/tasks")["tasks"]] == ["one"]
    assert owner.get("/plan")["usage"]["tasksThisMonth"] == 1


def test_the_cloud_runtime_defaults_to_free_and_keeps_plans_from_the_owner(tmp_path: Path) -> None:
    rt = cloud_runtime(Settings(data_dir=tmp_path, bus="inprocess", notifier="log"))
    try:
        assert (rt.default_plan, rt.owner_sets_plan) == ("free", False)
        assert embedded_runtime(rt.store).owner_sets_plan is True
    finally:
        rt.store.close()


def test_in_the_cloud_the_owner_reads_the_plan_but_may_not_change_it(store: Store, clock: ManualClock) -> None:
    """As the cloud's runtime (above) has it; the route table is the same."""
    rt = embedded_runtime(store, clock)
    rt.default_plan, rt.owner_sets_plan = "free", False
    shown = owner_api.dispatch(rt, "t1", owner_api.OwnerRequest("GET", "/plan"))
    assert shown.status == 200 and shown.body["plan"]["monthly_tasks"] == 500 and not shown.body["ownerMayChange"]
    refused = owner_api.dispatch(rt, "t1", owner_api.OwnerRequest("PUT", "/plan", body=b'{"plan": "unlimited"}'))
    assert refused.status == 403 and refused.body["error"]["field"] == "plan"
    assert owner_api.dispatch(rt, "t1", owner_api.OwnerRequest("GET", "/plan")).body["plan"]["name"] == "free"
