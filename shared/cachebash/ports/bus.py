"""The event bus port: services publish after commit, handlers react.

In the cloud each topic is a Pub/Sub topic with a triggered function; embedded, the
in-process adapter calls the same handlers right after the commit. Either way a handler
may see an event more than once, so every handler must be idempotent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    topic: str
    tenant_id: str
    data: dict[str, Any] = field(default_factory=dict)


class Bus(ABC):
    @abstractmethod
    def publish(self, event: Event) -> None: ...
