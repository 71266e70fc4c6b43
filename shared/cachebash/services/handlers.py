"""Which service reacts to which event. The in-process bus and the Pub/Sub-triggered
functions both dispatch through this one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachebash.ports.bus import Event
from cachebash.services import interrupts, relay
from cachebash.services.runtime import Runtime

EventHandler = Callable[[Runtime, Event], Any]

HANDLERS: dict[str, list[EventHandler]] = {
    relay.MULTICAST_TOPIC: [relay.fan_out],
    interrupts.PUSH_TOPIC: [interrupts.deliver_push],
}
