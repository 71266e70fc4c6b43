"""Each Cloud Function invoked through functions-framework with the real payload shapes."""

from __future__ import annotations

from typing import Any

import pytest

from cachebash import cloud
from cachebash.adapters.log_notifier import LogNotifier
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, SendMessage
from cachebash.domain.tasks import ClaimTask, CreateTask, TaskRef
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Query
from cachebash.services import claims, relay, sweeper, tasks
from cachebash.services import outbox as outbox_service
from cachebash.services.events import MulticastSent, PushRequested, SweepDue
from cachebash.services.handlers import HANDLERS
from cachebash.services.runtime import Runtime, tenant_path
from support.callers import make_caller
from support.gcp import Outbox, app, pubsub_event, raw_pubsub
from support.id_tokens import id_token


@pytest.fixture
def outbox(cloud_env: Runtime) -> Outbox:
    """Records what the runtime would publish; `outbox.original` is the in-process bus it replaced."""
    recorder = Outbox()
    recorder.original = cloud_env.bus
    cloud_env.bus = recorder
    return recorder


def copies(rt: Runtime, multicast_id: str) -> list[str]:
    docs = rt.store.query(Query(tenant_path("default", "messages")).where("multicastId", "==", multicast_id))
    return sorted(d.data["target"] for d in docs)


def test_fanout_expands_once_even_when_delivered_twice(cloud_env: Runtime, outbox: Outbox) -> None:
    sender = make_caller(cloud_env, "architect")
    for name in ("b1", "b2"):
        make_caller(cloud_env, name, groups=("builders",))
    sent = relay.send_message(cloud_env, sender, parse(SendMessage, {"target": "builders", "message": "go"}))
    assert copies(cloud_env, sent["multicastId"]) == [], "nothing expanded before the function runs"
    event = next(e for e in outbox.events if isinstance(e, MulticastSent))
    client = app("fanout", "cloudevent")
    payload = pubsub_event(event)
    assert client.post("/", **payload).status_code == 200
    assert copies(cloud_env, sent["multicastId"]) == ["b1", "b2"]
    assert client.post("/", **payload).status_code == 200, "Pub/Sub redelivers the same message"
    assert client.post("/", **pubsub_event(event)).status_code == 200, "or publishes it twice"
    assert copies(cloud_env, sent["multicastId"]) == ["b1", "b2"]


def test_poison_message_is_acknowledged_not_retried(cloud_env: Runtime) -> None:
    client = app("fanout", "cloudevent")
    assert client.post("/", **raw_pubsub(b"not json")).status_code == 200
    assert client.post("/", **raw_pubsub(b'{"topic": "relay.multicast"}')).status_code == 200


def test_failing_handler_is_retried_then_parked_in_the_outbox(
        cloud_env: Runtime, outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = make_caller(cloud_env, "architect")
    make_caller(cloud_env, "b1", groups=("builders",))
    sent = relay.send_message(cloud_env, sender, parse(SendMessage, {"target": "builders", "message": "go"}))
    event = next(e for e in outbox.events if isinstance(e, MulticastSent))

    def broken(rt: Runtime, event: MulticastSent) -> None:
        raise RuntimeError("the handler's dependency is down")

    monkeypatch.setitem(HANDLERS, MulticastSent, [broken])
    client = app("fanout", "cloudevent")
    assert client.post("/", **pubsub_event(event)).status_code == 500, "raised, so Pub/Sub retries"
    assert client.post("/", **pubsub_event(event, age_seconds=7200)).status_code == 200, "old: acknowledged"
    parked = cloud_env.store.query(Query(tenant_path("default", "outbox")))
    assert [(d.data["topic"], d.data["data"]) for d in parked] == [("relay.multicast", event.data)], "kept, not lost"
    assert copies(cloud_env, sent["multicastId"]) == []
    monkeypatch.undo()
    cloud_env.bus = outbox.original
    assert sweeper.sweep(cloud_env)["eventsRedelivered"] == 0, "parked with a back-off"
    clock = ManualClock(cloud_env.clock.now())
    clock.advance(outbox_service.backoff(1) + 1)
    cloud_env.clock = clock
    assert sweeper.sweep(cloud_env)["eventsRedelivered"] == 1
    assert copies(cloud_env, sent["multicastId"]) == ["b1"]


def test_interrupts_push_to_the_owners_devices(cloud_env: Runtime, outbox: Outbox) -> None:
    phone = cloud_env.notifier
    assert isinstance(phone, LogNotifier)
    cloud_env.store.run_transaction(lambda tx: tx.set(tenant_path("default", "devices", "d1"), {"token": "fid-1"}))
    agent = make_caller(cloud_env, "architect")
    tasks.create_task(cloud_env, agent, parse(CreateTask, {"title": "Prod down", "target": "ops",
                                                           "action": "interrupt"}))
    push = next(e for e in outbox.events if isinstance(e, PushRequested))
    client = app("interrupts", "cloudevent")
    payload = pubsub_event(push)
    assert client.post("/", **payload).status_code == 200
    assert client.post("/", **payload).status_code == 200
    assert [(tokens, p.title, p.body) for tokens, p in phone.sent] == [(["fid-1"], "Interrupt from architect",
                                                                        "Prod down")]


def test_sweeper_takes_back_expired_leases(cloud_env: Runtime) -> None:
    clock = ManualClock()
    rt = cloud.runtime(clock)  # the functions' runtime, on the test's clock: no sleeping for a lease
    lead = make_caller(rt, "lead")
    worker = make_caller(rt, "worker")
    task_id = tasks.create_task(rt, lead, parse(CreateTask, {"title": "x", "target": "worker"}))["taskId"]
    claims.claim_task(rt, worker, ClaimTask(taskId=task_id, lease_seconds=30))
    clock.advance(31)
    tick = pubsub_event(SweepDue("-"))
    assert app("sweeper", "cloudevent").post("/", **tick).status_code == 200
    task = tasks.get_task(rt, lead, TaskRef(taskId=task_id))["task"]
    assert (task["status"], task["attempt"]) == ("created", 2)
    rt.store.close()


def test_a_pubsub_function_refuses_events_it_does_not_consume(cloud_env: Runtime, outbox: Outbox) -> None:
    phone = cloud_env.notifier
    assert isinstance(phone, LogNotifier)
    agent = make_caller(cloud_env, "architect")
    tasks.create_task(cloud_env, agent, parse(CreateTask, {"title": "Prod down", "target": "ops",
                                                           "action": "interrupt"}))
    push = pubsub_event(next(e for e in outbox.events if isinstance(e, PushRequested)))
    assert app("fanout", "cloudevent").post("/", **push).status_code == 200, "mis-routed: acknowledged"
    assert phone.sent == [], "and not handled by a function that does not consume it"
    assert app("interrupts", "cloudevent").post("/", **push).status_code == 200
    assert len(phone.sent) == 1


def post(target: str, token: str | None, body: dict[str, Any], path: str = "/", method: str = "post") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return getattr(app(target), method)(path, json=body, headers=headers)


def test_keys_function_authenticates_with_firebase_id_tokens(cloud_env: Runtime) -> None:
    assert post("keys", None, {"programId": "builder"}).status_code == 401
    assert post("keys", "not-a-token", {"programId": "builder"}).status_code == 401
    created = post("keys", id_token("alice"), {"programId": "builder", "groups": ["builders"]})
    assert created.status_code == 200
    body = created.get_json()
    assert body["tenantId"] == "alice" and body["apiKey"].startswith("cb_")
    listed = app("keys").get("/", headers={"Authorization": f"Bearer {id_token('alice')}"}).get_json()
    assert [k["programId"] for k in listed["keys"]] == ["builder"]
    other = app("keys").get("/", headers={"Authorization": f"Bearer {id_token('bob')}"}).get_json()
    assert other["keys"] == []
    assert post("keys", id_token("bob"), {}, path=f"/{body['keyId']}", method="delete").status_code == 404
    assert post("keys", id_token("alice"), {}, path=f"/{body['keyId']}", method="delete").status_code == 200


def test_replies_function_answers_a_query(cloud_env: Runtime) -> None:
    made = post("keys", id_token("alice"), {"programId": "asker"}).get_json()
    from cachebash.services import keys

    asker = keys.authenticate(cloud_env, made["apiKey"])
    asked = relay.send_message(cloud_env, asker, parse(SendMessage, {"target": "human", "message": "Ship it?",
                                                                     "message_type": "QUERY"}))
    assert post("replies", id_token("bob"), {"replyTo": asked["messageId"], "message": "no"}).status_code == 404
    answered = post("replies", id_token("alice"), {"replyTo": asked["messageId"], "message": "Ship it"})
    assert answered.status_code == 200
    inbox = relay.get_messages(cloud_env, asker, GetMessages())["messages"]
    assert [(m["source"], m["message"]) for m in inbox] == [("human", "Ship it")]
