"""The one module that knows every concrete adapter and wires them together."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.adapters.local_signals import POLL, LocalSignals
from cachebash.adapters.log_notifier import LogNotifier
from cachebash.adapters.periodic import Periodic
from cachebash.config import STORES, Settings
from cachebash.domain.plans import CLOUD_DEFAULT, EMBEDDED_DEFAULT
from cachebash.domain.retry import RetryPolicy
from cachebash.ports.bus import Bus, Event
from cachebash.ports.clock import Clock, SystemClock
from cachebash.ports.notifier import Notifier
from cachebash.ports.store import Query, QueryObserver, Store
from cachebash.services.events import pubsub_functions
from cachebash.services.handlers import HANDLERS, EventHandler
from cachebash.services.key_cache import KeyCache
from cachebash.services.runtime import Runtime
from cachebash.services.wakeups import WakingBus
from cachebash.services.watching import TenantFeed


def open_store(settings: Settings) -> Store:
    """The configured store. Adapters are imported here, on demand, so a SQLite process never
    loads the Firestore client library (and a Firestore one never touches the disk)."""
    store: Store
    if settings.store == "sqlite":
        from cachebash.adapters.sqlite_store import SqliteStore

        store = SqliteStore(settings.sqlite_path, durability=settings.durability)
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


def build_runtime(settings: Settings | None = None, *, store: Store | None = None, bus: Bus | None = None,
                  notifier: Notifier | None = None, clock: Clock | None = None, strict: bool = False) -> Runtime:
    """A runtime composed from its parts; whatever is not given comes from `settings`.

    Without a bus, events are handled in-process right after each commit. Whatever the bus,
    it is wrapped so this process wakes its own waiting callers at once."""
    settings = settings or Settings()
    store = store or open_store(settings)
    clock = clock or SystemClock()
    # A store that other processes also write (Firestore) is listened to, one listener per tenant
    # with waiting calls; waiters poll it only while that listener is not live.
    # The feed also drops a key revoked elsewhere from the key cache, at once rather than at its TTL.
    key_cache = KeyCache()
    signals = LocalSignals(poll=POLL if store.blocking_io else None,
                           feeds=partial(TenantFeed, store, clock, forget_key=key_cache.forget_key)
                           if store.listens else None)
    inner = bus or InProcessBus()
    runtime = Runtime(store=store, bus=WakingBus(inner, signals), clock=clock, policy=settings.policy,
                      signals=signals, notifier=notifier or LogNotifier(), strict=strict, key_cache=key_cache,
                      away_seconds=settings.away_seconds, default_plan=settings.default_plan or EMBEDDED_DEFAULT)
    if isinstance(inner, InProcessBus):
        for kind, handlers in HANDLERS.items():
            for handler in handlers:
                inner.subscribe(kind.topic, _bind(runtime, handler))
    return runtime


def embedded_runtime(store: Store, clock: Clock | None = None, *, strict: bool = False,
                     policy: RetryPolicy | None = None) -> Runtime:
    """The embedded server's runtime on `store` (tests pass their own store and clock)."""
    return build_runtime(Settings(policy=policy or RetryPolicy()), store=store, clock=clock, strict=strict)


def begin_closing(runtime: Runtime) -> int:
    """The server is stopping: calls waiting for work answer empty now (in-flight calls finish).
    Returns how many waiting calls were woken."""
    runtime.closing.set()
    return runtime.signals.wake_all() if isinstance(runtime.signals, LocalSignals) else 0


def _bind(runtime: Runtime, handler: EventHandler) -> Callable[[Event], None]:
    def run(event: Event) -> None:
        handler(runtime, event)

    run.__name__ = getattr(handler, "__name__", "handler")
    return run


def start_sweeper(runtime: Runtime, interval: float,
                  on_result: Callable[[dict[str, int]], None] | None = None) -> Periodic:
    """Embedded stand-in for the scheduled `sweeper` function: takes back expired leases etc.
    `on_result` sees what each sweep did (the metrics count it)."""
    from cachebash.services.sweeper import sweep

    def run() -> None:
        counts = sweep(runtime)
        if on_result is not None:
            on_result(counts)

    return Periodic(interval, run, name="cachebash-sweeper").start()


def cloud_runtime(settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
    """The runtime a Cloud Function uses: events go to Pub/Sub (each topic triggers its
    function) and pushes to FCM. CACHEBASH_BUS=inprocess / CACHEBASH_NOTIFIER=log run the
    same functions without Google services (tests, local emulation)."""
    settings = settings or Settings.from_env()
    bus: Bus | None = None
    if (settings.bus or "pubsub") == "pubsub":
        from cachebash.adapters.pubsub_bus import PubSubBus

        bus = PubSubBus(settings.firestore_project or "", pubsub_topics())
    notifier: Notifier | None = None
    if (settings.notifier or "fcm") == "fcm":
        from cachebash.adapters.fcm_notifier import FcmNotifier

        notifier = FcmNotifier()
    settings = replace(settings, default_plan=settings.default_plan or CLOUD_DEFAULT)
    runtime = build_runtime(settings, bus=bus, notifier=notifier, clock=clock)
    runtime.owner_sets_plan = False
    return runtime


def pubsub_topics() -> frozenset[str]:
    """The event topics a Pub/Sub function consumes: the only ones the cloud publishes."""
    return frozenset(kind.topic for kinds in pubsub_functions().values() for kind in kinds)
