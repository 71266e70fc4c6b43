"""The human in the loop: pushes to the phone, answers from the phone, keys from the phone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cachebash.adapters.fcm_notifier import ANDROID_CHANNEL, build_messages
from cachebash.adapters.firebase_auth import FirebaseVerifier
from cachebash.adapters.log_notifier import LogNotifier
from cachebash.domain.errors import Conflict, NotFound
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, MessageRef, SendMessage
from cachebash.domain.programs import CreateKey
from cachebash.domain.tasks import CreateTask, TaskRef
from cachebash.interface import mobile_api
from cachebash.ports.notifier import Push
from cachebash.services import interrupts, keys, relay, replies, tasks
from cachebash.services.events import PushRequested
from cachebash.services.runtime import Caller, Runtime, tenant_path
from support.callers import make_caller
from support.id_tokens import PROJECT, id_token


@pytest.fixture
def phone(runtime: Runtime) -> LogNotifier:
    notifier = LogNotifier()
    runtime.notifier = notifier
    runtime.store.run_transaction(lambda tx: tx.set(tenant_path("default", "devices", "pixel"), {"token": "tok-1"}))
    return notifier


@pytest.fixture
def agent(runtime: Runtime) -> Caller:
    return make_caller(runtime, "architect")


def create(rt: Runtime, who: Caller, **args: Any) -> str:
    return str(tasks.create_task(rt, who, parse(CreateTask, {"title": "t", "target": "builder", **args}))["taskId"])


def test_urgent_tasks_and_human_questions_push(runtime: Runtime, agent: Caller, phone: LogNotifier) -> None:
    create(runtime, agent, title="routine")
    create(runtime, agent, title="stop the deploy", action="interrupt")
    create(runtime, agent, title="prod is down", priority="high")
    create(runtime, agent, title="Ship on Friday?", type="question", target="human")
    relay.send_message(runtime, agent, parse(SendMessage, {"target": "human", "message": "FYI"}))
    relay.send_message(runtime, agent, parse(SendMessage, {"target": "human", "message": "Approve PR #12?",
                                                          "message_type": "QUERY"}))
    assert [(p.kind, p.title, p.body) for _, p in phone.sent] == [
        ("task", "Interrupt from architect", "stop the deploy"),
        ("task", "Urgent from architect", "prod is down"),
        ("question", "Question from architect", "Ship on Friday?"),
        ("message", "architect: question", "Approve PR #12?"),
    ]
    assert all(tokens == ["tok-1"] for tokens, _ in phone.sent)


def test_redelivered_push_is_not_sent_twice_and_hourly_cap_holds(
        runtime: Runtime, agent: Caller, phone: LogNotifier) -> None:
    task_id = create(runtime, agent, priority="high")
    event = PushRequested("default", kind="task", ref=task_id)
    assert interrupts.deliver_push(runtime, event) == "duplicate"
    assert len(phone.sent) == 1
    for _ in range(interrupts.PUSHES_PER_HOUR - 1):
        create(runtime, agent, priority="high")
    assert len(phone.sent) == interrupts.PUSHES_PER_HOUR
    over = create(runtime, agent, priority="high")
    assert len(phone.sent) == interrupts.PUSHES_PER_HOUR
    assert interrupts.deliver_push(runtime, PushRequested("default", kind="task", ref=over)) == "duplicate"


def test_fcm_messages_are_built_exactly() -> None:
    push = Push("Question from architect", "Ship on Friday?", "question", "t1", {"source": "architect"})
    first, second = build_messages(["a", "b"], push)
    assert (first.fid, second.fid) == ("a", "b")
    assert first.notification.title == "Question from architect" and first.notification.body == "Ship on Friday?"
    assert first.data == {"kind": "question", "ref": "t1", "source": "architect"}
    assert first.android.priority == "high" and first.android.notification.channel_id == ANDROID_CHANNEL
    assert first.apns.headers == {"apns-priority": "10"} and first.apns.payload.aps.sound == "default"


def test_answer_to_a_query_reaches_the_asker(runtime: Runtime, agent: Caller) -> None:
    asked = relay.send_message(runtime, agent, parse(SendMessage, {"target": "human", "message": "Merge it?",
                                                                   "message_type": "QUERY", "threadId": "pr-12"}))
    answered = replies.reply(runtime, "default", replies.HumanReply(replyTo=asked["messageId"], message="Yes"))
    assert answered["to"] == "architect"
    inbox = relay.get_messages(runtime, agent, GetMessages())["messages"]
    assert [(m["source"], m["message_type"], m["message"], m["reply_to"], m["threadId"]) for m in inbox] == [
        ("human", "RESULT", "Yes", asked["messageId"], "pr-12")]
    question = relay.get_message(runtime, agent, MessageRef(messageId=asked["messageId"]))["message"]
    assert question["answer"] == "Yes" and question["answerMessageId"] == answered["messageId"]
    with pytest.raises(Conflict):
        replies.reply(runtime, "default", replies.HumanReply(replyTo=asked["messageId"], message="No"))
    with pytest.raises(NotFound):
        replies.reply(runtime, "someone-else", replies.HumanReply(replyTo=asked["messageId"], message="No"))


def test_answer_to_a_question_task_completes_it(runtime: Runtime, agent: Caller) -> None:
    question = create(runtime, agent, title="Which DB?", type="question", target="human")
    replies.reply(runtime, "default", replies.HumanReply(replyTo=question, message="Postgres"))
    task = tasks.get_task(runtime, agent, TaskRef(taskId=question))["task"]
    assert (task["status"], task["result"], task["completedBy"]) == ("completed", "Postgres", "human")
    assert [h["to"] for h in task["history"]] == ["created", "claimed", "completed"]
    assert relay.get_messages(runtime, agent, GetMessages())["messages"][0]["message"] == "Postgres"


def test_owner_key_cap(runtime: Runtime) -> None:
    for i in range(keys.MAX_ACTIVE_KEYS):
        keys.create_owner_key(runtime, "uid-1", CreateKey(programId=f"p{i}"))
    with pytest.raises(Conflict) as capped:
        keys.create_owner_key(runtime, "uid-1", CreateKey(programId="one-more"))
    assert capped.value.code == "KEY_LIMIT"
    first = keys.list_tenant_keys(runtime, "uid-1")["keys"][0]["keyId"]
    keys.revoke_tenant_key(runtime, "uid-1", first)
    assert keys.create_owner_key(runtime, "uid-1", CreateKey(programId="one-more"))["success"]


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> FirebaseVerifier:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return FirebaseVerifier()


def call(runtime: Runtime, verifier: FirebaseVerifier, endpoint: Any, method: str, path: str,
         token: str | None, body: dict[str, Any] | None = None) -> mobile_api.Reply:
    request = mobile_api.Request(method, path, f"Bearer {token}" if token else None,
                                 json.dumps(body or {}).encode())
    result: mobile_api.Reply = endpoint(runtime, verifier, request)
    return result


# (Expiry is not among the cases: in emulator mode firebase-admin does not check it, as the
# Auth emulator itself does not; signature and expiry are checked only against real Google keys.)
@pytest.mark.parametrize("token", [None, "garbage", id_token("u1", project="other-project")])
def test_mobile_endpoints_reject_bad_id_tokens(runtime: Runtime, verifier: FirebaseVerifier,
                                               token: str | None) -> None:
    reply = call(runtime, verifier, mobile_api.keys_endpoint, "POST", "/", token, {"programId": "builder"})
    assert reply.status == 401 and reply.body["error"]["code"] == "UNAUTHENTICATED"
    assert keys.list_tenant_keys(runtime, "u1")["count"] == 0


def test_mobile_endpoints_act_only_on_the_callers_tenant(runtime: Runtime, verifier: FirebaseVerifier) -> None:
    alice, bob = id_token("alice"), id_token("bob")
    made = call(runtime, verifier, mobile_api.keys_endpoint, "POST", "/", alice, {"programId": "builder"})
    assert made.status == 200 and made.body["tenantId"] == "alice" and made.body["apiKey"].startswith("cb_")
    assert call(runtime, verifier, mobile_api.keys_endpoint, "GET", "/", bob, None).body["count"] == 0
    stolen = call(runtime, verifier, mobile_api.keys_endpoint, "DELETE", f"/{made.body['keyId']}", bob)
    assert stolen.status == 404
    assert keys.authenticate(runtime, made.body["apiKey"]).tenant_id == "alice"
    revoked = call(runtime, verifier, mobile_api.keys_endpoint, "DELETE", f"/{made.body['keyId']}", alice)
    assert revoked.status == 200
    bad = call(runtime, verifier, mobile_api.keys_endpoint, "POST", "/", alice, {"programId": "bad name!"})
    assert bad.status == 400 and bad.body["error"]["field"] == "programId"

    builder = keys.authenticate(runtime, call(runtime, verifier, mobile_api.keys_endpoint, "POST", "/", alice,
                                              {"programId": "asker"}).body["apiKey"])
    asked = relay.send_message(runtime, builder, parse(SendMessage, {"target": "human", "message": "ok?",
                                                                     "message_type": "QUERY"}))
    wrong = call(runtime, verifier, mobile_api.replies_endpoint, "POST", "/", bob,
                 {"replyTo": asked["messageId"], "message": "no"})
    assert wrong.status == 404
    right = call(runtime, verifier, mobile_api.replies_endpoint, "POST", "/", alice,
                 {"replyTo": asked["messageId"], "message": "yes"})
    assert right.status == 200 and right.body["to"] == "asker"
