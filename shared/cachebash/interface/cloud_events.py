"""Turning what GCP delivers into our events, and running handlers the way Pub/Sub needs.

Pub/Sub delivers at least once and retries a function that raises. So: a message that can
never be decoded (poison), or whose event this function does not consume (mis-routed), is
logged and acknowledged, not retried; a handler failure is raised for a retry, until the
event is older than MAX_EVENT_AGE; then it is parked in the outbox (acknowledged, and
redelivered by the sweeper with a growing back-off), so a handler that keeps failing slows its
own retries down but loses nothing. Handlers are idempotent: a retry changes nothing twice.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from cachebash.ports.bus import Event
from cachebash.services.events import BY_TOPIC, pubsub_functions
from cachebash.services.handlers import HANDLERS
from cachebash.services.outbox import park
from cachebash.services.runtime import Runtime

log = logging.getLogger(__name__)

MAX_EVENT_AGE = timedelta(hours=1)


class PoisonMessage(ValueError):
    pass


def event_from_pubsub(cloud_event: Any) -> Event:
    try:
        message = cloud_event.data["message"]
        body = json.loads(base64.b64decode(message["data"]))
        topic = str(body.get("topic") or (message.get("attributes") or {})["event"])
        return BY_TOPIC[topic].from_data(str(body["tenantId"]), dict(body.get("data") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"undecodable Pub/Sub message {cloud_event['id']}: {exc!r}") from None


def _age(cloud_event: Any) -> timedelta:
    stamp = cloud_event["time"]
    if not stamp:
        return timedelta(0)
    sent = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return datetime.now(UTC) - sent


def dispatch_pubsub(runtime: Runtime, function: str, cloud_event: Any) -> str:
    """Run the handlers of an event `function` consumes. Returns 'handled', 'poison',
    'refused' (an event this function does not consume) or 'parked'."""
    try:
        event = event_from_pubsub(cloud_event)
    except PoisonMessage as exc:
        log.error("%s; acknowledged without retry", exc)
        return "poison"
    accepted = pubsub_functions().get(function, ())
    if type(event) not in accepted:
        log.error("function %s consumes %s, not %s (message %s); acknowledged without handling", function,
                  ", ".join(k.topic for k in accepted) or "nothing", event.topic, cloud_event["id"])
        return "refused"
    try:
        for handler in HANDLERS[type(event)]:
            handler(runtime, event)
    except Exception:
        if _age(cloud_event) > MAX_EVENT_AGE:
            log.exception("%s event %s still fails after %s; parked in the outbox for the sweeper", event.topic,
                          cloud_event["id"], MAX_EVENT_AGE)
            park(runtime, event)
            return "parked"
        raise
    return "handled"


def written_document(cloud_event: Any) -> list[str]:
    """The path segments (below `documents/`) of a `google.cloud.firestore.document.v1.*` event
    (created, written...), decoded from its protobuf `DocumentEventData`."""
    from google.events.cloud.firestore_v1 import DocumentEventData

    try:
        data = DocumentEventData.deserialize(cloud_event.data)
    except Exception as exc:  # protobuf raises several kinds; all mean the same here
        raise PoisonMessage(f"undecodable Firestore event {cloud_event['id']}: {exc!r}") from None
    name = str(data.value.name or data.old_value.name)
    return name.split("/documents/", 1)[-1].split("/")


def answer_created(cloud_event: Any) -> tuple[str, str] | None:
    """(tenant, question id) of an answer document the app created; None for any other document."""
    parts = written_document(cloud_event)
    if len(parts) == 4 and parts[0] == "tenants" and parts[2] == "answers":
        return parts[1], parts[3]
    return None
