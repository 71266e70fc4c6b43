"""The bus for the embedded server: handlers run in-process right after the commit.

Handlers are the same functions the Pub/Sub-triggered Cloud Functions call, so the embedded
server behaves like the cloud one. Every event with a handler is durable here: its outbox
entry is forgotten only once all its handlers succeeded, so a failed handler is retried by
the sweeper's redelivery (`services/outbox.py`), as Pub/Sub retries a failed function.
"""

from __future__ import annotations

from collections.abc import Callable

from cachebash.ports.bus import Bus, Event

Handler = Callable[[Event], None]


class InProcessBus(Bus):
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def durable(self, event: Event) -> bool:
        return bool(self._handlers.get(event.topic))

    def publish(self, event: Event) -> None:
        """Runs every handler even if one fails, then raises the first failure."""
        failure: Exception | None = None
        for handler in self._handlers.get(event.topic, []):
            try:
                handler(event)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
