"""The rules let the phone write `answer`/`answeredAt` straight onto a question; the
`answered_*` triggers make such an answer reach the asking agent, exactly once."""

from __future__ import annotations

import uuid
from typing import Any

from google.events.cloud.firestore_v1 import Document, DocumentEventData

from cachebash.domain.inputs import parse
from cachebash.domain.messages import GetMessages, MessageRef, SendMessage
from cachebash.domain.tasks import CreateTask, TaskRef
from cachebash.services import relay, tasks
from cachebash.services.runtime import Runtime, tenant_path
from support.callers import make_caller
from support.gcp import app

PROJECT = "demo-cachebash"


def written(path: str) -> dict[str, Any]:
    name = f"projects/{PROJECT}/databases/(default)/documents/{path}"
    body = DocumentEventData(value=Document(name=name), old_value=Document(name=name))
    headers = {
        "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "ce-subject": f"documents/{path}", "ce-time": "2026-11-23T12:00:00Z", "Content-Type": "application/protobuf",
    }
    return {"headers": headers, "data": DocumentEventData.serialize(body)}


def app_writes_answer(rt: Runtime, path: str, text: str) -> None:
    """What the rules allow the phone: exactly these two fields, once."""
    rt.store.run_transaction(lambda tx: tx.update(path, {"answer": text, "answeredAt": "2026-11-23T12:00:00Z"}))


def test_answer_written_on_a_query_reaches_the_asker_once(cloud_env: Runtime) -> None:
    asker = make_caller(cloud_env, "architect")
    asked = relay.send_message(cloud_env, asker, parse(SendMessage, {"target": "human", "message": "Merge?",
                                                                     "message_type": "QUERY"}))
    path = tenant_path("default", "messages", asked["messageId"])
    trigger = app("answered_message", "cloudevent")
    assert trigger.post("/", **written(path)).status_code == 200, "the message's own creation: nothing to do"
    app_writes_answer(cloud_env, path, "Yes, merge")
    assert trigger.post("/", **written(path)).status_code == 200
    assert trigger.post("/", **written(path)).status_code == 200, "the trigger's own write fires it again"
    inbox = relay.get_messages(cloud_env, asker, GetMessages())["messages"]
    assert [(m["source"], m["message"], m["reply_to"]) for m in inbox] == [("human", "Yes, merge",
                                                                            asked["messageId"])]
    assert relay.get_message(cloud_env, asker, MessageRef(messageId=asked["messageId"]))["message"]["answer"]


def test_answer_written_on_a_question_task_completes_it(cloud_env: Runtime) -> None:
    asker = make_caller(cloud_env, "architect")
    task_id = tasks.create_task(cloud_env, asker, parse(CreateTask, {"title": "Which DB?", "type": "question",
                                                                     "target": "human"}))["taskId"]
    path = tenant_path("default", "tasks", task_id)
    app_writes_answer(cloud_env, path, "Postgres")
    trigger = app("answered_question", "cloudevent")
    assert trigger.post("/", **written(path)).status_code == 200
    assert trigger.post("/", **written(path)).status_code == 200
    task = tasks.get_task(cloud_env, asker, TaskRef(taskId=task_id))["task"]
    assert (task["status"], task["result"], task["answer"]) == ("completed", "Postgres", "Postgres")
    assert relay.get_messages(cloud_env, asker, GetMessages())["count"] == 1
