"""The event bus port: what a committed change tells the rest of the system.

Events are typed (one frozen class per kind, in `services/events.py`); this port only knows
their common shape. A change emits its events inside its transaction (`services/outbox.py`):
those a bus must deliver durably are written to the tenant's outbox with the change, and the
runtime hands every event to the bus after the commit. Delivery is at least once (a failed
handler, a crash before dispatch, a redelivery by the sweeper), so every handler is idempotent.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

_CAMEL = re.compile(r"_([a-z])")


def wire_name(name: str) -> str:
    """Field names on the wire are camelCase, as in every stored document (`task_id` -> `taskId`)."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


@dataclass(frozen=True)
class Event:
    """Something that happened in one tenant. Subclasses name the kind (`topic`, the wire name)
    and carry its facts as fields."""

    tenant_id: str
    topic: ClassVar[str] = ""

    @property
    def data(self) -> dict[str, Any]:
        """The event's facts as sent on the wire and kept in the outbox."""
        return {wire_name(f.name): getattr(self, f.name) for f in fields(self) if f.name != "tenant_id"}

    @classmethod
    def from_data(cls, tenant_id: str, data: dict[str, Any]) -> Event:
        """The inverse of `data`; a missing fact raises KeyError (the message is malformed)."""
        values = {f.name: data[wire_name(f.name)] for f in fields(cls) if f.name != "tenant_id"}
        return cls(tenant_id, **values)

    def needs_delivery(self) -> bool:
        """Whether any handler acts on this instance; one nobody acts on is never persisted."""
        return True


class Bus(ABC):
    @abstractmethod
    def publish(self, event: Event) -> None:
        """Deliver `event` (run its handlers, or hand it to Pub/Sub). Raises when delivery failed,
        so the caller keeps the event's outbox entry for redelivery."""

    def durable(self, event: Event) -> bool:
        """Whether this bus delivers `event` to a handler whose effect was promised (so the change
        must write it to the outbox). Wake-ups, and events a document trigger carries, are not."""
        return False
