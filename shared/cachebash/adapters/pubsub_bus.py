"""The bus on Google Cloud Pub/Sub: one topic per event kind that a Pub/Sub function consumes.

Events nobody handles through Pub/Sub (in-process wake-ups, changes a Firestore trigger
carries) are not published at all. The publish waits for Pub/Sub's acknowledgement; if it
fails, the event's outbox entry stays and the sweeper publishes it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cachebash.ports.bus import Bus, Event

TOPIC_PREFIX = "cachebash-"
PUBLISH_TIMEOUT_SECONDS = 30


def topic_id(topic: str) -> str:
    return TOPIC_PREFIX + topic.replace(".", "-")


def encode(event: Event) -> bytes:
    return json.dumps({"topic": event.topic, "tenantId": event.tenant_id, "data": event.data},
                      separators=(",", ":")).encode()


def attributes(event: Event) -> dict[str, str]:
    """Message attributes, for filtering and logs; the body carries the same and is authoritative."""
    return {"event": event.topic, "tenant": event.tenant_id}


class PubSubBus(Bus):
    def __init__(self, project: str, topics: Iterable[str], client: Any = None) -> None:
        self.project = project
        self.topics = frozenset(topics)
        self._client = client

    def _publisher(self) -> Any:
        if self._client is None:
            from google.cloud.pubsub_v1 import PublisherClient

            self._client = PublisherClient()
        return self._client

    def durable(self, event: Event) -> bool:
        return event.topic in self.topics

    def publish(self, event: Event) -> None:
        if event.topic not in self.topics or not event.needs_delivery():
            return
        client = self._publisher()
        path = client.topic_path(self.project, topic_id(event.topic))
        future = client.publish(path, encode(event), **attributes(event))
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
