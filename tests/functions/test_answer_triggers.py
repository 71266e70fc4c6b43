"""The rules let the phone create one answer per open question in `tenants/{t}/answers/{id}`;
the `answered` trigger (on creation only) applies it to the question, exactly once, and the
sweeper applies any answer whose trigger never ran."""

from __future__ import annotations

import uuid
from typing import Any

from google.events.cloud.firestore_v1 import Document, DocumentEventData

from cachebash import deploy
from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, MessageRef, SendMessage
from cachebash.domain.tasks import CreateTask, TaskRef
from cachebash.services import relay, replies, sweeper, tasks
from cachebash.services.app_answers import answer_path
from cachebash.services.runtime import Runtime, tenant_path
from support.callers import make_caller
from support.gcp import app

PROJECT = "demo-cachebash"
CREATED = "google.cloud.firestore.document.v1.created"


def created(path: str) -> dict[str, Any]:
    """`google.cloud.firestore.document.v1.created` as Eventarc delivers it: binary mode, protobuf, no old value."""
    name = f"projects/{PROJECT}/databases/(default)/documents/{path}"
    headers = {
        "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": CREATED,
        "ce-source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "ce-subject": f"documents/{path}", "ce-time": "2026-11-23T12:00:00Z", "Content-Type": "application/protobuf",
    }
    return {"headers": headers, "data": DocumentEventData.serialize(DocumentEventData(value=Document(name=name)))}


def app_answers(rt: Runtime, question_id: str, text: str) -> str:
    """What the rules allow the phone: one new document, holding exactly these two fields."""
    path = answer_path("default", question_id)
    rt.store.run_transaction(lambda tx: tx.create(path, {"answer": text, "answeredAt": "2026-11-23T12:00:00Z"}))
    return path


def ask(rt: Runtime) -> str:
    asker = make_caller(rt, "architect")
    return str(relay.send_message(rt, asker, parse(SendMessage, {"target": "human", "message": "Merge?",
                                                                 "message_type": "QUERY"}))["messageId"])


def test_the_trigger_fires_on_created_answers_only() -> None:
    trigger = deploy.FIRESTORE_FUNCTIONS["answered"]
    assert (trigger.event_type, trigger.pattern) == (CREATED, "tenants/{tenant}/answers/{question}")
    assert trigger.matches("tenants/t1/answers/q1", created=True)
    assert not trigger.matches("tenants/t1/answers/q1", created=False), "its own delete fires nothing"
    assert not trigger.matches("tenants/t1/tasks/q1", created=True)


def test_answer_to_a_query_reaches_the_asker_once(cloud_env: Runtime) -> None:
    asker = make_caller(cloud_env, "architect")
    asked = ask(cloud_env)
    path = app_answers(cloud_env, asked, "Yes, merge")
    trigger = app("answered", "cloudevent")
    assert trigger.post("/", **created(path)).status_code == 200
    assert cloud_env.store.get(path) is None, "applied and gone"
    assert trigger.post("/", **created(path)).status_code == 200, "a redelivery: nothing left to apply"
    inbox = relay.get_messages(cloud_env, asker, GetMessages())["messages"]
    assert [(m["source"], m["message"], m["reply_to"]) for m in inbox] == [("human", "Yes, merge", asked)]
    question = relay.get_message(cloud_env, asker, MessageRef(messageId=asked))["message"]
    assert (question["answer"], question["answerMessageId"]) == ("Yes, merge", inbox[0]["messageId"])


def test_answer_to_a_question_task_completes_it(cloud_env: Runtime) -> None:
    asker = make_caller(cloud_env, "architect")
    task_id = tasks.create_task(cloud_env, asker, parse(CreateTask, {"title": "Which DB?", "type": "question",
                                                                     "target": "human"}))["taskId"]
    path = app_answers(cloud_env, task_id, "Postgres")
    trigger = app("answered", "cloudevent")
    assert trigger.post("/", **created(path)).status_code == 200
    assert trigger.post("/", **created(path)).status_code == 200
    task = tasks.get_task(cloud_env, asker, TaskRef(taskId=task_id))["task"]
    assert (task["status"], task["result"], task["answer"]) == ("completed", "Postgres", "Postgres")
    assert relay.get_messages(cloud_env, asker, GetMessages())["count"] == 1


def test_the_sweeper_applies_an_answer_whose_trigger_never_ran(cloud_env: Runtime) -> None:
    asker = make_caller(cloud_env, "architect")
    asked = ask(cloud_env)
    path = app_answers(cloud_env, asked, "Later")
    assert sweeper.sweep(cloud_env)["answersApplied"] == 1
    assert sweeper.sweep(cloud_env)["answersApplied"] == 0, "once"
    assert cloud_env.store.get(path) is None
    assert [m["message"] for m in relay.get_messages(cloud_env, asker, GetMessages())["messages"]] == ["Later"]
    assert app("answered", "cloudevent").post("/", **created(path)).status_code == 200, "the trigger, late"
    assert relay.get_messages(cloud_env, asker, GetMessages())["count"] == 0


def test_an_answer_that_lost_the_race_is_dropped_and_the_question_keeps_the_winner(cloud_env: Runtime) -> None:
    asker = make_caller(cloud_env, "architect")
    asked = ask(cloud_env)
    path = app_answers(cloud_env, asked, "From the phone")
    replies.reply(cloud_env, "default", replies.HumanReply(replyTo=asked, message="From the console"))
    assert app("answered", "cloudevent").post("/", **created(path)).status_code == 200
    assert cloud_env.store.get(path) is None, "dropped, so the sweeper does not try it for ever"
    assert [m["message"] for m in relay.get_messages(cloud_env, asker, GetMessages())["messages"]] == [
        "From the console"]
    assert relay.get_message(cloud_env, asker, MessageRef(messageId=asked))["message"]["answer"] == "From the console"


def test_an_answer_to_nothing_and_other_documents_are_acknowledged(cloud_env: Runtime) -> None:
    trigger = app("answered", "cloudevent")
    nothing = app_answers(cloud_env, "no-such-question", "hello?")
    assert trigger.post("/", **created(nothing)).status_code == 200
    assert cloud_env.store.get(nothing) is None
    assert trigger.post("/", **created(tenant_path("default", "tasks", "abc"))).status_code == 200
    garbage = created(nothing)
    garbage["data"] = b"\xff\x00not protobuf"
    assert trigger.post("/", **garbage).status_code == 200
