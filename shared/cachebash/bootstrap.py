"""The one module that knows every concrete adapter and wires them together."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.adapters.local_signals import LocalSignals
from cachebash.adapters.log_notifier import LogNotifier
from cachebash.adapters.periodic import Periodic
from cachebash.config import STORES, Settings
from cachebash.domain.retry import RetryPolicy
from cachebash.ports.bus import Event
from cachebash.ports.clock import Clock, SystemClock
from cachebash.ports.store import Query, QueryObserver, Store
from cachebash.services.handlers import HANDLERS, EventHandler
from cachebash.services.runtime import Runtime
from cachebash.services.wakeups import WAKING_TOPICS, wake


def open_store(settings: Settings) -> Store:
    """The configured store. Adapters are imported here, on demand, so a SQLite process never
    loads the Firestore client library (and a Firestore one never touches the disk)."""
    store: Store
    if settings.store == "sqlite":
        from cachebash.adapters.sqlite_store import SqliteStore

        store = SqliteStore(settings.sqlite_path)
    elif settings.store == "firestore":
        from cachebash.adapters.firestore_store import FirestoreStore

        store = FirestoreStore(project=settings.firestore_project, database=settings.firestore_database)
    else:
        raise ValueError(f"CACHEBASH_STORE={settings.store!r} is not a store this build knows "
                         f"({', '.join(STORES)})")
    if settings.query_log is not None:
        store.observers.append(query_logger(settings.query_log))
    return store


def query_logger(path: Path) -> QueryObserver:
    """Append each query's shape (collection, filtered fields and operators, orders; never
    values) as one JSON line, so indexes can be checked against what really ran."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def log(query: Query) -> None:
        line = json.dumps({
            "collection": query.collection,
            "filters": [[f.field, f.op] for f in query.filters],
            "order_by": [[o.field, o.descending] for o in query.order_by],
        }) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one write per line: concurrent writers never interleave
        finally:
            os.close(fd)

    return log


def embedded_runtime(store: Store, clock: Clock | None = None, *, strict: bool = False,
                     policy: RetryPolicy | None = None) -> Runtime:
    """A runtime whose events are handled in-process right after each commit, and whose
    waiting callers are woken in-process too."""
    bus = InProcessBus(strict=strict)
    # A store that other processes also write (Firestore) needs polling besides local wake-ups.
    signals = LocalSignals(poll=(0.5, 2.0) if store.blocking_io else None)
    runtime = Runtime(store=store, bus=bus, clock=clock or SystemClock(), policy=policy or RetryPolicy(),
                      signals=signals, notifier=LogNotifier())
    for topic, handlers in HANDLERS.items():
        for handler in handlers:
            bus.subscribe(topic, _bind(runtime, handler))
    for topic in sorted({*WAKING_TOPICS, *HANDLERS}):  # every event may wake a console page; some wake agents too
        bus.subscribe(topic, lambda event: wake(signals, event))
    return runtime


def _bind(runtime: Runtime, handler: EventHandler) -> Callable[[Event], None]:
    def run(event: Event) -> None:
        handler(runtime, event)

    run.__name__ = getattr(handler, "__name__", "handler")
    return run


def start_sweeper(runtime: Runtime, interval: float) -> Periodic:
    """Embedded stand-in for the scheduled `sweeper` function: takes back expired leases etc."""
    from cachebash.services.sweeper import sweep

    return Periodic(interval, lambda: sweep(runtime), name="cachebash-sweeper").start()


def cloud_runtime(settings: Settings | None = None) -> Runtime:
    """The runtime a Cloud Function uses: events go to Pub/Sub (each topic triggers its
    function) and pushes to FCM. CACHEBASH_BUS=inprocess / CACHEBASH_NOTIFIER=log run the
    same functions without Google services (tests, local emulation)."""
    settings = settings or Settings.from_env()
    runtime = embedded_runtime(open_store(settings), policy=settings.policy)
    if os.environ.get("CACHEBASH_BUS", "pubsub") == "pubsub":
        from cachebash.adapters.pubsub_bus import PubSubBus
        from cachebash.deploy import cloud_topics

        project = settings.firestore_project or os.environ.get("GOOGLE_CLOUD_PROJECT", "")
        runtime.bus = PubSubBus(project, cloud_topics())
    if os.environ.get("CACHEBASH_NOTIFIER", "fcm") == "fcm":
        from cachebash.adapters.fcm_notifier import FcmNotifier

        runtime.notifier = FcmNotifier()
    return runtime
