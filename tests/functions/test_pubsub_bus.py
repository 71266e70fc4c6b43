"""The Pub/Sub bus against Google's Pub/Sub emulator: what it publishes is exactly what the
triggered functions decode."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cloudevents.http import CloudEvent

from cachebash.adapters.pubsub_bus import PubSubBus, topic_id
from cachebash.interface.cloud_events import event_from_pubsub
from cachebash.services.events import MessagesDelivered, MulticastSent
from support import pubsub_emulator

PROJECT = "demo-cachebash"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    if reason := pubsub_emulator.unavailable():
        pytest.skip(reason)
    with pubsub_emulator.pubsub_emulator() as host:
        yield host


def test_published_events_round_trip_through_pubsub(emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, topic_id("relay.multicast"))
    publisher.create_topic(name=topic)
    subscription = subscriber.subscription_path(PROJECT, "fanout-test")
    subscriber.create_subscription(name=subscription, topic=topic)

    bus = PubSubBus(PROJECT, {"relay.multicast"}, client=publisher)
    sent = MulticastSent("tenant-1", multicast_id="m-1")
    bus.publish(sent)
    bus.publish(MessagesDelivered("tenant-1", targets=["x"]))  # local only: not published

    pulled = subscriber.pull(subscription=subscription, max_messages=10, timeout=10).received_messages
    assert len(pulled) == 1
    message = pulled[0].message
    assert dict(message.attributes) == {"event": "relay.multicast", "tenant": "tenant-1"}
    delivered = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": f"//pubsub.googleapis.com/{topic}"},
        {"message": {"data": base64.b64encode(message.data).decode(), "attributes": dict(message.attributes),
                     "messageId": message.message_id}},
    )
    assert event_from_pubsub(delivered) == sent
    subscriber.close()
