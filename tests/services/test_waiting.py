"""Waiting calls on a real store: a revoked key ends them before they act on any wake-up, and on
a store that listens one listener per tenant serves every waiter of the tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest

from cachebash.adapters.local_signals import LocalSignals
from cachebash.domain.errors import Unauthenticated
from cachebash.domain.inputs import parse
from cachebash.domain.tasks import ClaimNext, CreateTask
from cachebash.interface.tool_calls import make_runner
from cachebash.interface.tools import all_tools
from cachebash.interface.waiting import run_tool
from cachebash.ports.clock import SystemClock
from cachebash.ports.signals import OWNER_KEY, Feed, Subscription, inbox_key, queue_key, revocation_key
from cachebash.ports.store import Change, Doc, Store
from cachebash.services import tasks, watching
from cachebash.services.rate_limits import rates_path
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller

pytestmark = pytest.mark.anyio

CLAIM_NEXT = next(spec for spec in all_tools() if spec.name == "claim_next")


# ---------------------------------------------------------------------------- which change wakes what


def _change(data: dict[str, Any], removed: bool = False) -> Change:
    return Change(Doc("tenants/t1/x/a", data), removed)


def test_a_queued_task_wakes_its_queue_and_the_console_only() -> None:
    queued = {"target": "builders", "phase": "queued", "status": "created"}
    assert watching.task_wakes(_change(queued)) == {OWNER_KEY, queue_key("builders")}
    assert watching.task_wakes(_change({**queued, "phase": "active"})) == {OWNER_KEY}
    assert watching.task_wakes(_change(queued, removed=True)) == {OWNER_KEY}, "left the window: nothing to take"
    assert watching.task_due({**queued, "availableAt": "2026-01-01T00:00:05.000000Z"}) == (
        "2026-01-01T00:00:05.000000Z", frozenset({queue_key("builders")}))
    assert watching.task_due(queued) is None
    assert watching.task_due({"target": "b", "phase": "active", "availableAt": "2026-01-01T00:00:05.000000Z"}) is None


def test_an_undelivered_message_wakes_its_inbox() -> None:
    message = {"target": "reader", "delivered": False}
    assert watching.message_wakes(_change(message)) == {OWNER_KEY, inbox_key("reader")}
    assert watching.message_wakes(_change({**message, "delivered": True})) == {OWNER_KEY}
    assert watching.message_wakes(_change(message, removed=True)) == {OWNER_KEY}


def test_a_key_leaving_the_active_keys_wakes_its_calls() -> None:
    key = {"keyId": "k1", "active": True}
    assert watching.key_wakes(_change(key)) == {OWNER_KEY}
    assert watching.key_wakes(_change(key, removed=True)) == {OWNER_KEY, revocation_key("k1")}
    assert watching.key_wakes(_change({**key, "active": False})) == {OWNER_KEY, revocation_key("k1")}


# ---------------------------------------------------------------------------- revocation, every backend


async def test_a_wake_up_after_an_unannounced_revocation_claims_nothing(runtime: Runtime) -> None:
    """Another process revoked the key (so no signal reached this one); the task that then wakes
    the waiter is not claimed: the key is read again first."""
    worker = make_caller(runtime, "worker", groups=("builders",))
    lead = make_caller(runtime, "lead")
    key_path = worker.key_path
    assert key_path is not None
    assert isinstance(runtime.signals, LocalSignals)
    try:
        waiting = asyncio.create_task(run_tool(CLAIM_NEXT, runtime, make_runner(runtime), worker,
                                               parse(ClaimNext, {"wait_seconds": 10})))
        await _until(lambda: _waiting(runtime) == 1 and _slot_held(runtime, worker))  # the first look is over
        runtime.store.run_transaction(lambda tx: tx.update(key_path, {"active": False, "revokedAt": "then"}))
        created = tasks.create_task(runtime, lead, parse(CreateTask, {"title": "after", "target": "builders"}))
        with pytest.raises(Unauthenticated, match="revoked at then; this call was waiting"):
            await asyncio.wait_for(waiting, 5)
    finally:
        runtime.signals.close()  # a listener left open would outlive the emulator
    task = runtime.store.get(f"tenants/default/tasks/{created['taskId']}")
    assert task is not None and task["status"] == "created" and task.get("claimedBy") is None


# ---------------------------------------------------------------------------- the shared listener


class _Counting:
    """The real feed factory, counting what it opens."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.opened: list[Feed] = []

    def __call__(self, tenant_id: str, notify: Callable[[Any], None]) -> Feed:
        feed = watching.TenantFeed(self.store, SystemClock(), tenant_id, notify)
        self.opened.append(feed)
        return feed


async def test_many_waiters_of_a_tenant_share_one_listener(backend: str, store_factory: Callable[[], Store]) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite cannot listen: its waiters are woken by the process that writes")
    listened, writer = store_factory(), store_factory()  # two connections: as two processes
    feeds = _Counting(listened)
    signals = LocalSignals(poll=(0.5, 2.0), feeds=feeds, linger=0.3, safety_look=60)
    try:
        with ExitStack() as stack:
            queue = [stack.enter_context(signals.subscribe("t1", [queue_key("builders")])) for _ in range(20)]
            inbox = [stack.enter_context(signals.subscribe("t1", [inbox_key("reader")])) for _ in range(20)]
            key = stack.enter_context(signals.subscribe("t1", [revocation_key("k1")]))
            await _until(lambda: signals.stats()["feedsLive"] == 1)
            assert len(feeds.opened) == 1 and signals.stats() == {"waitingCalls": 41, "feeds": 1, "feedsLive": 1}

            now = SystemClock()
            writer.run_transaction(lambda tx: tx.set("tenants/t1/tasks/a", {
                "taskId": "a", "target": "builders", "phase": "queued", "status": "created",
                "updatedAt": now.iso(), "availableAt": now.iso(1.0)}))
            await _woken(queue)
            assert not any(_is_set(s) for s in [*inbox, key]), "a task wakes its queue only"
            await _clear(queue)
            await _woken(queue)  # again, by the timer, when the back-off ends: nobody wrote
            await _clear(queue)

            writer.run_transaction(lambda tx: tx.set("tenants/t1/messages/m", {
                "messageId": "m", "target": "reader", "delivered": False, "createdAt": now.iso()}))
            await _woken(inbox)
            await _clear(inbox)
            assert not any(_is_set(s) for s in [*queue, key])

            writer.run_transaction(lambda tx: tx.set("keys/h1", {"keyId": "k1", "tenantId": "t1", "active": True}))
            writer.run_transaction(lambda tx: tx.update("keys/h1", {"active": False, "revokedAt": now.iso()}))
            await _woken([key])
        assert signals.stats()["feeds"] == 1, "the listener lingers after the last waiter left"
        await _until(lambda: signals.stats()["feeds"] == 0)
        assert feeds.opened[0].ended
        with signals.subscribe("t1", [queue_key("builders")]):
            assert len(feeds.opened) == 2, "the next waiter opens a new one"
            await _until(lambda: signals.stats()["feedsLive"] == 1)
    finally:
        signals.close()
        listened.close()
        writer.close()


def _slot_held(runtime: Runtime, caller: Caller) -> bool:
    """Whether the call took its waiting slot, which it does right after an empty first look."""
    return bool((runtime.store.get(rates_path(caller.tenant_id, f"waiting-{caller.key_id}")) or {}).get("slots"))


def _waiting(runtime: Runtime) -> int:
    assert isinstance(runtime.signals, LocalSignals)
    return runtime.signals.stats()["waitingCalls"]


def _is_set(subscription: Subscription) -> bool:
    return bool(subscription.event.is_set())  # type: ignore[attr-defined]


async def _clear(subscriptions: list[Subscription]) -> None:
    for subscription in subscriptions:
        await subscription.wait(0)


async def _woken(subscriptions: list[Subscription], within: float = 10.0) -> None:
    await _until(lambda: all(_is_set(s) for s in subscriptions), within)


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)



async def test_a_back_off_ends_on_time_after_its_task_left_the_window(backend: str,
                                                                       store_factory: Callable[[], Store]) -> None:
    """The timer is kept for a task seen going into back-off, also once newer tasks pushed it out
    of the listened window (here 2 tasks wide)."""
    if backend == "sqlite":
        pytest.skip("SQLite cannot listen")
    listened, writer = store_factory(), store_factory()
    narrow = watching.Watched("tasks", lambda t, since: watching.WATCHED[0].query(t, since).take(2),
                              watching.task_wakes, watching.task_due)
    woken: list[tuple[float, set[str]]] = []
    feed = watching.TenantFeed(listened, SystemClock(), "t1", lambda keys: woken.append((time.monotonic(), set(keys))),
                               [narrow])
    clock = SystemClock()

    def put(task_id: str, target: str, **extra: Any) -> None:
        writer.run_transaction(lambda tx: tx.set(f"tenants/t1/tasks/{task_id}", {
            "taskId": task_id, "target": target, "phase": "queued", "status": "created", "updatedAt": clock.iso(),
            **extra}))

    try:
        await _until(lambda: feed.live)
        ends_at = time.monotonic() + 2.0
        put("backing-off", "builders", availableAt=clock.iso(2.0))
        await _until(lambda: any(queue_key("builders") in keys for _, keys in woken))
        put("newer1", "others")
        put("newer2", "others")
        await _until(lambda: sum(queue_key("others") in keys for _, keys in woken) == 2)
        woken.clear()
        await _until(lambda: any(queue_key("builders") in keys for _, keys in woken), within=10)
        assert woken[0][0] >= ends_at - 0.05, "woken when the back-off ended, not before"
    finally:
        feed.close()
        listened.close()
        writer.close()



async def test_a_wait_its_live_feed_saw_nothing_for_needs_no_last_look(backend: str,
                                                                     store_factory: Callable[[], Store]) -> None:
    """At the deadline a waiting call looks a last time, unless a live feed watched the whole wait
    and announced nothing (interface.waiting): then there is nothing to find."""
    if backend == "sqlite":
        pytest.skip("SQLite cannot listen: its waiters are woken by the process that writes")
    listened, writer = store_factory(), store_factory()
    signals = LocalSignals(poll=(0.5, 2.0), feeds=_Counting(listened), linger=0.3, safety_look=60)
    try:
        with signals.subscribe("t1", [inbox_key("reader")]) as waiter:
            await _until(lambda: signals.stats()["feedsLive"] == 1)
            assert await waiter.wait(0.3) is False, "timed out under a live feed that announced nothing"
            now = SystemClock()
            writer.run_transaction(lambda tx: tx.set("tenants/t1/messages/m", {
                "messageId": "m", "target": "reader", "delivered": False, "createdAt": now.iso()}))
            assert await waiter.wait(10) is True, "woken: look"
        polling = LocalSignals(poll=(0.5, 2.0))  # no feed: a timeout may hide what other processes wrote
        with polling.subscribe("t1", [inbox_key("reader")]) as waiter:
            assert await waiter.wait(0.1) is True
    finally:
        signals.close()


async def test_a_feed_hears_only_what_can_wake_a_waiter(backend: str, store_factory: Callable[[], Store]) -> None:
    """Writes that wake nobody (a key's presence, a delivered message, a finished task, anything
    older than the feed) never reach the listener: Google's emulator resends a listened query's
    whole result set on every write to its collection, so what the queries hold is what it costs."""
    if backend == "sqlite":
        pytest.skip("SQLite cannot listen")
    listened, writer = store_factory(), store_factory()
    clock = SystemClock()
    old = clock.iso(-3600)
    writer.run_transaction(lambda tx: tx.set("tenants/t1/messages/old", {
        "messageId": "old", "target": "reader", "delivered": False, "createdAt": old}))
    woken: list[set[str]] = []
    feed = watching.TenantFeed(listened, clock, "t1", lambda keys: woken.append(set(keys)))
    try:
        await _until(lambda: feed.live)
        assert woken == [], "an undelivered message from before the feed opened is not listened to"
        for i in range(5):
            now = clock.iso()
            writer.run_transaction(lambda tx, i=i, now=now: tx.set(f"keys/p{i}", {
                "keyId": f"p{i}", "tenantId": "t1", "active": True, "lastUsedAt": now}))
            writer.run_transaction(lambda tx, i=i, now=now: tx.set(f"tenants/t1/messages/d{i}", {
                "messageId": f"d{i}", "target": "reader", "delivered": True, "createdAt": now}))
            writer.run_transaction(lambda tx, i=i, now=now: tx.set(f"tenants/t1/tasks/done{i}", {
                "taskId": f"done{i}", "target": "builders", "phase": "done", "updatedAt": now}))
        writer.run_transaction(lambda tx: tx.set("tenants/t1/messages/new", {
            "messageId": "new", "target": "reader", "delivered": False, "createdAt": clock.iso()}))
        await _until(lambda: any(inbox_key("reader") in keys for keys in woken))
        assert woken == [{OWNER_KEY, inbox_key("reader")}], "only the new undelivered message was heard"
    finally:
        feed.close()
        listened.close()
        writer.close()
