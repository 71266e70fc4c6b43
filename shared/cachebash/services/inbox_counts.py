"""How full an inbox is, without counting it at every send.

The inbox limit (`services.limits`) is a flood guard: a send to an inbox holding the plan's
`max_inbox_undelivered` is refused. Counting before every send was one count query each (on
Firestore one of the four RPCs of a direct send). A count is kept instead, with the sends this
process admitted to the inbox since, and stands for `FRESH_SECONDS`, while those two together
stay under a quarter of the cap; near the cap, or once stale, the inbox is counted at every
send, exactly as before. Deliveries are not subtracted, so what is held only overstates.

The bound (README, Limits): this process admits at most a quarter of the cap to an inbox on
one count, so the cap can be passed only by what other processes (other Cloud Functions
instances, a second server) send to that inbox in the same `FRESH_SECONDS`, each of them
bounded the same way, besides senders racing at the very limit (as before).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cachebash.services.expiring import Expiring

#: How long a count of an inbox stands in for a new one.
FRESH_SECONDS = 10.0
#: A held count serves while it and the sends since stay under the cap divided by this.
SHARE_OF_CAP = 4


@dataclass(frozen=True)
class InboxCount:
    counted: int  # undelivered messages when last counted
    sent: int = 0  # sends this process admitted to the inbox since

    def one_more(self) -> InboxCount:
        return replace(self, sent=self.sent + 1)


Counts = Expiring[tuple[str, str], InboxCount]


def well_under(counts: Counts, tenant_id: str, target: str, cap: int, now: datetime) -> bool:
    """Whether a fresh count and the sends since leave the inbox far enough under `cap` to skip counting."""
    held = counts.get((tenant_id, target), now)
    return held is not None and held.counted + held.sent < cap // SHARE_OF_CAP


def counted(counts: Counts, tenant_id: str, target: str, undelivered: int, now: datetime) -> None:
    counts.put((tenant_id, target), InboxCount(undelivered), now)


def admitted(counts: Counts, tenant_id: str, target: str) -> None:
    counts.change((tenant_id, target), InboxCount.one_more)
