"""Which committed changes wake which waiting callers (see ports/signals)."""

from __future__ import annotations

from typing import Any

from cachebash.ports.bus import Event
from cachebash.ports.signals import OWNER_KEY, Signals, inbox_key, queue_key
from cachebash.services.relay import MESSAGES_DELIVERED
from cachebash.services.runtime import Caller
from cachebash.services.tasks import TASK_QUEUED


def wake(signals: Signals, event: Event) -> None:
    signals.notify(event.tenant_id, [OWNER_KEY])  # any change may show on a console page that waits
    if event.topic == TASK_QUEUED and event.data.get("target"):
        signals.notify(event.tenant_id, [queue_key(event.data["target"])])
    elif event.topic == MESSAGES_DELIVERED:
        signals.notify(event.tenant_id, [inbox_key(t) for t in event.data.get("targets", [])])


WAKING_TOPICS = (TASK_QUEUED, MESSAGES_DELIVERED)


def queue_keys(caller: Caller, cmd: Any) -> list[str]:
    """A queue waiter wakes for its own queue, or for every address that reaches the caller."""
    target = getattr(cmd, "target", None)
    return [queue_key(t) for t in ([target] if target else caller.addresses)]


def inbox_keys(caller: Caller, cmd: Any) -> list[str]:
    return [inbox_key(caller.program_id)]
