"""Messages between programs: direct, or to a group as one copy per member.

A group message is recorded once with its recipient list fixed at send time, then
expanded by the `MulticastSent` handler into per-member copies whose ids derive from
the multicast id, so a redelivered event writes nothing new.

Nothing is kept for ever: the sweeper deletes messages whose ttl ran out undelivered (those to
the human are closed instead: they stay in the person's inbox), delivered messages
`DELIVERED_RETENTION_SECONDS` after delivery, and group records once their ttl ran out.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from cachebash.domain.errors import Forbidden, NotFound
from cachebash.domain.messages import (
    DEFAULT_MESSAGE_TTL,
    GetMessages,
    GetThread,
    MessageRef,
    MessageType,
    SendMessage,
    live,
)
from cachebash.domain.programs import HUMAN
from cachebash.domain.tasks import PRIORITY_RANK, Priority
from cachebash.ports.store import Doc, Query, Transaction
from cachebash.services import activity, cursors, interrupt_marks, interrupts, limits
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
    limits.check_size(rt, caller.tenant_id, "message", cmd.message)
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
        full = limits.full_inboxes(rt, caller.tenant_id, recipients)
        recipients = [m for m in recipients if m not in full]
        path = tenant_path(caller.tenant_id, "multicasts", message_id)
        doc = {**body, "multicastId": message_id, "group": target, "recipients": recipients}
        result: dict[str, Any] = {
            "success": True, "messageId": message_id, "multicastId": message_id, "target": target,
            "recipients": recipients,
        }
        if full:
            result["inboxFull"] = full
            result["warning"] = (f"not sent to {', '.join(full)}: their inboxes hold all the undelivered messages "
                                 "the plan allows (max_inbox_undelivered)")
        elif not recipients:
            result["warning"] = f"group '{target}' has no members besides you; nobody will receive this"
    else:
        limits.check_inbox(rt, caller.tenant_id, target)
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

    return activity.message_sent(caller, run_once(rt, caller, "send_message", cmd, write)[0], cmd)


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
    """Write the message; an ACK with reply_to also marks the message it answers acknowledged.

    `reply_to` must name a message the caller sent or received (an admin may name any); any
    other id, existing or not, gets the same NOT_FOUND, so it tells nobody what exists. Only
    the message's recipient may acknowledge it."""
    original_path = None
    if cmd.reply_to:
        original_path = tenant_path(caller.tenant_id, "messages", cmd.reply_to)
        original = tx.get(original_path)
        if original is None or not _visible(caller, original):
            raise NotFound(f"reply_to: no message {cmd.reply_to} sent by or to you", field="reply_to")
        if cmd.message_type is MessageType.ACK and original["target"] != caller.program_id:
            raise Forbidden(f"reply_to: only the recipient of message {cmd.reply_to} ({original['target']}) may "
                            "acknowledge it; reply with another message_type", field="reply_to")
    tx.create(path, doc)
    if original_path and cmd.message_type is MessageType.ACK:
        tx.update(original_path, {"acknowledgedAt": now, "acknowledgedBy": caller.program_id})


def _visible(caller: Caller, message: dict[str, Any]) -> bool:
    return caller.admin or caller.program_id in (message["source"], message["target"])


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


#: get_messages reads the inbox in pages (the first `2 * limit`, then `SCAN_PAGE`), at most
#: `SCAN_PAGES` of them, past messages whose ttl ran out, so those never hide the ones behind them
#: (the sweeper deletes them; until it has, they are skipped). At most 2 * 50 + 4 * 100 documents.
SCAN_PAGE = 100
SCAN_PAGES = 5


def _live_inbox(rt: Runtime, query: Query, limit: int, now: str) -> list[Doc]:
    """The first `limit` undelivered messages that have not expired, in inbox order."""
    found: list[Doc] = []
    page_size = limit * 2
    for _ in range(SCAN_PAGES):
        page = rt.store.query(query.take(page_size))
        found += [doc for doc in page if live(doc.data, now)]
        if len(found) >= limit or len(page) < page_size:
            break
        query, page_size = query.after(page[-1].cursor(query)), SCAN_PAGE
    return found[:limit]


def get_messages(rt: Runtime, caller: Caller, cmd: GetMessages) -> dict[str, Any]:
    """Find the inbox by a query outside any transaction, then mark what it found delivered in
    one write that fails if any of it changed since (`Store.update_unchanged`): no lock is taken
    on the inbox, so sends and other inboxes' deliveries never wait for this one. Only when a
    racing session got there first does a transaction read the messages again and deliver those
    still undelivered, so of racing sessions exactly one delivers each message."""
    now = rt.clock.iso()
    query = _inbox_query(caller, cmd)
    messages: list[dict[str, Any]] = []
    for _ in range(2):  # a second look only when a racing session took every message this one found
        found = _live_inbox(rt, query, cmd.limit, now)
        if cmd.peek or not found:
            messages = [doc.data for doc in found]
            break
        # The id tells this call's own write from a racer's, should a commit be retried after it applied.
        mark = {"delivered": True, "deliveredAt": now, "deliveredSession": cmd.sessionId, "deliveryId": new_id()}
        if rt.store.update_unchanged(found, mark):
            messages = [{**doc.data, **mark} for doc in found]
        else:
            messages = rt.store.run_transaction(partial(_deliver, paths=[doc.path for doc in found], now=now,
                                                        mark=mark))
        if messages:
            break
    shown = [public(m) for m in messages]
    result = {"success": True, "hasMessages": bool(shown), "count": len(shown), "messages": shown}
    if pending := interrupt_marks.for_inbox(rt, caller, fresh=cmd.wait_seconds > 0):
        result["interrupts"] = pending  # interrupt tasks waiting for you to claim them (see interrupt_marks)
    return result


def _deliver(tx: Transaction, *, paths: list[str], now: str, mark: dict[str, Any]) -> list[dict[str, Any]]:
    """Mark delivered those still undelivered (and return those this call's `mark` already
    delivered): read again in the transaction, so of racing sessions exactly one delivers each."""
    delivered: list[dict[str, Any]] = []
    for path, message in zip(paths, tx.get_all(paths), strict=True):
        if message is not None and message.get("deliveryId") == mark["deliveryId"]:
            delivered.append(message)
        elif message is not None and message.get("delivered") is False and live(message, now):
            tx.update(path, mark)
            delivered.append({**message, **mark})
    return delivered


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
    if message is None or not _visible(caller, message):
        raise NotFound(f"no message {cmd.messageId} sent by or to you", field="messageId")
    return {"success": True, "message": public(message)}


# --- housekeeping (the sweeper) ------------------------------------------------------------------

def expired_query(tenant_id: str, now: str) -> Query:
    """Undelivered messages whose ttl ran out, oldest expiry first."""
    return (Query(tenant_path(tenant_id, "messages")).where("delivered", "==", False)
            .where("expiresAt", "<=", now).order("expiresAt"))


def close_expired(rt: Runtime, tenant_id: str, limit: int) -> int:
    """Delete up to `limit` messages whose ttl ran out undelivered: nobody can read them any more.
    Those to the human are the person's inbox (still answerable there): they are closed instead,
    as delivered now, and forgotten with the delivered ones. Returns how many were closed."""
    now = rt.clock.iso()
    paths = [doc.path for doc in rt.store.query(expired_query(tenant_id, now).take(limit))]
    if not paths:
        return 0

    def close(tx: Transaction) -> int:
        due = [(p, d) for p, d in zip(paths, tx.get_all(paths), strict=True)
               if d is not None and d.get("delivered") is False and not live(d, now)]
        for path, message in due:
            if message.get("target") == HUMAN:
                tx.update(path, {"delivered": True, "deliveredAt": now})
            else:
                tx.delete(path)
        return len(due)

    return rt.store.run_transaction(close)


def forgettable_query(tenant_id: str, cutoff: str) -> Query:
    """Messages delivered at or before `cutoff` (the sweeper passes now - DELIVERED_RETENTION_SECONDS)."""
    return (Query(tenant_path(tenant_id, "messages")).where("delivered", "==", True)
            .where("deliveredAt", "<=", cutoff).order("deliveredAt"))


def forgettable(message: dict[str, Any], cutoff: str) -> bool:
    delivered_at = message.get("deliveredAt")
    return message.get("delivered") is True and isinstance(delivered_at, str) and delivered_at <= cutoff


def spent_multicasts_query(tenant_id: str, cutoff: str) -> Query:
    """Group records whose ttl ran out by `cutoff`: no copy they could still write would be delivered."""
    return Query(tenant_path(tenant_id, "multicasts")).where("expiresAt", "<=", cutoff).order("expiresAt")


def spent_multicast(record: dict[str, Any], cutoff: str) -> bool:
    expires = record.get("expiresAt")
    return isinstance(expires, str) and expires <= cutoff
