"""Which committed changes wake which waiting callers (see ports/signals), as a decorator on
whichever bus a runtime uses: an instance wakes its own waiters at once, in both runtimes;
other instances (Cloud Functions on one Firestore) find the change by their bounded poll."""

from __future__ import annotations

from typing import Any

from cachebash.ports.bus import Bus, Event
from cachebash.ports.signals import OWNER_KEY, Signals, inbox_key, interrupt_key, queue_key
from cachebash.services.events import MessagesDelivered, TaskQueued
from cachebash.services.runtime import Caller


def wake(signals: Signals, event: Event) -> None:
    signals.notify(event.tenant_id, [OWNER_KEY])  # any change may show on a console page that waits
    if isinstance(event, TaskQueued) and event.target:
        signals.notify(event.tenant_id, [queue_key(event.target), *([interrupt_key(event.target)] if event.interrupt
                                                                     else [])])
    elif isinstance(event, MessagesDelivered):
        signals.notify(event.tenant_id, [inbox_key(t) for t in event.targets])


class WakingBus(Bus):
    """Hands every event to `inner`, then wakes local waiters (also when the inner delivery
    failed: the change itself is committed either way)."""

    def __init__(self, inner: Bus, signals: Signals) -> None:
        self.inner = inner
        self.signals = signals

    def durable(self, event: Event) -> bool:
        return self.inner.durable(event)

    def publish(self, event: Event) -> None:
        try:
            self.inner.publish(event)
        finally:
            wake(self.signals, event)


def queue_keys(caller: Caller, cmd: Any) -> list[str]:
    """A queue waiter wakes for its own queue, or for every address that reaches the caller."""
    target = getattr(cmd, "target", None)
    return [queue_key(t) for t in ([target] if target else caller.addresses)]


def inbox_keys(caller: Caller, cmd: Any) -> list[str]:
    return [inbox_key(caller.program_id), *(interrupt_key(a) for a in caller.addresses)]
