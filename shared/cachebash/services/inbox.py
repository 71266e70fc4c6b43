"""What agents asked the person: every message to `human` and every question task for it,
newest first, with the open ones (a QUERY or DIRECTIVE not yet answered, a question not yet
answered) marked and counted. Answers go through `replies.reply`, the one path that reaches
the asker, so the console and the phone cannot diverge.
"""

from __future__ import annotations

from typing import Any

from cachebash.domain.messages import MessageType
from cachebash.domain.programs import HUMAN
from cachebash.domain.task_states import TaskStatus
from cachebash.domain.tasks import TaskType
from cachebash.ports.store import Query
from cachebash.services.runtime import Runtime, tenant_path

INBOX_LIMIT = 100
THREAD_LIMIT = 20
_ANSWERABLE = (MessageType.QUERY.value, MessageType.DIRECTIVE.value)


def messages_query(tenant_id: str) -> Query:
    return (Query(tenant_path(tenant_id, "messages")).where("target", "==", HUMAN)
            .order("createdAt", descending=True).take(INBOX_LIMIT))


def questions_query(tenant_id: str) -> Query:
    return (Query(tenant_path(tenant_id, "tasks")).where("target", "==", HUMAN)
            .where("type", "==", TaskType.QUESTION.value).order("createdAt", descending=True).take(INBOX_LIMIT))


def _message_item(message: dict[str, Any]) -> dict[str, Any]:
    answerable = message.get("message_type") in _ANSWERABLE
    return {
        "kind": "message", "id": message["messageId"], "from": message["source"],
        "messageType": message.get("message_type"), "title": None, "text": message.get("message", ""),
        "createdAt": message["createdAt"], "threadId": message.get("threadId"), "taskId": None,
        "priority": message.get("priority", "normal"), "open": answerable and not message.get("answeredAt"),
        "answerable": answerable, "answer": message.get("answer"), "answeredAt": message.get("answeredAt"),
    }


def _question_item(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "question", "id": task["taskId"], "from": task["source"], "messageType": None,
        "title": task.get("title"), "text": task.get("instructions") or task.get("title", ""),
        "createdAt": task["createdAt"], "threadId": task.get("threadId"), "taskId": task["taskId"],
        "priority": task.get("priority", "normal"), "open": task["status"] == TaskStatus.CREATED.value,
        "answerable": task["status"] == TaskStatus.CREATED.value,
        "answer": task.get("answer"), "answeredAt": task.get("answeredAt"), "status": task["status"],
    }


def items(rt: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    found = [_message_item(d.data) for d in rt.store.query(messages_query(tenant_id))]
    found += [_question_item(d.data) for d in rt.store.query(questions_query(tenant_id))]
    return sorted(found, key=lambda item: (item["createdAt"], item["id"]), reverse=True)


def _context(rt: Runtime, tenant_id: str, item: dict[str, Any]) -> None:
    """The thread before an open item, and the task a message's thread names, if it is one."""
    thread = item.get("threadId")
    item["thread"] = []
    if not thread:
        return
    query = Query(tenant_path(tenant_id, "messages")).where("threadId", "==", thread).order("createdAt")
    earlier = [d.data for d in rt.store.query(query.take(THREAD_LIMIT)) if d.id != item["id"]]
    item["thread"] = [{"from": m["source"], "to": m.get("target"), "text": m.get("message", ""),
                       "createdAt": m["createdAt"], "messageType": m.get("message_type")} for m in earlier]
    if item["taskId"] is None and rt.store.get(tenant_path(tenant_id, "tasks", thread)) is not None:
        item["taskId"] = thread


def inbox(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    listed = items(rt, tenant_id)
    for item in listed:
        if item["open"]:
            _context(rt, tenant_id, item)
        else:
            item["thread"] = []
    return {"success": True, "openCount": sum(1 for i in listed if i["open"]), "items": listed}


def open_count(rt: Runtime, tenant_id: str) -> dict[str, Any]:
    return {"success": True, "openQuestions": sum(1 for i in items(rt, tenant_id) if i["open"])}
