"""What a process learns of other processes' writes while calls wait, on a store that listens
(Firestore, where Cloud Function instances share one database).

Instead of every waiting call re-running its own query, a process listens once per tenant that
has waiting calls (`TenantFeed`, shared by all of them; `LocalSignals` opens it for the first
waiter and closes it a while after the last one left) to three bounded queries, and turns each
changed document into the signal keys it should wake (the table `WATCHED`). So the cost grows
with the tenants being waited on, not with the waiting calls.

What is listened to is only what can wake a waiter, written since the feed opened (less
`SINCE_MARGIN_SECONDS`, for another instance's clock a little behind): queued tasks, undelivered
messages and revoked keys, each the `WATCH_LIMIT` most recently written. What was there before the
feed opened needs no listener: every call starts with a look. Listening to everything (the newest
tasks, messages and active keys) cost far more: Google's emulator answers every write to a
listened collection by sending the query's whole result set again (100 documents per presence
write of any key, per message sent), which was 40% of a server's CPU with 320 calls waiting, and
on Firestore each listened change is a billed document read. Console pages that wait are woken by
these changes and by their own process's writes (`wakeups`); another instance's other writes
reach them at their next look.

Bounds: every write that matters enters its window (a task that is queued again gets a new
`updatedAt`; a new message and a new revocation are the newest). Time passing is not written: a
retry back-off that ends (`availableAt`) is woken by a timer, for every task seen in back-off while
the feed was open (also after it left the window). A lease that runs out needs no timer: claim_next
takes only queued tasks, and the sweeper's write that queues the task again is seen. What is left
(a back-off that began before the feed opened, a write stamped by a clock more than the margin
behind, a group message's copy made more than the margin after it was sent, as an outbox
redelivery after a failure may) is found by the next look: every call starts with one, and a
waiter looks again at `LocalSignals`' safety interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from cachebash.domain.task_states import Phase
from cachebash.domain.tasks import Action
from cachebash.ports.clock import Clock
from cachebash.ports.signals import OWNER_KEY, Feed, inbox_key, interrupt_key, queue_key, revocation_key
from cachebash.ports.store import Change, Listening, Query, Store
from cachebash.services.keys import KEYS
from cachebash.services.runtime import tenant_path

WATCH_LIMIT = 100
#: A feed listens to what was written from this long before it opened.
SINCE_MARGIN_SECONDS = 60.0

#: A moment (ISO time) at which a document wakes these keys without being written.
Due = tuple[str, frozenset[str]]


@dataclass(frozen=True)
class Watched:
    """One listened query per tenant (of what was written since a moment), what each change of it
    wakes, and when a document of it becomes ready without a write."""

    name: str
    query: Callable[[str, str], Query]
    wakes: Callable[[Change], set[str]]
    due: Callable[[dict[str, Any]], Due | None] = lambda _: None


def _tasks(tenant_id: str, since: str) -> Query:
    return (Query(tenant_path(tenant_id, "tasks")).where("phase", "==", Phase.QUEUED.value)
            .where("updatedAt", ">=", since).order("updatedAt", descending=True).take(WATCH_LIMIT))


def _messages(tenant_id: str, since: str) -> Query:
    return (Query(tenant_path(tenant_id, "messages")).where("delivered", "==", False)
            .where("createdAt", ">=", since).order("createdAt", descending=True).take(WATCH_LIMIT))


def _keys(tenant_id: str, since: str) -> Query:
    return (Query(KEYS).where("tenantId", "==", tenant_id).where("active", "==", False)
            .where("revokedAt", ">=", since).order("revokedAt", descending=True).take(WATCH_LIMIT))


def _queued_for(task: dict[str, Any]) -> str | None:
    target = task.get("target")
    return target if task.get("phase") == Phase.QUEUED.value and isinstance(target, str) else None


def task_wakes(change: Change) -> set[str]:
    """Any change may show on a console page; a queued task wakes its queue's waiters, and a
    queued interrupt also its target's waiting get_messages (as `wakeups.wake` does locally)."""
    target = None if change.removed else _queued_for(change.doc.data)
    if not target:
        return {OWNER_KEY}
    if change.doc.data.get("action") == Action.INTERRUPT.value:
        return {OWNER_KEY, queue_key(target), interrupt_key(target)}
    return {OWNER_KEY, queue_key(target)}


def task_due(task: dict[str, Any]) -> Due | None:
    """A queued task in retry back-off becomes claimable at `availableAt`, which nobody writes."""
    target, available = _queued_for(task), task.get("availableAt")
    return (available, frozenset({queue_key(target)})) if target and isinstance(available, str) else None


def message_wakes(change: Change) -> set[str]:
    message = change.doc.data
    target = message.get("target")
    if change.removed or message.get("delivered") is not False or not isinstance(target, str):
        return {OWNER_KEY}
    return {OWNER_KEY, inbox_key(target)}


def key_revoked(change: Change) -> bool:
    """A key in the revoked keys' query was revoked (one that leaves it was too: it fell out of
    the window, or was deleted)."""
    return change.removed or not change.doc.data.get("active")


def key_wakes(change: Change) -> set[str]:
    """A revoked key's waiting calls end."""
    key_id = change.doc.data.get("keyId")
    if key_revoked(change) and isinstance(key_id, str):
        return {OWNER_KEY, revocation_key(key_id)}
    return {OWNER_KEY}


WATCHED: tuple[Watched, ...] = (
    Watched("tasks", _tasks, task_wakes, task_due),
    Watched("messages", _messages, message_wakes),
    Watched("keys", _keys, key_wakes),
)


class TenantFeed(Feed):
    """The listeners of one tenant, and one timer for the next back-off to end among the tasks
    they hold. Callbacks come from the store's listener threads and the timer's thread."""

    def __init__(self, store: Store, clock: Clock, tenant_id: str, notify: Callable[[Iterable[str]], None],
                 watched: Sequence[Watched] = WATCHED, forget_key: Callable[[str], None] | None = None) -> None:
        self._clock = clock
        self._notify = notify
        #: Told the hash of each key seen revoked (the key cache drops it: see `services.key_cache`).
        self._forget_key = forget_key
        self._lock = threading.Lock()
        self._due: dict[str, dict[str, Due]] = {}  # per watched query: document path -> its due moment
        self._timer: threading.Timer | None = None
        self._armed_for: str | None = None
        self._closed = False
        self._listening: list[Listening] = []
        since = clock.iso(-SINCE_MARGIN_SECONDS)
        try:
            for item in watched:
                self._listening.append(store.listen(item.query(tenant_id, since), partial(self._changed, item)))
        except Exception:
            self.close()
            raise

    @property
    def live(self) -> bool:
        return not self._closed and all(listening.live for listening in self._listening)

    @property
    def ended(self) -> bool:
        return self._closed or any(listening.ended for listening in self._listening)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._disarm()
        for listening in self._listening:
            listening.close()

    def _changed(self, watched: Watched, changes: list[Change]) -> None:
        if watched.name == "keys" and self._forget_key is not None:
            for change in changes:
                if key_revoked(change):
                    self._forget_key(change.doc.path.rsplit("/", 1)[-1])
        woken = set().union(*(watched.wakes(change) for change in changes))
        if woken:
            self._notify(woken)
        with self._lock:
            dues = self._due.setdefault(watched.name, {})
            for change in changes:
                if change.removed:
                    continue  # left the window (or was deleted): a back-off under way still ends on time
                if (due := watched.due(change.doc.data)) is not None:
                    dues[change.doc.path] = due
                else:
                    dues.pop(change.doc.path, None)
            self._arm()

    def _arm(self) -> None:
        """One timer, for the earliest moment still to come (called holding the lock)."""
        now = self._clock.iso()
        upcoming = [moment for dues in self._due.values() for moment, _ in dues.values() if moment > now]
        earliest = min(upcoming, default=None)
        if self._closed or earliest == self._armed_for:
            return
        self._disarm()
        if earliest is not None:
            seconds = (datetime.fromisoformat(earliest) - self._clock.now()).total_seconds()
            self._timer = threading.Timer(max(seconds, 0.0), self._fire)
            self._timer.daemon = True
            self._armed_for = earliest
            self._timer.start()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_for = None, None

    def _fire(self) -> None:
        now = self._clock.iso()
        with self._lock:
            self._timer, self._armed_for = None, None
            woken = {key for dues in self._due.values() for moment, keys in dues.values() if moment <= now
                     for key in keys}
            for dues in self._due.values():
                for path in [path for path, (moment, _) in dues.items() if moment <= now]:
                    del dues[path]
            self._arm()
        if woken:
            self._notify(woken)
