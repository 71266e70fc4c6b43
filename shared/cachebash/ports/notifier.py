"""Pushes to the human's phone: FCM in the cloud, a log line embedded."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Push:
    title: str
    body: str
    kind: str  # "task", "message", "question": lets the app open the right screen
    ref: str  # the task or message id
    data: dict[str, str] = field(default_factory=dict)


class Notifier(ABC):
    @abstractmethod
    def send(self, tokens: list[str], push: Push) -> int:
        """Deliver to each device token; returns how many were accepted."""
