"""Pushes to the human: urgent tasks, directives and questions addressed to the human.

Services emit `PushRequested` with the change (kept in the outbox until delivered); this
handler (in-process embedded, the `interrupts` function in the cloud) turns it into a push
to the tenant owner's devices. A
per-tenant hourly cap keeps a runaway agent from flooding the phone, and a per-item log makes
a redelivered event send nothing twice.
"""

from __future__ import annotations

from typing import Any

from cachebash.domain.messages import MessageType
from cachebash.domain.programs import HUMAN
from cachebash.domain.tasks import Action, Priority, TaskType
from cachebash.ports.notifier import Push
from cachebash.ports.store import Query, Transaction
from cachebash.services.events import PushRequested
from cachebash.services.runtime import Runtime, tenant_path

PUSHES_PER_HOUR = 30
_PUSHED_MESSAGE_TYPES = (MessageType.DIRECTIVE.value, MessageType.QUERY.value)


def task_push(tenant_id: str, task: dict[str, Any]) -> PushRequested | None:
    """Which new tasks interrupt the human: interrupts, high priority, questions for the human."""
    question = task.get("type") == TaskType.QUESTION.value and task.get("target") == HUMAN
    urgent = task.get("action") == Action.INTERRUPT.value or task.get("priority") == Priority.HIGH.value
    if not (question or urgent):
        return None
    return PushRequested(tenant_id, kind="question" if question else "task", ref=task["taskId"])


def message_push(tenant_id: str, message: dict[str, Any]) -> PushRequested | None:
    if message.get("target") != HUMAN or message.get("message_type") not in _PUSHED_MESSAGE_TYPES:
        return None
    return PushRequested(tenant_id, kind="message", ref=message["messageId"])


def _compose(rt: Runtime, tenant_id: str, kind: str, ref: str) -> Push | None:
    if kind == "message":
        message = rt.store.get(tenant_path(tenant_id, "messages", ref))
        if message is None:
            return None
        title = f"{message['source']}: {'question' if message['message_type'] == 'QUERY' else 'directive'}"
        return Push(title, message["message"][:240], kind, ref, {"source": message["source"]})
    task = rt.store.get(tenant_path(tenant_id, "tasks", ref))
    if task is None:
        return None
    prefix = "Question" if kind == "question" else ("Interrupt" if task.get("action") == "interrupt" else "Urgent")
    return Push(f"{prefix} from {task['source']}", task["title"], kind, ref,
                {"source": task["source"], "target": task["target"]})


def deliver_push(rt: Runtime, event: PushRequested) -> str:
    """Returns what happened: sent, capped, duplicate, no-devices, missing."""
    kind, ref, tenant_id = event.kind, event.ref, event.tenant_id
    push = _compose(rt, tenant_id, kind, ref)
    if push is None:
        return "missing"
    now = rt.clock.iso()
    log_path = tenant_path(tenant_id, "push_log", f"{kind}-{ref}")
    counter_path = tenant_path(tenant_id, "push_usage", now[:13].replace(":", "-"))

    def reserve(tx: Transaction) -> str:
        logged, counter = tx.get_all([log_path, counter_path])
        if logged is not None:
            return "duplicate" if logged["status"] in ("sent", "capped") else "resend"
        used = int((counter or {}).get("count", 0))
        if used >= PUSHES_PER_HOUR:
            tx.set(log_path, {"status": "capped", "at": now})
            return "capped"
        tx.set(counter_path, {"count": used + 1, "hour": now[:13]})
        tx.set(log_path, {"status": "reserved", "at": now})
        return "send"

    decision = rt.store.run_transaction(reserve)
    if decision in ("duplicate", "capped"):
        return decision
    tokens = [d.data["token"] for d in rt.store.query(Query(tenant_path(tenant_id, "devices")))
              if d.data.get("token")]
    if rt.notifier is not None:  # also without devices: the embedded notifier logs every push
        rt.notifier.send(tokens, push)
    rt.store.run_transaction(lambda tx: tx.set(log_path, {"status": "sent", "at": now, "devices": len(tokens)}))
    return "sent" if tokens else "no-devices"
