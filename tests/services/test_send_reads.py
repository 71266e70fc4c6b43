"""Issue 16 part 2: a send reads only what may have changed. A target found to be a program (and
no group) is not looked up again for `key_cache.TTL_SECONDS`, and an inbox far from full is not
counted again for `inbox_counts.FRESH_SECONDS`; neither ever lets a send go where it should not
in this process, and another process's changes are seen within those bounds (README, Limits).

The store is real (each backend); what it was asked is read from its query observers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import LimitExceeded
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, SendMessage
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query, Store
from cachebash.services import inbox_counts, key_cache, plans, relay
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller

T = "default"


@pytest.fixture
def asked(store: Store) -> Iterator[list[Query]]:
    """Every query and count the store is asked, in order."""
    seen: list[Query] = []
    store.observers.append(seen.append)
    yield seen
    store.observers.remove(seen.append)


def group_lookups(seen: list[Query], name: str) -> int:
    return sum(1 for q in seen if q.collection.endswith("/programs")
               and any(f.field == "groups" and f.value == name for f in q.filters))


def inbox_counts_of(seen: list[Query], target: str) -> int:
    return sum(1 for q in seen if q.collection.endswith("/messages")
               and any(f.field == "target" and f.value == target for f in q.filters)
               and any(f.field == "delivered" for f in q.filters))


def send(rt: Runtime, who: Caller, target: str) -> dict[str, Any]:
    return relay.send_message(rt, who, parse(SendMessage, {"target": target, "message": "hi"}))


def cap_inboxes(rt: Runtime, cap: int) -> None:
    plans.set_plan(rt, T, name="free", overrides={"max_inbox_undelivered": cap})


def test_a_conversation_looks_its_target_up_once(runtime: Runtime, asked: list[Query]) -> None:
    lead, b1 = make_caller(runtime, "lead"), make_caller(runtime, "b1")
    for _ in range(3):
        assert send(runtime, lead, "b1")["recipients"] == ["b1"]
    assert group_lookups(asked, "b1") == 1
    assert len(relay.get_messages(runtime, b1, parse(GetMessages, {"limit": 10}))["messages"]) == 3


def test_unknown_names_and_groups_are_looked_up_at_every_send(runtime: Runtime, asked: list[Query]) -> None:
    lead = make_caller(runtime, "lead")
    make_caller(runtime, "b1", groups=("builders",))
    for _ in range(2):
        assert "no program named 'later'" in send(runtime, lead, "later")["warning"]
        assert send(runtime, lead, "builders")["recipients"] == ["b1"]
    assert group_lookups(asked, "later") == 2
    make_caller(runtime, "later")
    assert "warning" not in send(runtime, lead, "later")  # found at once, not a TTL later


def test_a_program_that_becomes_a_group_here_gets_group_messages_at_once(runtime: Runtime) -> None:
    lead = make_caller(runtime, "lead")
    make_caller(runtime, "ops")
    assert "multicastId" not in send(runtime, lead, "ops")  # remembered as a program
    make_caller(runtime, "pager", groups=("ops",))
    sent = send(runtime, lead, "ops")
    assert sent["multicastId"] and sent["recipients"] == ["pager"]


def test_a_group_made_by_another_process_is_seen_within_the_ttl(runtime: Runtime, store: Store,
                                                                 clock: ManualClock) -> None:
    lead = make_caller(runtime, "lead")
    make_caller(runtime, "ops")
    send(runtime, lead, "ops")
    other = embedded_runtime(store, clock, strict=True)  # a second server on the same store
    make_caller(other, "pager", groups=("ops",))
    assert "multicastId" not in send(runtime, lead, "ops")  # the documented delay
    clock.advance(key_cache.TTL_SECONDS)
    assert send(runtime, lead, "ops")["recipients"] == ["pager"]


def test_an_inbox_far_from_full_is_counted_once_then_near_its_cap_at_every_send(
        runtime: Runtime, asked: list[Query]) -> None:
    cap = 12  # a count serves while it and the sends since stay under 12 // 4 = 3
    cap_inboxes(runtime, cap)
    lead = make_caller(runtime, "lead")
    make_caller(runtime, "b1")
    for _ in range(3):
        send(runtime, lead, "b1")
    assert inbox_counts_of(asked, "b1") == 1
    for _ in range(cap - 3):
        send(runtime, lead, "b1")
    assert inbox_counts_of(asked, "b1") == 1 + cap - 3
    with pytest.raises(LimitExceeded):  # exact at the cap: counted
        send(runtime, lead, "b1")


def test_an_inbox_filled_by_another_process_refuses_once_the_count_is_stale(
        runtime: Runtime, store: Store, clock: ManualClock) -> None:
    cap = 40
    cap_inboxes(runtime, cap)
    lead = make_caller(runtime, "lead")
    make_caller(runtime, "b1")
    send(runtime, lead, "b1")  # counted here: 0 undelivered
    other = embedded_runtime(store, clock, strict=True)
    for _ in range(cap - 1):
        send(other, lead, "b1")
    with pytest.raises(LimitExceeded):
        send(other, lead, "b1")
    send(runtime, lead, "b1")  # within the bound: 2 of a quarter of the cap, on a fresh count
    clock.advance(inbox_counts.FRESH_SECONDS)
    with pytest.raises(LimitExceeded):
        send(runtime, lead, "b1")
