"""Messages: delivered once, in priority order; group copies one per member; threads."""

from __future__ import annotations

from typing import Any

import pytest

from cachebash.domain.errors import Forbidden, NotFound
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, GetThread, SendMessage
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query
from cachebash.services import directory, relay
from cachebash.services.events import MulticastSent
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller


def send(rt: Runtime, who: Caller, target: str, text: str, **args: Any) -> dict[str, Any]:
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(0.001)
    return relay.send_message(rt, who, parse(SendMessage, {"target": target, "message": text, **args}))


def inbox(rt: Runtime, who: Caller, **args: Any) -> list[str]:
    return [m["message"] for m in relay.get_messages(rt, who, parse(GetMessages, args))["messages"]]


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return {
        "architect": make_caller(runtime, "architect", groups=("council",)),
        "builder": make_caller(runtime, "builder", groups=("builders",)),
        "builder2": make_caller(runtime, "builder2", groups=("builders",)),
        "builder3": make_caller(runtime, "builder3", groups=("builders", "council")),
    }


def test_direct_message_is_delivered_exactly_once(runtime: Runtime, team: dict[str, Caller]) -> None:
    sent = send(runtime, team["architect"], "builder", "PR #42 ready", message_type="DIRECTIVE")
    assert sent["recipients"] == ["builder"]
    assert inbox(runtime, team["builder"], peek=True) == ["PR #42 ready"], "peek leaves it undelivered"
    messages = relay.get_messages(runtime, team["builder"], GetMessages())["messages"]
    assert [(m["message"], m["source"], m["message_type"]) for m in messages] == [
        ("PR #42 ready", "architect", "DIRECTIVE")]
    assert inbox(runtime, team["builder"]) == []
    assert inbox(runtime, team["builder2"]) == []


def test_priority_first_then_oldest(runtime: Runtime, team: dict[str, Caller]) -> None:
    for text, priority in [("n1", "normal"), ("l1", "low"), ("h1", "high"), ("n2", "normal")]:
        send(runtime, team["architect"], "builder", text, priority=priority)
    assert inbox(runtime, team["builder"], limit=3) == ["h1", "n1", "n2"]
    assert inbox(runtime, team["builder"]) == ["l1"]


def test_group_message_one_copy_per_member_not_sender(runtime: Runtime, team: dict[str, Caller]) -> None:
    sent = send(runtime, team["builder"], "builders", "branch is feature/x", message_type="DIRECTIVE")
    assert sent["recipients"] == ["builder2", "builder3"]
    assert inbox(runtime, team["builder"]) == []
    assert inbox(runtime, team["builder2"]) == ["branch is feature/x"]
    assert inbox(runtime, team["builder3"]) == ["branch is feature/x"]
    assert inbox(runtime, team["builder2"]) == []
    everyone = send(runtime, team["architect"], "all", "standup")
    assert everyone["recipients"] == ["builder", "builder2", "builder3"]


def test_fan_out_is_idempotent(runtime: Runtime, team: dict[str, Caller]) -> None:
    sent = send(runtime, team["architect"], "builders", "once")
    event = MulticastSent("default", multicast_id=sent["multicastId"])
    assert relay.fan_out(runtime, event) == 0, "the in-process bus already expanded it"
    runtime.bus.publish(event)
    copies = runtime.store.query(Query("tenants/default/messages").where("multicastId", "==", sent["multicastId"]))
    assert sorted(d.data["target"] for d in copies) == ["builder", "builder2", "builder3"]


def test_ack_marks_the_directive(runtime: Runtime, team: dict[str, Caller]) -> None:
    directive = send(runtime, team["architect"], "builder", "fix it", message_type="DIRECTIVE", threadId="t-1")
    send(runtime, team["builder"], "architect", "on it", message_type="ACK", reply_to=directive["messageId"],
         threadId="t-1")
    thread = relay.get_thread(runtime, team["architect"], GetThread(threadId="t-1"))
    assert [m["message"] for m in thread["messages"]] == ["fix it", "on it"]
    assert thread["messages"][0]["acknowledgedBy"] == "builder"
    with pytest.raises(NotFound) as info:
        send(runtime, team["builder"], "architect", "?", reply_to="nope")
    assert info.value.field == "reply_to"


@pytest.mark.real_cursors
def test_thread_reading_dedupes_group_copies_and_pages(runtime: Runtime, team: dict[str, Caller]) -> None:
    for i in range(5):
        send(runtime, team["architect"], "builders", f"m{i}", threadId="plan")
    pages: list[str] = []
    cursor = None
    while True:
        page = relay.get_thread(runtime, team["architect"], parse(GetThread, {"threadId": "plan", "limit": 2,
                                                                               "cursor": cursor}))
        pages += [m["message"] for m in page["messages"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert pages == ["m0", "m1", "m2", "m3", "m4"]
    outsider = make_caller(runtime, "outsider")
    assert relay.get_thread(runtime, outsider, GetThread(threadId="plan"))["messages"] == []


def test_expired_messages_are_not_delivered(runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    send(runtime, team["architect"], "builder", "brief", ttl=10)
    send(runtime, team["architect"], "builder", "lasting")
    clock.advance(11)
    assert inbox(runtime, team["builder"]) == ["lasting"]


def test_source_must_be_the_caller(runtime: Runtime, team: dict[str, Caller]) -> None:
    with pytest.raises(Forbidden):
        send(runtime, team["builder"], "architect", "hi", source="architect")


def test_list_groups(runtime: Runtime, team: dict[str, Caller]) -> None:
    make_caller(runtime, "scout", groups=("intelligence", "scouts"))
    groups = {g["name"]: g for g in directory.list_groups(runtime, team["builder"])["groups"]}
    assert groups["builders"]["members"] == ["builder", "builder2", "builder3"]
    assert groups["council"]["members"] == ["architect", "builder3"]
    assert groups["intelligence"]["members"] == ["scout"]
    assert groups["scouts"] == {"name": "scouts", "builtin": False, "members": ["scout"]}
    assert groups["all"]["members"] == ["architect", "builder", "builder2", "builder3", "scout"]
