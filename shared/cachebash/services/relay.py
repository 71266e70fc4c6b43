"""Messages between programs: direct, or to a group as one copy per member.

A group message is recorded once with its recipient list fixed at send time, then
expanded by the `MulticastSent` handler into per-member copies whose ids derive from
the multicast id, so a redelivered event writes nothing new.
"""

from __future__ import annotations

from typing import Any

from cachebash.domain.errors import NotFound
from cachebash.domain.messages import (
    DEFAULT_MESSAGE_TTL,
    GetMessages,
    GetThread,
    MessageRef,
    MessageType,
    SendMessage,
)
from cachebash.domain.tasks import PRIORITY_RANK, Priority
from cachebash.ports.store import Doc, Query, Transaction
from cachebash.services import cursors, interrupts
from cachebash.services.directory import resolve_target
from cachebash.services.events import MessagesDelivered, MulticastSent
from cachebash.services.idempotency import run_once
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Caller, Runtime, new_id, tenant_path

_PUBLIC_FIELDS = (
    "messageId", "source", "target", "group", "multicastId", "message_type", "message", "priority",
    "threadId", "reply_to", "createdAt", "expiresAt", "delivered", "deliveredAt", "acknowledgedAt",
    "acknowledgedBy", "answer", "answeredAt", "answerMessageId",
)


def public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in _PUBLIC_FIELDS if message.get(k) is not None}


def send_message(rt: Runtime, caller: Caller, cmd: SendMessage) -> dict[str, Any]:
    caller.check_source(cmd.source)
    target, is_group, members = resolve_target(rt, caller, cmd.target)
    now = rt.clock.iso()
    message_id = new_id()
    body: dict[str, Any] = {
        "source": caller.program_id,
        "message_type": cmd.message_type.value,
        "message": cmd.message,
        "priority": cmd.priority.value,
        "priorityRank": PRIORITY_RANK[cmd.priority],
        "threadId": cmd.threadId,
        "reply_to": cmd.reply_to,
        "createdAt": now,
        "expiresAt": rt.clock.iso(cmd.ttl),
    }
    if is_group:
        recipients = [m for m in members if m != caller.program_id]
        path = tenant_path(caller.tenant_id, "multicasts", message_id)
        doc = {**body, "multicastId": message_id, "group": target, "recipients": recipients}
        result: dict[str, Any] = {
            "success": True, "messageId": message_id, "multicastId": message_id, "target": target,
            "recipients": recipients,
        }
        if not recipients:
            result["warning"] = f"group '{target}' has no members besides you; nobody will receive this"
    else:
        path = tenant_path(caller.tenant_id, "messages", message_id)
        doc = {**body, "messageId": message_id, "target": target, "delivered": False}
        result = {"success": True, "messageId": message_id, "target": target, "recipients": [target]}
        if not members:
            result["warning"] = f"no program named '{target}' exists yet; the message waits for it"

    def write(tx: Changes) -> dict[str, Any]:
        _write_with_ack(tx, caller, cmd, path, doc, now)
        if is_group:
            tx.emit(MulticastSent(caller.tenant_id, multicast_id=message_id))
        else:
            tx.emit(MessagesDelivered(caller.tenant_id, targets=[target]))
            if push := interrupts.message_push(caller.tenant_id, doc):
                tx.emit(push)
        return result

    return run_once(rt, caller, "send_message", cmd, write)[0]


def system_message(rt: Runtime, tenant_id: str, message_id: str, target: str, text: str, *,
                   message_type: MessageType = MessageType.RESULT,
                   thread: str | None = None) -> tuple[str, dict[str, Any]]:
    """A message from CacheBash itself (source 'cachebash'), for the caller to write in its own transaction."""
    now = rt.clock.iso()
    doc = {
        "messageId": message_id, "source": "cachebash", "target": target, "message_type": message_type.value,
        "message": text, "priority": "high", "priorityRank": PRIORITY_RANK[Priority.HIGH], "threadId": thread,
        "reply_to": None, "createdAt": now, "expiresAt": rt.clock.iso(DEFAULT_MESSAGE_TTL), "delivered": False,
    }
    return tenant_path(tenant_id, "messages", message_id), doc


def _write_with_ack(tx: Transaction, caller: Caller, cmd: SendMessage, path: str, doc: dict[str, Any],
                    now: str) -> None:
    """Write the message; an ACK with reply_to also marks the message it answers acknowledged."""
    original_path = None
    if cmd.reply_to:
        original_path = tenant_path(caller.tenant_id, "messages", cmd.reply_to)
        if tx.get(original_path) is None:
            raise NotFound(f"reply_to: no message {cmd.reply_to}", field="reply_to")
    tx.create(path, doc)
    if original_path and cmd.message_type is MessageType.ACK:
        tx.update(original_path, {"acknowledgedAt": now, "acknowledgedBy": caller.program_id})


def fan_out(rt: Runtime, event: MulticastSent) -> int:
    """Expand a multicast into one copy per recipient; returns how many copies were new."""
    multicast_id = event.multicast_id
    record = rt.store.get(tenant_path(event.tenant_id, "multicasts", multicast_id))
    if record is None:
        return 0
    copies = {
        tenant_path(event.tenant_id, "messages", f"{multicast_id}-{member}"): member
        for member in record["recipients"]
    }

    def write(tx: Changes) -> list[str]:
        paths = list(copies)
        existing = tx.get_all(paths)
        fresh = [path for path, doc in zip(paths, existing, strict=True) if doc is None]
        base = {k: v for k, v in record.items() if k != "recipients"}
        for path in fresh:
            copy_id = path.rpartition("/")[2]
            tx.create(path, {**base, "messageId": copy_id, "target": copies[path], "delivered": False})
        delivered = [copies[path] for path in fresh]
        if delivered:
            tx.emit(MessagesDelivered(event.tenant_id, targets=delivered))
        return delivered

    return len(transact(rt, write)) if copies else 0


def _inbox_query(caller: Caller, cmd: GetMessages) -> Query:
    query = (
        Query(tenant_path(caller.tenant_id, "messages"))
        .where("target", "==", caller.program_id)
        .where("delivered", "==", False)
    )
    if cmd.message_type is not None:
        query = query.where("message_type", "==", cmd.message_type.value)
    return query.order("priorityRank").order("createdAt")


def get_messages(rt: Runtime, caller: Caller, cmd: GetMessages) -> dict[str, Any]:
    now = rt.clock.iso()
    query = _inbox_query(caller, cmd).take(cmd.limit * 2)

    def deliver(tx: Transaction) -> list[dict[str, Any]]:
        docs = [d for d in tx.query(query) if (d.data.get("expiresAt") or "~") > now][: cmd.limit]
        if not cmd.peek:
            for doc in docs:
                tx.update(doc.path, {"delivered": True, "deliveredAt": now, "deliveredSession": cmd.sessionId})
        return [{**d.data, "delivered": not cmd.peek, "deliveredAt": None if cmd.peek else now} for d in docs]

    messages = rt.store.run_transaction(deliver)
    shown = [public(m) for m in messages]
    return {"success": True, "hasMessages": bool(shown), "count": len(shown), "messages": shown}


def get_thread(rt: Runtime, caller: Caller, cmd: GetThread) -> dict[str, Any]:
    """Read a whole conversation without changing delivery, one entry per message sent."""
    base = Query(tenant_path(caller.tenant_id, "messages")).where("threadId", "==", cmd.threadId).order("createdAt")
    after = cursors.decode(cmd.cursor, base)
    page = rt.store.query(base.after(after).take(cmd.limit * 4))
    seen: set[str] = set()
    shown: list[Doc] = []
    for doc in page:
        message = doc.data
        if not (caller.admin or caller.program_id in (message["source"], message["target"])):
            continue
        key = message.get("multicastId") or message["messageId"]
        if key in seen:
            continue
        seen.add(key)
        shown.append(doc)
        if len(shown) == cmd.limit:
            break
    resume: Doc | None = None
    if len(shown) == cmd.limit:
        # Resume after every copy of the last message shown, so no page repeats it.
        last_key = shown[-1].data.get("multicastId") or shown[-1].id
        resume = [d for d in page if last_key in (d.data.get("multicastId"), d.id)][-1]
    elif len(page) == cmd.limit * 4:
        resume = page[-1]
    next_cursor = cursors.encode(resume, base) if resume else None
    messages = [public(d.data) for d in shown]
    return {"success": True, "threadId": cmd.threadId, "count": len(messages), "messages": messages,
            "nextCursor": next_cursor}


def get_message(rt: Runtime, caller: Caller, cmd: MessageRef) -> dict[str, Any]:
    """Read one message you sent or received, e.g. to see whether the human answered it."""
    message = rt.store.get(tenant_path(caller.tenant_id, "messages", cmd.messageId))
    if message is None or not (caller.admin or caller.program_id in (message["source"], message["target"])):
        raise NotFound(f"no message {cmd.messageId} sent by or to you", field="messageId")
    return {"success": True, "message": public(message)}
