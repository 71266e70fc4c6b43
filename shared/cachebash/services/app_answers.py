"""Answers the phone app writes into Firestore itself: `tenants/{t}/answers/{questionId}`.

The app signs in as the owner and may create exactly one document per open question in this
collection, holding `answer` and `answeredAt` only (`firestore.rules`); it may write nothing
else. Answers land in a collection of their own so that the function applying them fires on
answers only (`answered`, on document creation): written onto the tasks and messages
themselves, every claim, progress report and message copy would start it for nothing.

Applying an answer is `replies.answer_in`, the same rule the owner API's `/replies` follows
(a RESULT to the asker, a question task completed), in one transaction that also deletes the
answer document. So an answer is applied exactly once however often it is delivered: a
redelivery finds no document. Whatever the trigger did not apply (it failed for good, or the
function was down) the sweeper applies (`apply_pending`), so no answer the app saw accepted is
lost. An answer that can no longer apply (the question was answered meanwhile through the
console, or closed) is logged and dropped; the question shows the answer that won.
"""

from __future__ import annotations

import logging
from typing import Any

from cachebash.domain.errors import Conflict, InvalidInput, NotFound
from cachebash.domain.inputs import parse
from cachebash.ports.store import Query
from cachebash.services import activity
from cachebash.services.outbox import Changes, transact
from cachebash.services.replies import HumanReply, answer_in, question_paths
from cachebash.services.runtime import Runtime, tenant_path

log = logging.getLogger(__name__)

COLLECTION = "answers"
#: Answers the sweeper applies per tenant and sweep (the trigger applies them within seconds,
#: so only those it failed on are ever waiting).
SWEEP_BATCH = 100


def answer_path(tenant_id: str, question_id: str) -> str:
    return tenant_path(tenant_id, COLLECTION, question_id)


def apply(rt: Runtime, tenant_id: str, question_id: str) -> dict[str, Any] | None:
    """Apply the app's answer to `question_id`, if one is waiting; returns what `reply` would
    (None when there was nothing to apply, or it could not apply and was dropped)."""
    now = rt.clock.iso()
    path = answer_path(tenant_id, question_id)

    def run(tx: Changes) -> dict[str, Any] | None:
        answer, message, task = tx.get_all([path, *question_paths(tenant_id, question_id)])
        if answer is None:
            return None  # applied already (a redelivery), or never written
        try:
            cmd = parse(HumanReply, {"replyTo": question_id, "message": answer.get("answer")})
            result = answer_in(tx, rt, tenant_id, question_id, cmd.message, message, task, now)
        except (Conflict, InvalidInput, NotFound) as exc:  # refused before writing anything: drop it, say why
            log.warning("the app's answer to %s in tenant %s cannot apply (%s); dropped", question_id, tenant_id,
                        exc)
            result = None
        tx.delete(path)
        return result

    result = transact(rt, run)
    return None if result is None else activity.question_answered(tenant_id, question_id, result)


def apply_pending(rt: Runtime, tenant_id: str) -> int:
    """For the sweeper: apply the answers still waiting (their trigger failed); returns how many."""
    waiting = rt.store.query(Query(tenant_path(tenant_id, COLLECTION)).order("answeredAt").take(SWEEP_BATCH))
    return sum(apply(rt, tenant_id, doc.id) is not None for doc in waiting)
