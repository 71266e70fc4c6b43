"""The one module that knows every concrete adapter and wires them together."""

from __future__ import annotations

import os
from collections.abc import Callable

from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.adapters.local_signals import LocalSignals
from cachebash.adapters.log_notifier import LogNotifier
from cachebash.adapters.periodic import Periodic
from cachebash.config import Settings
from cachebash.domain.retry import RetryPolicy
from cachebash.ports.bus import Event
from cachebash.ports.clock import Clock, SystemClock
from cachebash.ports.store import Store
from cachebash.services.handlers import HANDLERS, EventHandler
from cachebash.services.runtime import Runtime
from cachebash.services.wakeups import WAKING_TOPICS, wake


def open_store(settings: Settings) -> Store:
    if settings.store == "sqlite":
        from cachebash.adapters.sqlite_store import SqliteStore

        return SqliteStore(settings.sqlite_path)
    raise ValueError(f"CACHEBASH_STORE={settings.store!r} is not a store this build knows (sqlite)")


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
    for topic in WAKING_TOPICS:
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

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "")
        runtime.bus = PubSubBus(project, cloud_topics())
    if os.environ.get("CACHEBASH_NOTIFIER", "fcm") == "fcm":
        from cachebash.adapters.fcm_notifier import FcmNotifier

        runtime.notifier = FcmNotifier()
    return runtime
