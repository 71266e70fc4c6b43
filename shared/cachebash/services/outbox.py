"""Events written with the change (a transactional outbox), so none is lost.

A transaction body emits its events through `Changes.emit`. An event the bus must deliver
durably (one whose handler has an effect an agent was promised: copies of a group message, a
sprint's next wave, a push) is written to `tenants/{t}/outbox/{id}` in the same transaction as
the change; either both commit or neither does. After the commit the runtime hands every event
to its bus and forgets the entries of those delivered, in batches from a background thread
(never an extra transaction per call). Whatever was not delivered (the handler failed, the
publish timed out, the process died between commit and dispatch) is delivered again by the
sweeper once it is `GRACE_SECONDS` old, with a growing back-off, in both runtimes, until it is.

So dispatch is at least once and handlers are idempotent: exactly once in effect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from cachebash.ports.bus import Event
from cachebash.ports.store import Query, Transaction, Wrapping
from cachebash.services.events import decode
from cachebash.services.runtime import new_id, tenant_path

if TYPE_CHECKING:
    from cachebash.services.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

COLLECTION = "outbox"
#: How long the inline dispatch has before the sweeper delivers an entry again.
GRACE_SECONDS = 10.0
#: The longest pause between two redeliveries of an entry whose handler keeps failing.
MAX_BACKOFF_SECONDS = 600.0
REDELIVERY_BATCH = 100
#: Delivered entries are deleted at most this long after their delivery (or sooner, in full batches).
FORGET_SECONDS = 0.05
FORGET_BATCH = 200


@dataclass(frozen=True)
class Pending:
    """An event to dispatch after the commit, and its outbox entry (None: nothing to forget)."""

    event: Event
    path: str | None = None


class Changes(Wrapping):
    """The transaction a body writes its change through, plus `emit` for the events it causes.
    Emitting is a write: do it after the body's reads, like every other write."""

    def __init__(self, tx: Transaction, rt: Runtime) -> None:
        super().__init__(tx)
        self._rt = rt
        self.pending: list[Pending] = []

    def emit(self, event: Event) -> None:
        path = None
        if self._rt.bus.durable(event) and event.needs_delivery():
            path = tenant_path(event.tenant_id, COLLECTION, new_id())
            self._tx.create(path, entry(event, self._rt.clock.iso(), self._rt.clock.iso(GRACE_SECONDS)))
        self.pending.append(Pending(event, path))


def entry(event: Event, now: str, due: str) -> dict[str, Any]:
    return {"topic": event.topic, "data": event.data, "createdAt": now, "dueAt": due, "attempts": 0}


def run(rt: Runtime, body: Callable[[Changes], T]) -> tuple[T, list[Pending]]:
    """Run `body` in one transaction; returns its result and the events of the attempt that
    committed (a transaction may run several times; each attempt starts with no events)."""
    committed: list[Changes] = []

    def attempt(tx: Transaction) -> T:
        changes = Changes(tx, rt)
        result = body(changes)
        committed[:] = [changes]
        return result

    result = rt.store.run_transaction(attempt)
    return result, committed[0].pending if committed else []


def transact(rt: Runtime, body: Callable[[Changes], T]) -> T:
    """Commit `body`'s change with its events, then dispatch them. The one way events leave a change."""
    result, pending = run(rt, body)
    rt.dispatcher.dispatch(pending)
    return result


class Dispatcher:
    """Hands committed events to the bus and forgets the outbox entries of those delivered."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._delivered: list[str] = []
        self._lock = threading.Condition()
        self._flushing = threading.Lock()  # a flush returns only once what it took is deleted
        self._thread: threading.Thread | None = None

    def dispatch(self, pending: Sequence[Pending]) -> None:
        """A failed delivery is logged and left to redelivery: the change it belongs to is
        committed, so the call that made it still succeeds (unless the runtime is strict: tests)."""
        failure: Exception | None = None
        for item in pending:
            try:
                self._rt.bus.publish(item.event)
            except Exception as exc:
                log.exception("delivering %s failed%s", item.event.topic,
                              "; the sweeper delivers it again" if item.path else "")
                failure = failure or exc
                continue
            if item.path is not None:
                self.forget(item.path)
        if failure is not None and self._rt.strict:
            raise failure

    def forget(self, path: str) -> None:
        """Delete this delivered entry with the next batch."""
        with self._lock:
            self._delivered.append(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._forget_loop, name="cachebash-outbox", daemon=True)
                self._thread.start()
            if len(self._delivered) in (1, FORGET_BATCH):  # start a batch, or cut a full one short
                self._lock.notify()

    def _forget_loop(self) -> None:
        while True:
            with self._lock:
                while not self._delivered:
                    self._lock.wait()
                if len(self._delivered) < FORGET_BATCH:
                    self._lock.wait(FORGET_SECONDS)  # let a batch gather
            try:
                self.flush()
            except Exception:  # the entries stay: the sweeper delivers them again, to no effect
                log.exception("forgetting delivered outbox entries failed")

    def delivered(self) -> set[str]:
        """Entries delivered by this process but not yet deleted: never redelivered."""
        with self._lock:
            return set(self._delivered)

    def flush(self) -> int:
        """Delete the entries of delivered events now; returns how many."""
        with self._flushing:
            with self._lock:
                paths = sorted(set(self._delivered[:FORGET_BATCH]))
            try:
                if paths:
                    self._rt.store.run_transaction(partial(delete_all, paths=paths))
            finally:  # deleted, or left for a harmless redelivery: either way no longer ours to forget
                with self._lock:
                    self._delivered = [p for p in self._delivered if p not in paths]
            return len(paths)


def delete_all(tx: Transaction, *, paths: Sequence[str]) -> None:
    """Delete many documents in one commit (no reads, so no contention)."""
    for path in paths:
        tx.delete(path)


def replayed_events(tx: Transaction, rt: Runtime, paths: Sequence[str]) -> list[Pending]:
    """The events of an earlier call that are still undelivered (a replayed idempotent call
    delivers them now instead of waiting for the sweeper)."""
    found = tx.get_all(list(paths)) if paths else []
    done = rt.dispatcher.delivered()
    out = []
    for path, doc in zip(paths, found, strict=True):
        if doc is not None and path not in done and (event := _decoded(path, doc)) is not None:
            out.append(Pending(event, path))
    return out


def _decoded(path: str, doc: dict[str, Any]) -> Event | None:
    """The entry's event; None (logged, the entry kept for a newer version) if this one cannot read it."""
    try:
        return decode(str(doc["topic"]), path.split("/")[1], dict(doc["data"]))
    except KeyError:
        log.error("outbox entry %s has an unknown topic or lacks a fact (%s); kept for a newer version", path,
                  doc.get("topic"))
        return None


def park(rt: Runtime, event: Event, attempts: int = 1) -> str:
    """Keep an event whose delivery keeps failing for the sweeper's slower redelivery."""
    path = tenant_path(event.tenant_id, COLLECTION, new_id())
    record = {**entry(event, rt.clock.iso(), rt.clock.iso(backoff(attempts))), "attempts": attempts}
    rt.store.run_transaction(lambda tx: tx.create(path, record))
    return path


def backoff(attempts: int) -> float:
    return float(min(GRACE_SECONDS * 2 ** attempts, MAX_BACKOFF_SECONDS))


def redeliver(rt: Runtime, tenant_id: str) -> int:
    """Deliver again every entry of the tenant that is due; returns how many were delivered.

    Each due entry is first claimed (its `dueAt` pushed back by its back-off) in one transaction,
    so overlapping sweeps (two instances, a retried trigger) rarely deliver it twice, and an
    entry whose handler keeps failing is tried less and less often, never dropped."""
    now = rt.clock.iso()
    due = (Query(tenant_path(tenant_id, COLLECTION)).where("dueAt", "<=", now).order("dueAt")
           .take(REDELIVERY_BATCH))
    done = rt.dispatcher.delivered()
    paths = [doc.path for doc in rt.store.query(due) if doc.path not in done]
    if not paths:
        return 0

    def claim(tx: Transaction) -> list[tuple[str, dict[str, Any]]]:
        claimed = [(p, d) for p, d in zip(paths, tx.get_all(paths), strict=True) if d is not None and d["dueAt"] <= now]
        for path, doc in claimed:
            attempts = int(doc.get("attempts", 0)) + 1
            tx.update(path, {"attempts": attempts, "dueAt": rt.clock.iso(backoff(attempts))})
        return claimed

    delivered = 0
    for path, doc in rt.store.run_transaction(claim):
        if (event := _decoded(path, doc)) is None:
            continue
        try:
            rt.bus.publish(event)
        except Exception as exc:
            log.exception("redelivering %s (%s, attempt %s) failed", event.topic, path, doc.get("attempts", 0) + 1)
            _note_failure(rt, path, exc)
            continue
        rt.dispatcher.forget(path)
        delivered += 1
    return delivered


def _note_failure(rt: Runtime, path: str, exc: Exception) -> None:
    """Keep the last error on the entry, for a person reading the outbox."""
    def note(tx: Transaction) -> None:
        if tx.get(path) is not None:
            tx.update(path, {"lastError": f"{type(exc).__name__}: {exc}"[:500]})

    try:
        rt.store.run_transaction(note)
    except Exception:
        log.exception("recording the failure on %s failed", path)
