"""Which service reacts to which event. The in-process bus and the Pub/Sub-triggered
functions both dispatch through this one table; every event kind of the catalogue that is
not local has an entry (tests/unit/test_event_catalogue.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachebash.ports.bus import Event
from cachebash.services import interrupts, relay, sprint_flow, sweeper
from cachebash.services.events import MulticastSent, PushRequested, StoryChanged, SweepDue, TaskFinished
from cachebash.services.runtime import Runtime

EventHandler = Callable[[Runtime, Any], Any]


def _sweep(rt: Runtime, _: SweepDue) -> dict[str, int]:
    return sweeper.sweep(rt)


HANDLERS: dict[type[Event], list[EventHandler]] = {
    MulticastSent: [relay.fan_out],
    PushRequested: [interrupts.deliver_push],
    # Sprints: a story's task finishing finishes the story; a story finishing may unlock others.
    TaskFinished: [sprint_flow.sync_story],
    StoryChanged: [sprint_flow.on_story_changed],
    SweepDue: [_sweep],
}
