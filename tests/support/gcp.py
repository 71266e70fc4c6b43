"""Payloads as GCP delivers them to Cloud Functions, and functions-framework's test client."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.adapters.pubsub_bus import attributes, encode, topic_id
from cachebash.ports.bus import Bus, Event
from support.id_tokens import PROJECT


class Outbox(InProcessBus):
    """What the cloud runtime would hand to Pub/Sub: recorded, not handled in-process."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.original: Bus | None = None

    def publish(self, event: Event) -> None:
        self.events.append(event)


MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")


def app(target: str, signature: str = "http") -> Any:
    import functions_framework

    return functions_framework.create_app(target, MAIN, signature).test_client()


def pubsub_event(event: Event, *, age_seconds: float = 0, message_id: str | None = None) -> dict[str, Any]:
    """A Pub/Sub `messagePublished` CloudEvent in binary content mode, as Eventarc delivers it."""
    message_id = message_id or uuid.uuid4().hex
    sent = datetime.fromtimestamp(datetime.now(UTC).timestamp() - age_seconds, UTC).isoformat().replace("+00:00", "Z")
    body = {
        "message": {
            "data": base64.b64encode(encode(event)).decode(),
            "attributes": attributes(event),
            "messageId": message_id,
            "publishTime": sent,
        },
        "subscription": f"projects/{PROJECT}/subscriptions/eventarc-{topic_id(event.topic)}",
    }
    headers = {
        "ce-id": message_id,
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic_id(event.topic)}",
        "ce-time": sent,
        "Content-Type": "application/json",
    }
    return {"headers": headers, "data": json.dumps(body)}


def raw_pubsub(data: bytes) -> dict[str, Any]:
    message_id = uuid.uuid4().hex
    body = {"message": {"data": base64.b64encode(data).decode(), "messageId": message_id}, "subscription": "s"}
    headers = {"ce-id": message_id, "ce-specversion": "1.0", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": "//pubsub.googleapis.com/projects/p/topics/t", "Content-Type": "application/json"}
    return {"headers": headers, "data": json.dumps(body)}
