"""No acknowledged effect is lost: every event kind whose handler fails once, whose publish
fails after the commit, or whose process is killed between commit and dispatch, is delivered
all the same, and has exactly one effect. On every backend (SQLite and both Firestore emulators)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from cachebash.adapters.firestore_store import FirestoreStore
from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.adapters.log_notifier import LogNotifier
from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.bootstrap import build_runtime
from cachebash.domain.inputs import parse
from cachebash.domain.messages import SendMessage
from cachebash.domain.sprints import CreateSprint
from cachebash.domain.tasks import ClaimTask, CompleteTask, CreateTask
from cachebash.ports.bus import Event
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query, Store
from cachebash.services import claims, outbox, relay, sprints, sweeper, tasks
from cachebash.services.events import MulticastSent, PushRequested, StoryChanged, TaskFinished
from cachebash.services.handlers import HANDLERS
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import lead_and_builders

T = "default"


def docs(rt: Runtime, collection: str, **equal: Any) -> list[dict[str, Any]]:
    query = Query(tenant_path(T, collection))
    for name, value in equal.items():
        query = query.where(name, "==", value)
    return [d.data for d in rt.store.query(query)]


def pending_entries(rt: Runtime) -> list[str]:
    rt.dispatcher.flush()
    return sorted(d["topic"] for d in docs(rt, outbox.COLLECTION))


def sweep_later(rt: Runtime, clock: ManualClock) -> dict[str, int]:
    """A sweep once the inline dispatch's grace period is over (and any back-off with it)."""
    clock.advance(outbox.MAX_BACKOFF_SECONDS + 1)
    return sweeper.sweep(rt)


class FailOnce:
    """A handler that fails on its first call, as when a dependency hiccups, then works."""

    def __init__(self, handler: Callable[[Runtime, Any], Any]) -> None:
        self.handler = handler
        self.calls = 0
        self.__name__ = getattr(handler, "__name__", "handler")

    def __call__(self, rt: Runtime, event: Event) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected: the handler failed once")
        return self.handler(rt, event)


# --- the effects, one scenario per durable event kind ----------------------------------------

team = lead_and_builders


def group_message(rt: Runtime, who: dict[str, Caller], **extra: Any) -> Callable[[], Any]:
    sent = relay.send_message(rt, who["lead"], parse(SendMessage, {"target": "builders", "message": "go", **extra}))
    return lambda: sorted(m["target"] for m in docs(rt, "messages", multicastId=sent["multicastId"]))


def urgent_task(rt: Runtime, who: dict[str, Caller], **extra: Any) -> Callable[[], Any]:
    phone = rt.notifier
    assert isinstance(phone, LogNotifier)
    tasks.create_task(rt, who["lead"], parse(CreateTask, {"title": "Prod down", "target": "b1", "priority": "high",
                                                          **extra}))
    return lambda: [p.title for _, p in phone.sent]


def finished_story(rt: Runtime, who: dict[str, Caller], **_: Any) -> Callable[[], Any]:
    """Wave 1's only story is completed; wave 2 must be handed out exactly once, announced once."""
    created = sprints.create_sprint(rt, who["lead"], parse(CreateSprint, {
        "projectName": "Two waves", "target": "builders",
        "stories": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "wave": 2}],
    }))
    (first,) = created["claimable"]
    claims.claim_task(rt, who["b1"], ClaimTask(taskId=first["taskId"]))
    claims.complete_task(rt, who["b1"], parse(CompleteTask, {"taskId": first["taskId"]}))

    def effect() -> Any:
        stories = {s["storyId"]: s for s in docs(rt, f"sprints/{created['sprintId']}/stories")}
        wave_two = [t["taskId"] for t in docs(rt, "tasks", storyId="b")]
        notices = len(docs(rt, "multicasts"))
        return stories["a"]["status"], wave_two, notices

    return effect


SCENARIOS: dict[str, tuple[type[Event], Callable[..., Callable[[], Any]], Any, Any]] = {
    # kind, scenario, effect before the event is delivered, effect after
    "fan-out": (MulticastSent, group_message, [], ["b1", "b2"]),
    "push": (PushRequested, urgent_task, [], ["Urgent from lead"]),
    "story sync": (TaskFinished, finished_story, ("queued", [], 1), ("complete", ["_:b:1"], 2)),
    "wave release": (StoryChanged, finished_story, ("complete", [], 1), ("complete", ["_:b:1"], 2)),
}


def normalised(effect: Any) -> Any:
    """Story task ids start with the sprint id; compare them without it."""
    if isinstance(effect, tuple):
        return effect[0], ["_:" + t.split(":", 1)[1] for t in effect[1]], effect[2]
    return effect


def test_every_durable_event_kind_has_a_scenario() -> None:
    durable = {kind for kind in HANDLERS if kind.topic != "sweeper.tick"}
    assert durable == {kind for kind, *_ in SCENARIOS.values()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_handler_that_fails_once_is_delivered_by_redelivery_exactly_once(
        runtime: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    kind, scenario, before, after = SCENARIOS[name]
    faulty = FailOnce(HANDLERS[kind][0])
    monkeypatch.setitem(HANDLERS, kind, [faulty])
    rt = build_runtime(store=runtime.store, clock=clock)  # serving mode: the call succeeds, the event waits
    effect = scenario(rt, team(rt))
    assert faulty.calls == 1 and normalised(effect()) == before, "the handler failed: no effect yet"
    assert pending_entries(rt) == [kind.topic], "kept in the outbox"
    assert sweeper.sweep(rt)["eventsRedelivered"] == 0, "not before the grace period"
    assert sweep_later(rt, clock)["eventsRedelivered"] == 1
    assert normalised(effect()) == after
    assert pending_entries(rt) == []
    for _ in range(2):
        sweep_later(rt, clock)
    assert normalised(effect()) == after, "exactly one effect, however often the sweeper runs"


class PublishFailsOnce(InProcessBus):
    """The bus fails to take the first durable event (a Pub/Sub ack timeout), after the commit."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: list[str] = []

    def publish(self, event: Event) -> None:
        if self.durable(event) and event.needs_delivery() and not self.failed:
            self.failed.append(event.topic)
            raise TimeoutError("injected: publish timed out after the commit")
        super().publish(event)


@pytest.mark.parametrize("name", ["fan-out", "push"])
def test_when_the_publish_fails_the_agents_idempotent_retry_delivers_the_event(
        runtime: Runtime, clock: ManualClock, name: str) -> None:
    kind, scenario, before, after = SCENARIOS[name]
    bus = PublishFailsOnce()
    rt = build_runtime(store=runtime.store, clock=clock, bus=bus)
    who = team(rt)
    effect = scenario(rt, who, idempotency_key="k-1")
    assert bus.failed == [kind.topic] and effect() == before
    effect_again = scenario(rt, who, idempotency_key="k-1")  # the agent retries, as the docs tell it to
    assert effect() == effect_again() == after, "the replay delivered the first call's event"
    assert pending_entries(rt) == []
    sweep_later(rt, clock)
    assert effect() == after, "once"


CHILD = """
import json, os, signal, sys
from cachebash.bootstrap import build_runtime
from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.domain.inputs import parse
from cachebash.domain.messages import SendMessage
from cachebash.services import relay
from cachebash.services.runtime import Caller

spec = json.loads(sys.argv[1])
if spec["sqlite"]:
    from cachebash.adapters.sqlite_store import SqliteStore
    store = SqliteStore(spec["sqlite"])
else:
    from cachebash.adapters.firestore_store import FirestoreStore
    store = FirestoreStore(project=spec["project"], emulator_host=spec["host"])

class Killed(InProcessBus):
    def publish(self, event):
        os.kill(os.getpid(), signal.SIGKILL)  # the change is committed; nothing was dispatched

rt = build_runtime(store=store, bus=Killed())
rt.bus.inner.subscribe("relay.multicast", lambda e: None)  # durable on this bus, like the real one
relay.send_message(rt, Caller(spec["tenant"], "lead", groups=()), parse(SendMessage, {
    "target": "builders", "message": "survives"}))
print("not killed")
"""


def _store_spec(store: Store) -> dict[str, Any]:
    if isinstance(store, SqliteStore):
        return {"sqlite": store.path}
    assert isinstance(store, FirestoreStore)
    return {"sqlite": None, "project": store.project, "host": store.emulator_host}


def test_a_process_killed_between_commit_and_dispatch_delivers_after_restart(
        runtime: Runtime) -> None:
    team(runtime)
    spec = {**_store_spec(runtime.store), "tenant": T}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    (record,) = docs(runtime, "multicasts")
    assert docs(runtime, "messages", multicastId=record["multicastId"]) == [], "killed before the fan-out"
    assert pending_entries(runtime) == [MulticastSent.topic], "but the event was committed with the change"
    # The restarted server, once the grace period after the child's commit is over.
    restarted = build_runtime(store=runtime.store, clock=ManualClock(_after_grace(record["createdAt"])))
    assert sweeper.sweep(restarted)["eventsRedelivered"] == 1
    copies = sorted(m["target"] for m in docs(runtime, "messages", multicastId=record["multicastId"]))
    assert copies == ["b1", "b2"]
    assert pending_entries(restarted) == []
    assert sweeper.sweep(restarted)["eventsRedelivered"] == 0


def _after_grace(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=outbox.GRACE_SECONDS + 1)


def test_a_replayed_call_emits_nothing_new(runtime: Runtime) -> None:
    who = team(runtime)
    first = relay.send_message(runtime, who["lead"], parse(SendMessage, {"target": "builders", "message": "x",
                                                                         "idempotency_key": "same"}))
    again = relay.send_message(runtime, who["lead"], parse(SendMessage, {"target": "builders", "message": "x",
                                                                         "idempotency_key": "same"}))
    assert first == again
    assert len(docs(runtime, "multicasts")) == 1 and len(docs(runtime, "messages")) == 2
    assert pending_entries(runtime) == []


def test_local_events_and_ordinary_task_finishes_write_no_outbox_entry(runtime: Runtime) -> None:
    """Wake-ups and a non-story task's finish have no durable consumer: the hot path writes nothing extra."""
    who = team(runtime)
    task = tasks.create_task(runtime, who["lead"], parse(CreateTask, {"title": "t", "target": "b1"}))
    claims.claim_task(runtime, who["b1"], ClaimTask(taskId=task["taskId"]))
    assert docs(runtime, outbox.COLLECTION) == []
    claims.complete_task(runtime, who["b1"], parse(CompleteTask, {"taskId": task["taskId"]}))
    relay.send_message(runtime, who["lead"], parse(SendMessage, {"target": "b1", "message": "direct"}))
    assert docs(runtime, outbox.COLLECTION) == [], "not even briefly"


class Deaf(InProcessBus):
    """A bus that loses every event, as the bus before the outbox could when a handler failed."""

    def durable(self, event: Event) -> bool:
        return False

    def publish(self, event: Event) -> None:
        return None


def test_a_story_whose_finish_event_was_lost_is_brought_in_line_and_the_sprint_completes(
        runtime: Runtime, clock: ManualClock) -> None:
    """The case the outbox came for: a story task completed, its `sync_story` never ran (and no
    outbox entry exists, as before this change). The sweeper finishes the story, unlocks wave 2,
    and once wave 2 is done too, completes the sprint."""
    who = team(runtime)
    deaf = build_runtime(store=runtime.store, clock=clock, bus=Deaf())
    created = sprints.create_sprint(runtime, who["lead"], parse(CreateSprint, {
        "projectName": "Lost", "target": "builders",
        "stories": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "wave": 2}],
    }))
    sprint_path = f"sprints/{created['sprintId']}/stories"
    for story in ("a", "b"):
        (task,) = docs(runtime, "tasks", storyId=story)
        claims.claim_task(deaf, who["b1"], ClaimTask(taskId=task["taskId"]))
        claims.complete_task(deaf, who["b1"], parse(CompleteTask, {"taskId": task["taskId"]}))
        assert {s["storyId"]: s["status"] for s in docs(runtime, sprint_path)}[story] != "complete", "event lost"
        assert sweeper.sweep(runtime)["sprintsRepaired"] == 1
        assert {s["storyId"]: s["status"] for s in docs(runtime, sprint_path)}[story] == "complete"
        assert sweeper.sweep(runtime)["sprintsRepaired"] == 0, "once"
    (sprint,) = docs(runtime, "sprints")
    assert sprint["status"] == "completed"
    assert [t["storyId"] for t in docs(runtime, "tasks", type="sprint-story")].count("b") == 1
