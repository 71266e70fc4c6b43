"""Which service reacts to which event. The in-process bus and the Pub/Sub-triggered
functions both dispatch through this one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachebash.ports.bus import Event
from cachebash.services import interrupts, relay, sprint_flow, tasks
from cachebash.services.runtime import Runtime

EventHandler = Callable[[Runtime, Event], Any]

HANDLERS: dict[str, list[EventHandler]] = {
    relay.MULTICAST_TOPIC: [relay.fan_out],
    interrupts.PUSH_TOPIC: [interrupts.deliver_push],
    # Sprints: a story's task finishing finishes the story; a story finishing may unlock others.
    tasks.TASK_FINISHED: [sprint_flow.sync_story],
    sprint_flow.STORY_CHANGED: [sprint_flow.on_story_changed],
}
