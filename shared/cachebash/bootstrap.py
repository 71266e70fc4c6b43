"""The one module that knows every concrete adapter and wires them together."""

from __future__ import annotations

from collections.abc import Callable

from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.config import Settings
from cachebash.ports.bus import Event
from cachebash.ports.clock import Clock, SystemClock
from cachebash.ports.store import Store
from cachebash.services.handlers import HANDLERS, EventHandler
from cachebash.services.runtime import Runtime


def open_store(settings: Settings) -> Store:
    if settings.store == "sqlite":
        from cachebash.adapters.sqlite_store import SqliteStore

        return SqliteStore(settings.sqlite_path)
    raise ValueError(f"CACHEBASH_STORE={settings.store!r} is not a store this build knows (sqlite)")


def embedded_runtime(store: Store, clock: Clock | None = None, *, strict: bool = False) -> Runtime:
    """A runtime whose events are handled in-process right after each commit."""
    bus = InProcessBus(strict=strict)
    runtime = Runtime(store=store, bus=bus, clock=clock or SystemClock())
    for topic, handlers in HANDLERS.items():
        for handler in handlers:
            bus.subscribe(topic, _bind(runtime, handler))
    return runtime


def _bind(runtime: Runtime, handler: EventHandler) -> Callable[[Event], None]:
    def run(event: Event) -> None:
        handler(runtime, event)

    run.__name__ = getattr(handler, "__name__", "handler")
    return run
