"""Pub/Sub as the deploy wires it: a topic per consumed event topic, a push subscription from
each topic to the function that consumes it (what `--trigger-topic` makes in the cloud), and a
timer publishing the Cloud Scheduler job's message on the sweeper topic.

Everything is read from `cachebash.deploy` at run time, so the local topology follows the
deploy plan when it changes. functions-framework turns a raw push body
(`{"message": {...}, "subscription": ...}`) into the `messagePublished` CloudEvent the targets
take, so the push goes straight to the function, with no converter in between.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cachebash import deploy
from cachebash.adapters.pubsub_bus import topic_id

log = logging.getLogger(__name__)

#: Long enough for a sweep on the Firestore emulator; a push not answered by then is redelivered.
ACK_DEADLINE_SECONDS = 60


@dataclass(frozen=True)
class Subscription:
    """One push subscription: `function` consumes the Pub/Sub topic `topic`."""

    function: str
    topic: str
    name: str


def subscriptions() -> list[Subscription]:
    """One per (function, consumed topic) of `deploy.PUBSUB_FUNCTIONS`."""
    return [Subscription(function, topic_id(topic), f"cloud-local-{function}-{topic_id(topic)}")
            for function, consumed in deploy.PUBSUB_FUNCTIONS.items() for topic in consumed]


def create_push_subscriptions(project: str, function_urls: Mapping[str, str]) -> list[Subscription]:
    """Create every topic and push subscription (or re-point existing ones, on an emulator that
    was already running). The push URL names the topic, as functions-framework reads it from there."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    made = subscriptions()
    try:
        for topic in sorted({s.topic for s in made}):
            with suppress(AlreadyExists):
                publisher.create_topic(name=publisher.topic_path(project, topic))
        for sub in made:
            path = subscriber.subscription_path(project, sub.name)
            push = {"push_endpoint": f"{function_urls[sub.function]}/projects/{project}/topics/{sub.topic}"}
            try:
                subscriber.create_subscription(request={
                    "name": path, "topic": publisher.topic_path(project, sub.topic), "push_config": push,
                    "ack_deadline_seconds": ACK_DEADLINE_SECONDS})
            except AlreadyExists:
                subscriber.modify_push_config(request={"subscription": path, "push_config": push})
    finally:
        subscriber.close()
        _close(publisher)
    return made


def scheduler_job(project: str) -> tuple[str, bytes]:
    """(Pub/Sub topic, message body) of the Cloud Scheduler job in `deploy.plan()`."""
    for command in deploy.plan(deploy.Target(project, "local")):
        if command[:5] == ["gcloud", "scheduler", "jobs", "create", "pubsub"]:
            flags = dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)
            return flags["topic"], flags["message-body"].encode()
    log.warning("deploy.plan() has no Cloud Scheduler job; ticking %s with the default body", deploy.SWEEP_TOPIC)
    return topic_id(deploy.SWEEP_TOPIC), json.dumps({"topic": deploy.SWEEP_TOPIC, "tenantId": "-"}).encode()


class Scheduler:
    """Plays Cloud Scheduler: publishes the job's message every `interval` seconds."""

    def __init__(self, project: str, interval: float) -> None:
        self.topic, self.body = scheduler_job(project)
        self.project = project
        self.interval = interval
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloud-local-scheduler", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No tick after this returns; a publish in flight is left to finish on its own (daemon) thread."""
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient()
        path = publisher.topic_path(self.project, self.topic)
        try:
            while not self._stop.wait(self.interval):
                try:
                    publisher.publish(path, self.body).result(timeout=30)
                    self.ticks += 1
                except Exception:  # a missed tick is what Cloud Scheduler does too; the next one comes
                    log.exception("scheduler tick on %s failed", self.topic)
        finally:
            _close(publisher)


def _close(publisher: Any) -> None:
    """Flush and stop the publisher's batching thread, then close its channel."""
    publisher.stop()
    publisher.transport.close()
