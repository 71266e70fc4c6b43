"""The embedded server has no phone to push to: it logs what would have been pushed."""

from __future__ import annotations

import logging

from cachebash.ports.notifier import Notifier, Push

log = logging.getLogger("cachebash.push")


class LogNotifier(Notifier):
    def __init__(self) -> None:
        self.sent: list[tuple[list[str], Push]] = []

    def send(self, tokens: list[str], push: Push) -> int:
        log.warning("push to %d device(s): %s - %s", len(tokens), push.title, push.body)
        self.sent.append((tokens, push))
        return len(tokens)
