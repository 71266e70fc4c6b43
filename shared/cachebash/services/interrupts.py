"""Pushes to the human: urgent tasks, directives and questions addressed to the human.

Services emit `PushRequested` with the change (kept in the outbox until delivered); this
handler (in-process embedded, the `interrupts` function in the cloud) turns it into a push
to the tenant owner's devices. A per-tenant hourly budget keeps a runaway agent from flooding
the phone; questions for the human have a budget of their own, so urgent work between agents
cannot use up the pushes a question needs. A push over budget is not dropped: it is counted,
and once the budget frees (the next hour) the sweeper sends one "N more waiting" push for
everything held back. A per-item log makes a redelivered event send nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from cachebash.domain.messages import MessageType
from cachebash.domain.programs import HUMAN
from cachebash.domain.tasks import Action, Priority, TaskType
from cachebash.ports.notifier import Push
from cachebash.ports.store import Query, Transaction
from cachebash.services.events import PushRequested
from cachebash.services.outbox import Changes, transact
from cachebash.services.runtime import Runtime, tenant_path

#: Urgent tasks, interrupts and directives to the human, per tenant and hour.
PUSHES_PER_HOUR = 30
#: Questions for the human (question tasks, QUERY messages), per tenant and hour, counted apart.
QUESTION_PUSHES_PER_HOUR = 30
#: The push log (one entry per item pushed, held back or summarised) is kept this long.
PUSH_LOG_RETENTION_SECONDS = 30 * 24 * 3600
#: Hourly counters are kept this long once summarised (or when nothing was held back).
USAGE_RETENTION_SECONDS = 2 * 24 * 3600
SUMMARY = "summary"  # the push kind of an "N more waiting" push; its ref names the summary
_PUSHED_MESSAGE_TYPES = (MessageType.DIRECTIVE.value, MessageType.QUERY.value)
_USAGE, _LOG = "push_usage", "push_log"
_PENDING_LIMIT = 100


@dataclass(frozen=True)
class Budget:
    name: str
    per_hour: int
    noun: str  # what the summary says was held back


URGENT = Budget("urgent", PUSHES_PER_HOUR, "urgent tasks and directives")
QUESTIONS = Budget("questions", QUESTION_PUSHES_PER_HOUR, "questions")
BUDGETS = {budget.name: budget for budget in (URGENT, QUESTIONS)}


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


def _compose(rt: Runtime, tenant_id: str, kind: str, ref: str) -> tuple[Push, Budget] | None:
    if kind == "message":
        message = rt.store.get(tenant_path(tenant_id, "messages", ref))
        if message is None:
            return None
        query = message["message_type"] == MessageType.QUERY.value
        title = f"{message['source']}: {'question' if query else 'directive'}"
        push = Push(title, message["message"][:240], kind, ref, {"source": message["source"]})
        return push, QUESTIONS if query else URGENT
    task = rt.store.get(tenant_path(tenant_id, "tasks", ref))
    if task is None:
        return None
    prefix = "Question" if kind == "question" else ("Interrupt" if task.get("action") == "interrupt" else "Urgent")
    push = Push(f"{prefix} from {task['source']}", task["title"], kind, ref,
                {"source": task["source"], "target": task["target"]})
    return push, QUESTIONS if kind == "question" else URGENT


def _hour(now: str) -> str:
    return now[:13]  # 2026-01-01T09: string order is time order


def _usage_path(tenant_id: str, budget: Budget, hour: str) -> str:
    return tenant_path(tenant_id, _USAGE, f"{budget.name}-{hour}")


def _usage(counter: dict[str, Any] | None, budget: Budget, hour: str) -> dict[str, Any]:
    """An hourly counter; every field always written (the sweeper filters on `pending`)."""
    base = {"budget": budget.name, "hour": hour, "count": 0, "capped": 0, "pending": False}
    return {**base, **(counter or {})}


def deliver_push(rt: Runtime, event: PushRequested) -> str:
    """Returns what happened: sent, capped, duplicate, no-devices, missing."""
    kind, ref, tenant_id = event.kind, event.ref, event.tenant_id
    if kind == SUMMARY:
        return _deliver_summary(rt, tenant_id, ref)
    composed = _compose(rt, tenant_id, kind, ref)
    if composed is None:
        return "missing"
    push, budget = composed
    now = rt.clock.iso()
    log_path = tenant_path(tenant_id, _LOG, f"{kind}-{ref}")
    counter_path = _usage_path(tenant_id, budget, _hour(now))

    def reserve(tx: Transaction) -> str:
        logged, stored = tx.get_all([log_path, counter_path])
        if logged is not None:
            return "duplicate" if logged["status"] in ("sent", "capped") else "resend"
        counter = _usage(stored, budget, _hour(now))
        if counter["count"] >= budget.per_hour:  # held back, counted for the next "N more waiting"
            tx.set(counter_path, {**counter, "capped": counter["capped"] + 1, "pending": True})
            tx.set(log_path, {"status": "capped", "at": now, "budget": budget.name})
            return "capped"
        tx.set(counter_path, {**counter, "count": counter["count"] + 1})
        tx.set(log_path, {"status": "reserved", "at": now, "budget": budget.name})
        return "send"

    decision = rt.store.run_transaction(reserve)
    if decision in ("duplicate", "capped"):
        return decision
    return _send(rt, tenant_id, log_path, push, now)


def _send(rt: Runtime, tenant_id: str, log_path: str, push: Push, now: str) -> str:
    tokens = [d.data["token"] for d in rt.store.query(Query(tenant_path(tenant_id, "devices")))
              if d.data.get("token")]
    if rt.notifier is not None:  # also without devices: the embedded notifier logs every push
        rt.notifier.send(tokens, push)

    def mark_sent(tx: Transaction) -> None:
        logged = tx.get(log_path) or {}
        tx.set(log_path, {**logged, "status": "sent", "at": now, "devices": len(tokens)})

    rt.store.run_transaction(mark_sent)
    return "sent" if tokens else "no-devices"


# --- "N more waiting": the sweeper summarises what was held back ----------------------------------

def summarize(rt: Runtime, tenant_id: str) -> int:
    """For each budget whose earlier hours held pushes back, send one push saying how many
    wait, once this hour's budget has room (it takes one push of it). Returns how many were
    emitted. The counters are re-read in the transaction, so overlapping sweeps emit one."""
    hour = _hour(rt.clock.iso())
    pending = Query(tenant_path(tenant_id, _USAGE)).where("pending", "==", True).take(_PENDING_LIMIT)
    held: dict[str, list[str]] = {}
    for doc in rt.store.query(pending):
        if doc.data.get("hour", "") < hour and doc.data.get("budget") in BUDGETS:
            held.setdefault(doc.data["budget"], []).append(doc.path)
    return sum(transact(rt, partial(_emit_summary, rt=rt, tenant_id=tenant_id, budget=BUDGETS[name],
                                    paths=paths, hour=hour))
               for name, paths in sorted(held.items()))


def _emit_summary(tx: Changes, *, rt: Runtime, tenant_id: str, budget: Budget, paths: list[str], hour: str) -> int:
    counter_path = _usage_path(tenant_id, budget, hour)
    *found, stored = tx.get_all([*paths, counter_path])
    held = [(p, d) for p, d in zip(paths, found, strict=True) if d is not None and d.get("pending") is True]
    counter = _usage(stored, budget, hour)
    if not held or counter["count"] >= budget.per_hour:
        return 0  # already summarised, or this hour is full too: the next hour's budget will carry it
    ref = f"{budget.name}-{hour}"  # earlier hours become past once an hour: one summary per budget and hour
    waiting = sum(int(d.get("capped", 0)) for _, d in held)
    for path, _ in held:
        tx.update(path, {"pending": False, "summary": ref})
    tx.set(counter_path, {**counter, "count": counter["count"] + 1})
    tx.set(tenant_path(tenant_id, _LOG, f"{SUMMARY}-{ref}"),
           {"status": "due", "at": rt.clock.iso(), "budget": budget.name, "waiting": waiting,
            "hours": sorted(str(d["hour"]) for _, d in held)})
    tx.emit(PushRequested(tenant_id, kind=SUMMARY, ref=ref))
    return 1


def _deliver_summary(rt: Runtime, tenant_id: str, ref: str) -> str:
    """The summary's slot was taken when it was emitted; here it is only sent, once."""
    log_path = tenant_path(tenant_id, _LOG, f"{SUMMARY}-{ref}")
    now = rt.clock.iso()

    def reserve(tx: Transaction) -> dict[str, Any] | None:
        logged = tx.get(log_path)
        if logged is None or logged["status"] == "sent":
            return logged
        tx.set(log_path, {**logged, "status": "reserved", "at": now})
        return {**logged, "status": "send"}

    logged = rt.store.run_transaction(reserve)
    if logged is None:
        return "missing"
    if logged["status"] == "sent":
        return "duplicate"
    budget, waiting = BUDGETS.get(str(logged.get("budget")), URGENT), int(logged.get("waiting", 0))
    push = Push(f"{waiting} more waiting",
                f"{waiting} {budget.noun} were not pushed (at most {budget.per_hour} an hour); open the inbox.",
                SUMMARY, ref, {"budget": budget.name, "waiting": str(waiting)})
    return _send(rt, tenant_id, log_path, push, now)


# --- retention (the sweeper) -----------------------------------------------------------------------

def old_log_query(tenant_id: str, cutoff: str) -> Query:
    """Push log entries written at or before `cutoff` (now - PUSH_LOG_RETENTION_SECONDS)."""
    return Query(tenant_path(tenant_id, _LOG)).where("at", "<=", cutoff).order("at")


def old_log(entry: dict[str, Any], cutoff: str) -> bool:
    at = entry.get("at")
    return isinstance(at, str) and at <= cutoff


def old_usage_query(tenant_id: str, cutoff: str) -> Query:
    """Hourly counters of hours at or before `cutoff`'s with nothing left to summarise."""
    return (Query(tenant_path(tenant_id, _USAGE)).where("pending", "==", False)
            .where("hour", "<=", _hour(cutoff)).order("hour"))


def old_usage(counter: dict[str, Any], cutoff: str) -> bool:
    return counter.get("pending") is False and str(counter.get("hour", "~")) <= _hour(cutoff)
