"""Rate limits on a real store with a manual clock: a key's bucket (burst, then its rate), the
tenant's ceiling, the owner's own bucket, counting across two runtimes on one store (as two
server instances), waiting calls counted once and capped per key across instances."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachebash.adapters.local_signals import LocalSignals
from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import RateLimited
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, SendMessage
from cachebash.domain.plans import PRESETS
from cachebash.domain.tasks import ClaimNext
from cachebash.interface import owner_api
from cachebash.interface.mcp_server import make_runner
from cachebash.interface.tools import all_tools
from cachebash.interface.waiting import run_tool
from cachebash.ports.clock import ManualClock
from cachebash.ports.signals import inbox_key
from cachebash.ports.store import Query, Store
from cachebash.services import rate_limits, relay
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller

pytestmark = pytest.mark.anyio

FREE = PRESETS["free"]  # 120 calls a minute (2 a second), bursts of 60; the tenant 1200 a minute (200 at once)
SPECS = {spec.name: spec for spec in all_tools()}
LEASE = rate_limits.LEASE_SECONDS


@pytest.fixture
def free(runtime: Runtime) -> Runtime:
    runtime.default_plan = "free"
    return runtime


def _admitted(rt: Runtime, caller: Caller, calls: int) -> int:
    n = 0
    for _ in range(calls):
        try:
            rate_limits.admit(rt, caller)
            n += 1
        except RateLimited:
            pass
    return n


def _refusal(rt: Runtime, caller: Caller) -> dict[str, Any]:
    with pytest.raises(RateLimited) as refused:
        rate_limits.admit(rt, caller)
    return refused.value.to_dict()


# ---------------------------------------------------------------------------- one key, one tenant


def test_a_key_has_its_burst_then_its_rate_while_another_key_of_the_tenant_is_served(
        free: Runtime, clock: ManualClock) -> None:
    flood, calm = make_caller(free, "flood"), make_caller(free, "calm")
    assert _admitted(free, flood, 100) == FREE.burst
    refusal = _refusal(free, flood)
    assert refusal["code"] == "RATE_LIMITED" and refusal["limit"] == "key"
    assert refusal["retryAfterSeconds"] == 1 and refusal["perMinute"] == 120 and refusal["burst"] == 60
    assert _admitted(free, calm, 10) == 10, "the other key of the tenant has a bucket of its own"
    clock.advance(0.5)
    assert _admitted(free, flood, 5) == 0, "held back until a second of its rate is there (one lease a second)"
    clock.advance(0.5)
    assert _admitted(free, flood, 5) == 2
    clock.advance(10)
    assert _admitted(free, flood, 100) == 20, "10 s at 2 a second"


def test_the_tenant_ceiling_holds_all_keys_together(free: Runtime) -> None:
    keys = [make_caller(free, f"k{i}") for i in range(5)]
    admitted = sum(_admitted(free, key, 1) for _ in range(45) for key in keys)
    assert admitted == 200, "the tenant's bucket holds 10 s of 1200 a minute"
    refusal = _refusal(free, keys[0])
    assert refusal["limit"] == "tenant" and refusal["perMinute"] == 1200
    other = make_caller(free, "elsewhere", tenant="other-tenant")
    assert _admitted(free, other, 10) == 10, "another tenant is not held by this one's ceiling"


def test_a_call_refused_by_the_tenant_spends_nothing_of_its_key(free: Runtime, clock: ManualClock) -> None:
    keys = [make_caller(free, f"k{i}") for i in range(4)]
    assert sum(_admitted(free, key, 50) for key in keys) == 200
    refused = keys[3]  # it had 50 of its 60 left when the tenant ran dry
    assert _admitted(free, refused, 30) == 0
    clock.advance(6)  # the tenant refills 120, the key 12 (up to its 60)
    assert _admitted(free, refused, 100) == 22, "its 10 left plus 12: refused calls spent none of them"


def test_the_owner_has_a_bucket_of_their_own_outside_the_fleet_ceiling(free: Runtime) -> None:
    keys = [make_caller(free, f"k{i}") for i in range(4)]
    assert sum(_admitted(free, key, 60) for key in keys) == 200
    assert _refusal(free, keys[3])["limit"] == "tenant"
    replies = [owner_api.dispatch(free, "default", owner_api.OwnerRequest("GET", "/counts")) for _ in range(70)]
    assert [r.status for r in replies].count(200) == FREE.burst
    over = replies[-1]
    assert over.status == 429 and over.body["error"]["limit"] == "owner"
    assert owner_api.headers(over) == {"Retry-After": "1"}


def test_a_flood_of_refused_calls_costs_the_store_nothing(free: Runtime) -> None:
    flood = make_caller(free, "flood")
    _admitted(free, flood, 61)
    leases = rate_limits.stats(free)["leases"]
    assert _admitted(free, flood, 500) == 0
    assert rate_limits.stats(free)["leases"] == leases, "refusals answered from the remembered refusal"


def test_a_busy_key_costs_a_lease_per_slice_not_per_call(runtime: Runtime, clock: ManualClock) -> None:
    """Self-hosted: bursts of 6000, so slices grow to 750 calls."""
    busy = make_caller(runtime, "busy")
    for _ in range(50):
        assert _admitted(runtime, busy, 100) == 100
        clock.advance(0.1)
    counted = rate_limits.stats(runtime)
    assert counted["admitted"] == 5000
    assert counted["leases"] <= 30, counted  # key and tenant slices: 1, 2, 4 ... up to 750 and 12500


@pytest.mark.parametrize("every", [5.0, 25.0])
def test_a_slow_key_serves_several_calls_a_lease(free: Runtime, clock: ManualClock, every: float) -> None:
    """A key calling every few seconds (or waiting 25 s at a time in a loop) keeps its small slice
    for `SLOW_LEASE_SECONDS`, so not every call pays a transaction (it did: its slice was stale)."""
    slow = make_caller(free, "slow")
    for _ in range(40):
        assert _admitted(free, slow, 1) == 1
        clock.advance(every)
    counted = rate_limits.stats(free)
    assert counted["admitted"] == 40
    assert counted["leases"] + counted["renewals"] <= 0.5 * 40, counted


def test_a_busy_slice_is_renewed_ahead_so_its_calls_never_stop_for_a_lease(runtime: Runtime,
                                                                           clock: ManualClock) -> None:
    """200 calls a second for 30 s: after the first slices, every lease is a renewal made while
    the slice still held tokens (no call found it spent or stale and had to wait for one)."""
    busy = make_caller(runtime, "busy")
    for _ in range(300):
        assert _admitted(runtime, busy, 20) == 20
        clock.advance(0.1)
    counted = rate_limits.stats(runtime)
    assert counted["admitted"] == 6000
    assert counted["leases"] <= 6, counted  # the first slices of the key and the tenant: 1, 2, 4
    assert 10 <= counted["renewals"] <= 40, counted  # about one per three quarters of a slice


def test_an_instance_forgets_idle_slices_but_not_a_budget(free: Runtime, clock: ManualClock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limits, "PRUNE_AT", 8)
    callers = [make_caller(free, f"k{i}") for i in range(12)]
    for caller in callers:
        assert _admitted(free, caller, 1) == 1
        clock.advance(LEASE)  # each slice goes stale before the next key comes
    assert len(rate_limits._budgets(free).slices) <= 8 + 1
    flood = callers[0]
    assert _admitted(free, flood, 100) == FREE.burst, "its bucket lives in the store: full again after a minute"


# ---------------------------------------------------------------------------- two instances, one store


@pytest.fixture
def pair(store_factory: Callable[[], Store], clock: ManualClock) -> Iterator[tuple[Runtime, Runtime]]:
    """Two runtimes on two connections to one store: two server instances."""
    stores = [store_factory(), store_factory()]
    a, b = (embedded_runtime(store, clock, strict=True) for store in stores)
    a.default_plan = b.default_plan = "free"
    yield a, b
    for store in stores:
        store.close()


def test_two_instances_share_a_keys_bucket(pair: tuple[Runtime, Runtime], clock: ManualClock) -> None:
    a, b = pair
    flood = make_caller(a, "flood")
    calm = make_caller(a, "calm")
    admitted = sum(_admitted(rt, flood, 1) for _ in range(100) for rt in (a, b))
    assert admitted == FREE.burst, "not a burst per instance"
    assert _refusal(b, flood)["limit"] == "key"
    assert _admitted(b, calm, 10) == 10
    clock.advance(10)
    assert sum(_admitted(rt, flood, 1) for _ in range(40) for rt in (a, b)) == 20


# ---------------------------------------------------------------------------- waiting calls


def _runner(rt: Runtime) -> Any:
    return make_runner(rt)


@contextlib.contextmanager
def _closing_signals(*runtimes: Runtime) -> Iterator[None]:
    try:
        yield
    finally:
        for rt in runtimes:
            assert isinstance(rt.signals, LocalSignals)
            rt.signals.close()  # a listener left open would outlive the emulator


def _waiting(rt: Runtime) -> int:
    assert isinstance(rt.signals, LocalSignals)
    return int(rt.signals.stats()["waitingCalls"])


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the time allowed")


async def test_a_waiting_call_counts_once_however_often_it_looks(free: Runtime) -> None:
    reader, sender = make_caller(free, "reader"), make_caller(free, "sender")
    _admitted(free, reader, FREE.burst - 1)  # one call left in the reader's bucket
    looks: list[str] = []
    free.store.observers.append(lambda q: looks.append(q.collection) if q.collection.endswith("/messages") else None)
    with _closing_signals(free):
        waiting = asyncio.create_task(run_tool(SPECS["get_messages"], free, _runner(free), reader,
                                               parse(GetMessages, {"wait_seconds": 20})))
        await _until(lambda: _waiting(free) == 1)
        for wake in range(1, 4):  # wake-ups that find nothing: the call looks again, uncounted
            seen = len(looks)
            assert isinstance(free.signals, LocalSignals)
            free.signals.notify("default", [inbox_key("reader")])
            await _until(lambda seen=seen: len(looks) > seen)
            assert not waiting.done(), f"wake-up {wake} ended the call: {waiting}"
        relay.send_message(free, sender, parse(SendMessage, {"target": "reader", "message": "at last"}))
        answer = await asyncio.wait_for(waiting, 10)
    assert [m["message"] for m in answer["messages"]] == ["at last"]
    assert _refusal(free, reader)["limit"] == "key", "the waiting call took the last token, once"


def _slots(rt: Runtime, caller: Caller) -> dict[str, float]:
    return dict((rt.store.get(f"tenants/default/rates/waiting-{caller.key_id}") or {}).get("slots") or {})


@pytest.mark.real_transactions  # four slots taken at once from two instances
@pytest.mark.real_set  # a slot given back is a key left out of the document set again
async def test_waiting_calls_of_a_key_are_capped_across_instances(pair: tuple[Runtime, Runtime]) -> None:
    a, b = pair
    worker, other = make_caller(a, "worker"), make_caller(a, "other")
    claim = SPECS["claim_next"]
    cmd = parse(ClaimNext, {"wait_seconds": 20})
    with _closing_signals(a, b):
        held = [asyncio.create_task(run_tool(claim, rt, _runner(rt), worker, cmd)) for rt in (a, b, a, b)]
        await _until(lambda: _waiting(a) == 2 and _waiting(b) == 2 and len(_slots(a, worker)) == 4)
        for rt in (a, b):
            with pytest.raises(RateLimited) as refused:
                await run_tool(claim, rt, _runner(rt), worker, cmd)
            assert refused.value.to_dict()["limit"] == "waiting" and refused.value.to_dict()["maxWaiting"] == 4
        assert _waiting(a) == 2, "the refused call did not wait"
        others = asyncio.create_task(run_tool(claim, b, _runner(b), other, cmd))
        await _until(lambda: _waiting(b) == 3)  # another key of the tenant still waits
        held[0].cancel()  # a client that hung up frees its slot
        with contextlib.suppress(asyncio.CancelledError):
            await held[0]
        await _until(lambda: len(_slots(a, worker)) == 3)
        again = asyncio.create_task(run_tool(claim, b, _runner(b), worker, cmd))
        await _until(lambda: _waiting(b) == 4 and len(_slots(a, worker)) == 4)
        for task in [*held[1:], others, again]:
            task.cancel()
        await asyncio.gather(*held[1:], others, again, return_exceptions=True)
    await _until(lambda: _slots(a, worker) == {})  # every slot given back, once kept WAIT_SLOT_KEPT_SECONDS


@pytest.mark.real_set  # a slot given back is a key left out of the document set again
def test_a_key_that_waits_again_takes_its_kept_slot_without_a_transaction(
        free: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limits, "WAIT_SLOT_KEPT_SECONDS", 1.0)
    worker = make_caller(free, "worker")
    first = rate_limits.WaitingSlot(free, worker, 20)
    first.take()
    assert set(_slots(free, worker)) == {first.id}
    clock.advance(20)
    first.release()  # its wait ended: kept for the next one
    again = rate_limits.WaitingSlot(free, worker, 20)
    again.take()
    assert again.id == first.id and set(_slots(free, worker)) == {first.id}
    assert rate_limits.stats(free)["waitSlots"] == 1 and rate_limits.stats(free)["waitSlotsKept"] == 1
    clock.advance(20)  # the stored deadline (20 s ago) would lapse during a third wait of 20 s
    again.release()
    third = rate_limits.WaitingSlot(free, worker, 20)
    third.take()
    assert third.id == first.id and _slots(free, worker) == {first.id: pytest.approx(clock.now().timestamp() + 20)}
    assert rate_limits.stats(free)["waitSlots"] == 2, "a transaction moved the slot's deadline"
    third.release()
    _eventually(lambda: _slots(free, worker) == {})  # no wait took it again: given back to the store


@pytest.mark.real_set  # a slot given back is a key left out of the document set again
def test_a_kept_slot_still_counts_against_the_cap_elsewhere(pair: tuple[Runtime, Runtime],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limits, "WAIT_SLOT_KEPT_SECONDS", 3.0)
    a, b = pair
    worker = make_caller(a, "worker")
    held = [rate_limits.WaitingSlot(a, worker, 20) for _ in range(FREE.max_waiting_per_key or 0)]
    for slot in held:
        slot.take()
    for slot in held:
        slot.release()
    with pytest.raises(RateLimited, match="already has 4 calls waiting"):
        rate_limits.WaitingSlot(b, worker, 20).take()
    _eventually(lambda: _slots(a, worker) == {})  # given back by a once no wait of its took them
    rate_limits.WaitingSlot(b, worker, 20).take()


def _eventually(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_a_crashed_instances_waiting_slot_lapses(free: Runtime, clock: ManualClock) -> None:
    worker = make_caller(free, "worker")
    for _ in range(FREE.max_waiting_per_key or 0):
        rate_limits.WaitingSlot(free, worker, 20).take()  # never given back: the process died
    blocked = embedded_runtime(free.store, clock)  # a fresh process holds none of them locally
    blocked.default_plan = "free"
    with pytest.raises(RateLimited, match="already has 4 calls waiting"):
        rate_limits.WaitingSlot(blocked, worker, 20).take()
    clock.advance(20 + rate_limits.WAIT_GRACE_SECONDS + 1)
    rate_limits.WaitingSlot(blocked, worker, 20).take()


def test_unlimited_plan_counts_nothing(runtime: Runtime) -> None:
    runtime.default_plan = "unlimited"
    caller = make_caller(runtime, "anyone")
    assert _admitted(runtime, caller, 1000) == 1000
    assert rate_limits.stats(runtime)["leases"] == 0
    assert runtime.store.query(Query("tenants/default/rates")) == []
