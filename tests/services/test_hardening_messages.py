"""Issue #11, messages, pushes and housekeeping: expired messages never blind an inbox and are
swept away with every other dead document; only a message's recipient acknowledges it, and
`reply_to` reveals nothing; questions for the human have their own push budget, and what a
budget held back is summarised once it frees, never dropped, never pushed twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cachebash.adapters.log_notifier import LogNotifier
from cachebash.bootstrap import build_runtime, embedded_runtime
from cachebash.domain.errors import Forbidden, NotFound
from cachebash.domain.inputs import parse
from cachebash.domain.messages import DELIVERED_RETENTION_SECONDS, GetMessages, MessageRef, SendMessage
from cachebash.domain.tasks import CreateTask
from cachebash.interface import waiting
from cachebash.interface.runners import Runner
from cachebash.interface.tools.messages import TOOLS
from cachebash.ports.bus import Event
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query, Store
from cachebash.services import idempotency, inbox, interrupts, outbox, relay, replies, sweeper, tasks
from cachebash.services.events import PushRequested
from cachebash.services.handlers import HANDLERS
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import make_caller

T = "default"
HOUR = 3600.0


def send(rt: Runtime, who: Caller, target: str, text: str, **args: Any) -> dict[str, Any]:
    if isinstance(rt.clock, ManualClock):
        rt.clock.advance(0.001)
    return relay.send_message(rt, who, parse(SendMessage, {"target": target, "message": text, **args}))


def read(rt: Runtime, who: Caller, **args: Any) -> list[str]:
    return [m["message"] for m in relay.get_messages(rt, who, parse(GetMessages, args))["messages"]]


def stored(rt: Runtime, collection: str) -> list[dict[str, Any]]:
    return [d.data for d in rt.store.query(Query(tenant_path(T, collection)))]


@pytest.fixture
def team(runtime: Runtime) -> dict[str, Caller]:
    return {name: make_caller(runtime, name, groups=groups) for name, groups in
            [("architect", ("council",)), ("builder", ("builders",)), ("builder2", ("builders",)),
             ("outsider", ())]}


def bury_inbox(rt: Runtime, clock: ManualClock, sender: Caller, target: str, count: int) -> None:
    """`count` high-priority messages that expire undelivered, ahead of everything else in the inbox."""
    first = send(rt, sender, target, "stale 0", priority="high", ttl=10)
    template = rt.store.get(tenant_path(T, "messages", first["messageId"]))
    assert template is not None

    def write(tx: Any) -> None:
        for i in range(1, count):
            message_id = f"{first['messageId']}-{i:03}"
            tx.set(tenant_path(T, "messages", message_id),
                   {**template, "messageId": message_id, "message": f"stale {i}", "createdAt": clock.iso(i / 1000)})

    rt.store.run_transaction(write)
    clock.advance(11)


# --- 1. expired messages: never blinding, swept away ----------------------------------------------

@pytest.mark.real_cursors
def test_a_hundred_expired_messages_do_not_hide_the_inbox(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    bury_inbox(runtime, clock, team["architect"], "builder", 100)
    send(runtime, team["architect"], "builder", "still fresh")
    assert read(runtime, team["builder"], peek=True) == ["still fresh"]
    assert read(runtime, team["builder"], limit=1, peek=True) == ["still fresh"]
    assert read(runtime, team["builder"], message_type="STATUS") == ["still fresh"]
    assert read(runtime, team["builder"]) == []
    send(runtime, team["architect"], "builder", "and another")
    assert read(runtime, team["builder"], limit=1) == ["and another"]


@pytest.mark.real_cursors
@pytest.mark.anyio
async def test_waiting_for_messages_sees_past_expired_ones(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    bury_inbox(runtime, clock, team["architect"], "builder", 100)
    spec = next(tool for tool in TOOLS if tool.name == "get_messages")
    calls: list[int] = []

    async def run(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        result = call()
        if not isinstance(result, dict) or "count" not in result:
            return result  # the waiting slot given back (services.rate_limits), not a look
        calls.append(result["count"])
        if len(calls) == 1:  # the message arrives while the caller waits
            send(runtime, team["architect"], "builder", "arrived")
        return result

    result = await waiting.run_tool(spec, runtime, Runner.same(run), team["builder"], GetMessages(wait_seconds=20))
    assert calls == [0, 1] and [m["message"] for m in result["messages"]] == ["arrived"]


@pytest.mark.real_transactions
def test_racing_readers_of_one_inbox_get_each_message_once(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock, store_factory: Callable[[], Store]) -> None:
    """Two sessions of one program read its inbox at once, each on its own connection."""
    for i in range(8):
        send(runtime, team["architect"], "builder", f"m{i}")
    barrier = threading.Barrier(3)
    got: list[str] = []

    def reader() -> None:
        rt = embedded_runtime(store_factory(), clock)
        try:
            barrier.wait()
            while batch := read(rt, team["builder"], limit=3):
                got.extend(batch)
        finally:
            rt.store.close()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == [f"m{i}" for i in range(8)]


@pytest.mark.real_transactions
@pytest.mark.real_preconditions
def test_racing_readers_senders_and_other_inboxes_deliver_every_message_once(
        runtime: Runtime, clock: ManualClock, store_factory: Callable[[], Store]) -> None:
    """Four sessions drain one inbox while it is still sent to, and two other programs send to
    and read their own inboxes meanwhile, each thread on its own connection: every message is
    delivered exactly once (no reader gets one another got, none is lost), and the readers of one
    inbox never stop the others' sends and deliveries (they all finish, with nothing refused)."""
    names = ("lead", "busy", "other1", "other2")
    callers = {name: make_caller(runtime, name) for name in names}
    sent: dict[str, list[str]] = {name: [] for name in names}
    for i in range(12):
        send(runtime, callers["lead"], "busy", f"busy early {i}")
        sent["busy"].append(f"busy early {i}")
    got: dict[str, list[str]] = {name: [] for name in names}
    lock = threading.Lock()
    senders_done = threading.Event()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def on_own_connection(work: Callable[[Runtime], None]) -> Callable[[], None]:
        def run() -> None:
            rt = embedded_runtime(store_factory(), clock)
            try:
                barrier.wait()
                work(rt)
            except BaseException as exc:  # pragma: no cover - surfaced below
                errors.append(exc)
                senders_done.set()
            finally:
                rt.store.close()
        return run

    def reader(name: str) -> Callable[[Runtime], None]:
        def work(rt: Runtime) -> None:
            while True:
                finished = senders_done.is_set()
                batch = read(rt, callers[name], limit=3)
                with lock:
                    got[name].extend(batch)
                if not batch and finished:
                    return
        return work

    def sender(source: str, targets: tuple[str, ...], count: int) -> Callable[[Runtime], None]:
        def work(rt: Runtime) -> None:
            for i in range(count):
                for target in targets:
                    text = f"{target} from {source} {i}"
                    send(rt, callers[source], target, text)
                    with lock:
                        sent[target].append(text)
        return work

    workers = [*(reader("busy") for _ in range(4)), reader("other1"), reader("other2"),
               sender("lead", ("busy",), 12), sender("lead", ("other1", "other2"), 8)]
    threads = [threading.Thread(target=on_own_connection(work)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads[6:]:
        thread.join()
    senders_done.set()
    for thread in threads[:6]:
        thread.join()
    assert not errors
    for name in ("busy", "other1", "other2"):
        got[name].extend(read(runtime, callers[name], limit=50))  # nothing may be left behind
        assert sorted(got[name]) == sorted(sent[name]), name
    assert len(sent["busy"]) == 24 and len(sent["other1"]) == len(sent["other2"]) == 8


def test_the_sweeper_deletes_expired_messages_and_keeps_the_humans_questions(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    send(runtime, team["architect"], "builder", "brief", ttl=10)
    group = send(runtime, team["architect"], "builders", "brief to all", ttl=10)
    asked = send(runtime, team["architect"], "human", "Merge PR #12?", message_type="QUERY", ttl=10)
    lasting = send(runtime, team["architect"], "builder", "lasting")
    clock.advance(11)
    counts = sweeper.sweep(runtime)
    assert counts["messagesExpired"] == 4 and counts["multicastsForgotten"] == 1
    assert sorted(m["messageId"] for m in stored(runtime, "messages")) == sorted(
        [asked["messageId"], lasting["messageId"]])
    assert stored(runtime, "multicasts") == [] and group["multicastId"]
    human = relay.get_message(runtime, team["architect"], MessageRef(messageId=asked["messageId"]))["message"]
    assert human["delivered"] is True, "closed: out of every agent inbox, still in the person's"
    listed = inbox.inbox(runtime, T)
    assert listed["openCount"] == 1 and listed["items"][0]["id"] == asked["messageId"]
    replies.reply(runtime, T, replies.HumanReply(replyTo=asked["messageId"], message="Yes"))
    assert read(runtime, team["architect"]) == ["Yes"], "the person can still answer it"
    assert sweeper.sweep(runtime)["messagesExpired"] == 0


def test_delivered_messages_are_forgotten_after_the_retention_period(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    sent = send(runtime, team["architect"], "builder", "read me", ttl=5)
    assert read(runtime, team["builder"]) == ["read me"]
    clock.advance(DELIVERED_RETENTION_SECONDS - 1)
    assert sweeper.sweep(runtime)["messagesForgotten"] == 0
    assert relay.get_message(runtime, team["builder"], MessageRef(messageId=sent["messageId"]))
    clock.advance(1)
    assert sweeper.sweep(runtime)["messagesForgotten"] == 1
    with pytest.raises(NotFound):
        relay.get_message(runtime, team["builder"], MessageRef(messageId=sent["messageId"]))


def test_idempotency_records_and_push_bookkeeping_are_forgotten(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock) -> None:
    runtime.notifier = LogNotifier()
    task = tasks.create_task(runtime, team["architect"], parse(CreateTask, {
        "title": "urgent", "target": "builder", "priority": "high", "ttl": 60, "idempotency_key": "k1"}))
    clock.advance(61)
    assert sweeper.sweep(runtime)["tasksExpired"] == 1
    assert len(stored(runtime, idempotency.COLLECTION)) == 1, "an expired task's record lives out its 24 h"
    clock.advance(idempotency.RETENTION_SECONDS)
    counts = sweeper.sweep(runtime)
    assert counts["idempotencyPurged"] == 1 and counts["pushUsageForgotten"] == 0
    clock.advance(interrupts.USAGE_RETENTION_SECONDS)
    assert sweeper.sweep(runtime)["pushUsageForgotten"] == 1
    assert [e["status"] for e in stored(runtime, "push_log")] == ["sent"]
    clock.advance(interrupts.PUSH_LOG_RETENTION_SECONDS)
    assert sweeper.sweep(runtime)["pushLogForgotten"] == 1
    assert stored(runtime, "push_log") == [] and stored(runtime, "push_usage") == [] and task["taskId"]


def test_each_sweep_deletes_a_bounded_batch(
        runtime: Runtime, team: dict[str, Caller], clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweeper, "BATCH", 4)
    monkeypatch.setattr(sweeper, "BATCHES", 2)
    bury_inbox(runtime, clock, team["architect"], "builder", 11)
    assert [sweeper.sweep(runtime)["messagesExpired"] for _ in range(3)] == [8, 3, 0]
    assert stored(runtime, "messages") == []


# --- 2. acknowledging and replying ------------------------------------------------------------------

def test_only_the_recipient_acknowledges_and_reply_to_reveals_nothing(
        runtime: Runtime, team: dict[str, Caller]) -> None:
    directive = send(runtime, team["architect"], "builder", "fix it", message_type="DIRECTIVE")["messageId"]
    group = send(runtime, team["architect"], "builders", "all of you", message_type="DIRECTIVE")["multicastId"]
    other_tenant = make_caller(runtime, "builder", tenant="elsewhere")
    refused: list[tuple[Caller, str, str]] = [
        (team["outsider"], "ACK", directive),  # neither sent nor received it
        (team["outsider"], "RESULT", directive),  # a reply is no way to probe either
        (team["builder2"], "ACK", f"{group}-builder"),  # another member's copy of a group message
        (other_tenant, "ACK", directive),
        (team["outsider"], "ACK", "no-such-message"),
    ]
    texts = set()
    for who, kind, ref in refused:
        with pytest.raises(NotFound) as info:
            send(runtime, who, "architect", "got it", message_type=kind, reply_to=ref)
        assert info.value.field == "reply_to"
        texts.add(info.value.message.replace(ref, "<id>"))
    assert texts == {"reply_to: no message <id> sent by or to you; message ids come from send_message, get_messages "
                     "or get_thread"}, "unknown and foreign ids look the same"
    with pytest.raises(Forbidden):
        send(runtime, team["architect"], "builder", "I sent it", message_type="ACK", reply_to=directive)
    original = relay.get_message(runtime, team["architect"], MessageRef(messageId=directive))["message"]
    assert "acknowledgedBy" not in original, "no refused call changed anything"
    send(runtime, team["architect"], "builder", "also: run the tests", reply_to=directive)  # the sender may follow up
    send(runtime, team["builder"], "architect", "on it", message_type="ACK", reply_to=directive)
    send(runtime, team["builder2"], "architect", "on it", message_type="ACK", reply_to=f"{group}-builder2")
    assert relay.get_message(runtime, team["architect"], MessageRef(messageId=directive))["message"][
        "acknowledgedBy"] == "builder"
    copy = relay.get_message(runtime, team["builder2"], MessageRef(messageId=f"{group}-builder2"))["message"]
    assert copy["acknowledgedBy"] == "builder2"


# --- 3. push budgets ------------------------------------------------------------------------------

@pytest.fixture
def phone(runtime: Runtime) -> LogNotifier:
    notifier = LogNotifier()
    runtime.notifier = notifier
    runtime.store.run_transaction(lambda tx: tx.set(tenant_path(T, "devices", "pixel"), {"token": "tok-1"}))
    return notifier


def urgent(rt: Runtime, who: Caller, count: int) -> list[str]:
    return [tasks.create_task(rt, who, parse(CreateTask, {"title": f"urgent {i}", "target": "builder",
                                                          "priority": "high"}))["taskId"] for i in range(count)]


def titles(phone: LogNotifier) -> list[str]:
    return [push.title for _, push in phone.sent]


def test_questions_for_the_human_have_their_own_budget(
        runtime: Runtime, team: dict[str, Caller], phone: LogNotifier) -> None:
    urgent(runtime, team["architect"], interrupts.PUSHES_PER_HOUR + 2)
    assert len(phone.sent) == interrupts.PUSHES_PER_HOUR, "the urgent budget is used up"
    send(runtime, team["architect"], "human", "Merge PR #12?", message_type="QUERY")
    tasks.create_task(runtime, team["architect"], parse(CreateTask, {"title": "Which DB?", "type": "question",
                                                                     "target": "human"}))
    assert titles(phone)[-2:] == ["architect: question", "Question from architect"]
    send(runtime, team["architect"], "human", "Deploy now", message_type="DIRECTIVE")
    assert len(phone.sent) == interrupts.PUSHES_PER_HOUR + 2, "a directive is not a question: held back"


def test_held_back_pushes_are_summarised_once_the_budget_frees(
        runtime: Runtime, team: dict[str, Caller], phone: LogNotifier, clock: ManualClock) -> None:
    over = urgent(runtime, team["architect"], interrupts.PUSHES_PER_HOUR + 3)[-3:]
    assert sweeper.sweep(runtime)["pushSummaries"] == 0, "this hour's budget is still used up"
    clock.advance(HOUR)
    assert sweeper.sweep(runtime)["pushSummaries"] == 1
    summary = phone.sent[-1][1]
    assert (summary.title, summary.kind, summary.data["waiting"]) == ("3 more waiting", "summary", "3")
    assert "3 urgent tasks and directives were not pushed" in summary.body
    assert sweeper.sweep(runtime)["pushSummaries"] == 0, "once"
    for ref in over:  # redelivered events send nothing twice, held back or not
        assert interrupts.deliver_push(runtime, PushRequested(T, kind="task", ref=ref)) == "duplicate"
    assert interrupts.deliver_push(runtime, PushRequested(T, kind="summary", ref=summary.ref)) == "duplicate"
    assert len(phone.sent) == interrupts.PUSHES_PER_HOUR + 1
    urgent(runtime, team["architect"], interrupts.PUSHES_PER_HOUR - 1)
    assert len(phone.sent) == 2 * interrupts.PUSHES_PER_HOUR, "the summary took one push of the new hour"


def test_a_summary_waits_for_an_hour_with_room_and_counts_every_hour_held_back(
        runtime: Runtime, team: dict[str, Caller], phone: LogNotifier, clock: ManualClock) -> None:
    send(runtime, team["architect"], "human", "q", message_type="QUERY")  # a question: another budget
    for _ in range(interrupts.QUESTION_PUSHES_PER_HOUR):
        send(runtime, team["architect"], "human", "again?", message_type="QUERY")
    clock.advance(HOUR)
    for _ in range(interrupts.QUESTION_PUSHES_PER_HOUR + 1):
        send(runtime, team["architect"], "human", "still?", message_type="QUERY")
    assert sweeper.sweep(runtime)["pushSummaries"] == 0, "the second hour is full as well"
    clock.advance(HOUR)
    assert sweeper.sweep(runtime)["pushSummaries"] == 1
    summary = phone.sent[-1][1]
    assert (summary.title, summary.data) == ("2 more waiting", {"budget": "questions", "waiting": "2"})
    assert len(phone.sent) == 2 * interrupts.QUESTION_PUSHES_PER_HOUR + 1


class FailSummaryOnce:
    """The push handler fails the first time it delivers a summary."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, rt: Runtime, event: Event) -> Any:
        if isinstance(event, PushRequested) and event.kind == interrupts.SUMMARY and not self.failed:
            self.failed = True
            raise RuntimeError("injected: the summary's push failed once")
        return interrupts.deliver_push(rt, event)


def test_a_summary_whose_push_failed_is_redelivered_and_sent_once(
        runtime: Runtime, team: dict[str, Caller], phone: LogNotifier, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(HANDLERS, PushRequested, [FailSummaryOnce()])
    rt = build_runtime(store=runtime.store, clock=clock)  # serving mode: a failed handler leaves its event
    rt.notifier = phone
    urgent(rt, team["architect"], interrupts.PUSHES_PER_HOUR + 1)
    clock.advance(HOUR)
    assert sweeper.sweep(rt)["pushSummaries"] == 1
    assert titles(phone)[-1] != "1 more waiting", "the push failed"
    clock.advance(outbox.MAX_BACKOFF_SECONDS + 1)
    assert sweeper.sweep(rt)["eventsRedelivered"] == 1
    clock.advance(outbox.MAX_BACKOFF_SECONDS + 1)
    sweeper.sweep(rt)
    assert titles(phone).count("1 more waiting") == 1
