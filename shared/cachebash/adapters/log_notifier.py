"""The embedded server has no phone to push to: it logs what would have been pushed, one line
each, so a person watching the terminal sees every question and urgent task (and answers it
in the console)."""

from __future__ import annotations

import logging

from cachebash.ports.notifier import Notifier, Push

log = logging.getLogger("cachebash.push")


class LogNotifier(Notifier):
    def __init__(self) -> None:
        self.sent: list[tuple[list[str], Push]] = []

    def send(self, tokens: list[str], push: Push) -> int:
        log.warning("%s: %s  [%s %s; answer or open it in the console]", push.title, push.body, push.kind, push.ref)
        self.sent.append((tokens, push))
        return len(tokens)
