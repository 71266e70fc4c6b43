"""The tier limits that are not counted in a transaction: sizes, and undelivered messages per inbox.

Sizes are the plan's `max_message_bytes` / `max_instruction_bytes`, in UTF-8 bytes (what the
store holds and bills), checked before anything is read. The inbox limit counts the target's
undelivered messages with one count query (on Firestore an aggregation: a read per 1,000
messages, not one per message) before the send's transaction, unless a recent count says the
inbox is far from full (`services.inbox_counts`). It is a flood guard, not billing: senders
racing at the very limit may each pass it, by at most as many as race, and other processes by
what `inbox_counts` says. An exact
count would need a counter written by every delivery (`get_messages`), expiry and fan-out,
putting a hot document on the path every agent polls; the quota and open-task counts, which
are exact, are in `services/quota`.
"""

from __future__ import annotations

from cachebash.domain.errors import LimitExceeded
from cachebash.ports.store import Query
from cachebash.services import inbox_counts
from cachebash.services.plans import plan_of
from cachebash.services.runtime import Runtime, tenant_path

#: Which plan field bounds which input field.
SIZE_LIMITS = {"instructions": "max_instruction_bytes", "message": "max_message_bytes"}


def check_size(rt: Runtime, tenant_id: str, field: str, text: str | None) -> None:
    if not text:
        return
    plan = plan_of(rt, tenant_id)
    limit_name = SIZE_LIMITS[field]
    limit: int | None = getattr(plan, limit_name)
    size = len(text.encode("utf-8"))
    if limit is not None and size > limit:
        raise LimitExceeded(f"{field}: {size} bytes (UTF-8) is more than the '{plan.name}' plan allows "
                            f"({limit} bytes); shorten it, or put the bulk in a file and send its path",
                            field=field, plan=plan.name, limit=limit_name, value=limit, size=size)


def undelivered_query(tenant_id: str, target: str) -> Query:
    """Served by the inbox's own index (target, delivered, priorityRank, createdAt)."""
    return (Query(tenant_path(tenant_id, "messages")).where("target", "==", target).where("delivered", "==", False)
            .order("priorityRank").order("createdAt"))


def full_inboxes(rt: Runtime, tenant_id: str, targets: list[str]) -> list[str]:
    """The targets whose inbox is full (`max_inbox_undelivered` undelivered messages), in order."""
    plan = plan_of(rt, tenant_id)
    cap = plan.max_inbox_undelivered
    if cap is None:
        return []
    now, full = rt.clock.now(), []
    for target in targets:
        if not inbox_counts.well_under(rt.inbox_counts, tenant_id, target, cap, now):
            undelivered = rt.store.count(undelivered_query(tenant_id, target).take(cap))
            inbox_counts.counted(rt.inbox_counts, tenant_id, target, undelivered, now)
            if undelivered >= cap:
                full.append(target)
                continue
        inbox_counts.admitted(rt.inbox_counts, tenant_id, target)
    return full


def check_inbox(rt: Runtime, tenant_id: str, target: str) -> None:
    if full_inboxes(rt, tenant_id, [target]):
        plan = plan_of(rt, tenant_id)
        cap = plan.max_inbox_undelivered
        raise LimitExceeded(f"target: '{target}' already has {cap} undelivered messages, all the '{plan.name}' plan "
                            "allows in one inbox; wait until it reads them (get_messages), or the owner raises the "
                            "plan", field="target", plan=plan.name, limit="max_inbox_undelivered", value=cap)
