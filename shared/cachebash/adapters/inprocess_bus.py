"""The bus for the embedded server: handlers run in-process right after the commit.

Handlers are the same functions the Pub/Sub-triggered Cloud Functions call, so the
embedded server behaves like the cloud one. A failing handler is logged and re-raised to
the publisher's caller only in `strict` mode (tests); in serving mode the committed
request still succeeds, as it would with Pub/Sub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cachebash.ports.bus import Bus, Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]


class InProcessBus(Bus):
    def __init__(self, *, strict: bool = False) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self.strict = strict

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, event: Event) -> None:
        for handler in self._handlers.get(event.topic, []):
            try:
                handler(event)
            except Exception:
                log.exception("handler %s failed for %s", getattr(handler, "__name__", handler), event.topic)
                if self.strict:
                    raise
