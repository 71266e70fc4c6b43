"""The event catalogue: every kind of event a change can emit, its wire name and its route.

The route says who consumes an event in the cloud; embedded, every event is handled in-process
by the same handlers (`services/handlers.py`). The deploy plan (topics, Pub/Sub and Firestore
functions), `functions/main.py`'s targets and each Pub/Sub function's accepted events all derive
from this table, so a new event cannot be half-wired.

Wire names are kept from before this catalogue existed, so deployed topics and messages in
flight stay valid: `task.completed` is `TaskFinished` (it also carries failures, deaths and
expiries) and `task.created` is `TaskQueued` (also sent when a task is released or retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from cachebash.domain.sprint_tasks import parse_story_task_id
from cachebash.ports.bus import Event


@dataclass(frozen=True)
class Local:
    """Handled where it happens only: it wakes waiting callers (and console pages) of the
    instance that committed the change. Never persisted: a lost wake-up costs a poll, not an effect."""


@dataclass(frozen=True)
class PubSub:
    """Published to its own Pub/Sub topic, whose push triggers `function` (one topic per function)."""

    function: str


DocumentEvent = Literal["written", "created"]


@dataclass(frozen=True)
class DocumentTrigger:
    """In the cloud the document write itself is the event: Firestore (Eventarc) triggers `function`
    on every `event` (`created`, or `written`: any change) of a document under `pattern`, at least
    once, so the cloud bus neither persists nor publishes an event routed this way. A pattern names
    a collection whose writes the function always acts on, so no write starts it for nothing
    (`tests/functions/test_invocations.py` checks that against every tool)."""

    function: str
    pattern: str
    event: DocumentEvent = "written"

    @property
    def event_type(self) -> str:
        return f"google.cloud.firestore.document.v1.{self.event}"

    def matches(self, path: str, created: bool) -> bool:
        """Whether a write of the document at `path` (`created`: it did not exist) fires the function."""
        want, have = self.pattern.split("/"), path.split("/")
        return (created or self.event == "written") and len(want) == len(have) and all(
            w == h or (w.startswith("{") and w.endswith("}")) for w, h in zip(want, have, strict=True))


Route = Local | PubSub | DocumentTrigger
LOCAL = Local()


@dataclass(frozen=True)
class TaskQueued(Event):
    """A task became claimable: created, released, retried or handed to another target."""

    topic: ClassVar[str] = "task.created"
    route: ClassVar[Route] = LOCAL
    task_id: str
    target: str
    interrupt: bool = False  # an `interrupt` task: it also wakes the target's waiting get_messages


@dataclass(frozen=True)
class TaskFinished(Event):
    """A task reached a final status (completed, failed, skipped, cancelled, dead, expired)."""

    topic: ClassVar[str] = "task.completed"
    route: ClassVar[Route] = PubSub("sprint_sync")
    task_id: str
    status: str

    def needs_delivery(self) -> bool:
        return parse_story_task_id(self.task_id) is not None  # only a story's task moves anything


@dataclass(frozen=True)
class MulticastSent(Event):
    """A group message (or a notice from CacheBash) was recorded; its copies are still to be written."""

    topic: ClassVar[str] = "relay.multicast"
    route: ClassVar[Route] = PubSub("fanout")
    multicast_id: str


@dataclass(frozen=True)
class MessagesDelivered(Event):
    """Messages landed in these programs' inboxes."""

    topic: ClassVar[str] = "relay.delivered"
    route: ClassVar[Route] = LOCAL
    targets: list[str]


@dataclass(frozen=True)
class PushRequested(Event):
    """Something should reach the person's devices now: a question, a directive, an urgent task."""

    topic: ClassVar[str] = "push.requested"
    route: ClassVar[Route] = PubSub("interrupts")
    kind: str = ""
    ref: str = ""  # the task or message id


@dataclass(frozen=True)
class StoryChanged(Event):
    """A sprint story finished or was retried, so other stories may unlock. Published, not read
    off the story's own write: stories are also written when created, released and edited, and a
    trigger on them would run for every one of those writes to find nothing due."""

    topic: ClassVar[str] = "sprint.story_changed"
    route: ClassVar[Route] = PubSub("sprint_waves")
    sprint_id: str
    story_id: str


@dataclass(frozen=True)
class SweepDue(Event):
    """Housekeeping is due (Cloud Scheduler every minute; embedded, a timer calls the sweep directly)."""

    topic: ClassVar[str] = "sweeper.tick"
    route: ClassVar[Route] = PubSub("sweeper")


CATALOGUE: tuple[type[Event], ...] = (TaskQueued, TaskFinished, MulticastSent, MessagesDelivered, PushRequested,
                                      StoryChanged, SweepDue)
BY_TOPIC: dict[str, type[Event]] = {kind.topic: kind for kind in CATALOGUE}

#: Firestore-triggered functions that react to documents the phone app writes itself (no event
#: of ours announces them): an answer to a question task or a QUERY message, created in the
#: answers collection, where nothing else is ever created (`services/app_answers.py`).
APP_WRITE_TRIGGERS: tuple[DocumentTrigger, ...] = (
    DocumentTrigger("answered", "tenants/{tenant}/answers/{question}", "created"),
)


def route_of(kind: type[Event]) -> Route:
    return kind.route  # type: ignore[attr-defined, no-any-return]


def pubsub_functions() -> dict[str, tuple[type[Event], ...]]:
    """Each Pub/Sub-triggered function and the event kinds it accepts (it refuses any other)."""
    out: dict[str, tuple[type[Event], ...]] = {}
    for kind in CATALOGUE:
        route = route_of(kind)
        if isinstance(route, PubSub):
            out[route.function] = (*out.get(route.function, ()), kind)
    return out


def document_functions() -> dict[str, DocumentTrigger]:
    """Each Firestore-triggered function and the document trigger that fires it."""
    routed = [route for kind in CATALOGUE if isinstance(route := route_of(kind), DocumentTrigger)]
    return {trigger.function: trigger for trigger in (*routed, *APP_WRITE_TRIGGERS)}


def decode(topic: str, tenant_id: str, data: dict[str, object]) -> Event:
    """An event from its wire form; KeyError for an unknown topic or a missing fact."""
    return BY_TOPIC[topic].from_data(tenant_id, dict(data))
