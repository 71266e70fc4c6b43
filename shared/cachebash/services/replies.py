"""The human answers from the phone: a QUERY or DIRECTIVE message, or a `question` task.

The answer is written where the asking agent already looks: a RESULT message in its inbox
(`get_messages`, threaded with the question) and, on the question itself, `answer` fields
readable by its id (`get_message` / `get_task`). The reference product wrote answers
somewhere its agents never read; this module exists so that cannot happen here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cachebash.domain.errors import Code, Conflict, InvalidInput, NotFound
from cachebash.domain.inputs import Id, Input, LongText
from cachebash.domain.messages import DEFAULT_MESSAGE_TTL, MessageType
from cachebash.domain.programs import HUMAN
from cachebash.domain.task_states import TaskEvent, TaskStatus
from cachebash.domain.tasks import PRIORITY_RANK, Priority, TaskType
from cachebash.services import activity, quota, usage
from cachebash.services.claims import move
from cachebash.services.events import MessagesDelivered, TaskFinished
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Runtime, new_id, tenant_path


class HumanReply(Input):
    replyTo: Id = Field(description="Id of the message (QUERY/DIRECTIVE to 'human') or question task answered.")
    message: LongText = Field(min_length=1, description="The human's answer.")


def _answer_message(rt: Runtime, tenant_id: str, to: str, text: str, reply_to: str, thread: str | None,
                    now: str) -> tuple[str, dict[str, Any]]:
    message_id = new_id()
    doc = {
        "messageId": message_id, "source": HUMAN, "target": to, "message_type": MessageType.RESULT.value,
        "message": text, "priority": Priority.HIGH.value, "priorityRank": PRIORITY_RANK[Priority.HIGH],
        "threadId": thread, "reply_to": reply_to, "createdAt": now,
        "expiresAt": rt.clock.iso(DEFAULT_MESSAGE_TTL), "delivered": False,
    }
    return tenant_path(tenant_id, "messages", message_id), doc


def reply(rt: Runtime, tenant_id: str, cmd: HumanReply) -> dict[str, Any]:
    now = rt.clock.iso()

    def answer(tx: Changes) -> dict[str, Any]:
        message, task = tx.get_all(question_paths(tenant_id, cmd.replyTo))
        return answer_in(tx, rt, tenant_id, cmd.replyTo, cmd.message, message, task, now)

    return activity.question_answered(tenant_id, cmd.replyTo, transact(rt, answer))


def question_paths(tenant_id: str, question_id: str) -> list[str]:
    """Where a question with this id may be: a message, or a task (ids never collide)."""
    return [tenant_path(tenant_id, "messages", question_id), tenant_path(tenant_id, "tasks", question_id)]


def answer_in(tx: Changes, rt: Runtime, tenant_id: str, reply_to: str, text: str, message: dict[str, Any] | None,
              task: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """Write the answer to the question read as `message` or `task` (all reads done); refuses,
    before writing anything, what cannot be answered. The one rule of answering, for both the
    owner API (`reply`) and the phone's answers written to Firestore (`app_answers`)."""
    message_path, task_path = question_paths(tenant_id, reply_to)
    if message is not None and message.get("target") == HUMAN:
        if message.get("answeredAt"):
            raise Conflict(f"message {reply_to} was already answered at {message['answeredAt']}",
                           code=Code.ALREADY_ANSWERED)
        path, doc = _answer_message(rt, tenant_id, message["source"], text, reply_to, message.get("threadId"), now)
        tx.update(message_path, {"answer": text, "answeredAt": now, "answerMessageId": doc["messageId"],
                                 "delivered": True, "deliveredAt": message.get("deliveredAt") or now})
        tx.create(path, doc)
        tx.emit(MessagesDelivered(tenant_id, targets=[message["source"]]))
        return {"success": True, "answered": "message", "to": message["source"], "messageId": doc["messageId"]}
    if task is not None and task.get("target") == HUMAN and task.get("type") == TaskType.QUESTION.value:
        path, doc = _answer_message(rt, tenant_id, task["source"], text, reply_to, task.get("threadId"), now)
        changes = _answered_task(task, text, doc["messageId"], now)
        quota.closing(tx, tenant_id, [(task, {**task, **changes})])
        tx.update(task_path, changes)
        usage.count(tx, rt, tenant_id, task, changes)
        tx.create(path, doc)
        tx.emit(MessagesDelivered(tenant_id, targets=[task["source"]]))
        tx.emit(TaskFinished(tenant_id, task_id=reply_to, status=TaskStatus.COMPLETED.value))
        return {"success": True, "answered": "question", "to": task["source"], "messageId": doc["messageId"]}
    if message is None and task is None:
        raise NotFound(f"no message or question {reply_to} in your account", field="replyTo")
    raise InvalidInput("replyTo: only messages and question tasks addressed to 'human' can be answered",
                       field="replyTo")


def _answered_task(task: dict[str, Any], text: str, message_id: str, now: str) -> dict[str, Any]:
    """Answering is claiming and completing in one step, both through the state table."""
    if task["status"] != TaskStatus.CREATED.value:
        raise Conflict(f"question {task['taskId']} is already {task['status']}", code=Code.ALREADY_ANSWERED)
    claimed = {**task, **move(task, TaskEvent.CLAIM, HUMAN, now)}
    changes = {**move(claimed, TaskEvent.SUCCESS, HUMAN, now), "claimedBy": HUMAN, "claimedAt": now,
               "completedBy": HUMAN, "completedAt": now, "completedStatus": "SUCCESS", "result": text,
               "answer": text, "answeredAt": now, "answerMessageId": message_id}
    return changes
