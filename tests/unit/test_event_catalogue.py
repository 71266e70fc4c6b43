"""The event catalogue is the one place events are declared: every kind has a route, every
kind with a consumer has a handler, and the wire form round-trips."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from cachebash import deploy
from cachebash.adapters.pubsub_bus import encode
from cachebash.ports.bus import Event
from cachebash.services.events import (
    BY_TOPIC,
    CATALOGUE,
    DocumentTrigger,
    Local,
    PubSub,
    decode,
    pubsub_functions,
    route_of,
)
from cachebash.services.handlers import HANDLERS


def sample(kind: type[Event]) -> Event:
    values = {f.name: (["p1", "p2"] if f.name == "targets" else f"{f.name}-1") for f in fields(kind)
              if f.name != "tenant_id"}
    return kind("tenant-1", **values)


@pytest.mark.parametrize("kind", CATALOGUE, ids=lambda k: k.topic)
def test_every_event_has_a_route_and_a_handler(kind: type[Event]) -> None:
    route = route_of(kind)
    assert isinstance(route, Local | PubSub | DocumentTrigger)
    if isinstance(route, Local):
        assert kind not in HANDLERS, "a local event only wakes waiters (services/wakeups.py)"
    else:
        assert HANDLERS.get(kind), f"{kind.topic} is routed to {route} but nothing handles it"


@pytest.mark.parametrize("kind", CATALOGUE, ids=lambda k: k.topic)
def test_the_wire_form_round_trips(kind: type[Event]) -> None:
    event = sample(kind)
    body = json.loads(encode(event))
    assert decode(body["topic"], body["tenantId"], body["data"]) == event
    assert all(name[0].islower() and "_" not in name for name in body["data"]), "camelCase on the wire"


def test_topics_are_unique_and_each_pubsub_function_has_one() -> None:
    assert len(BY_TOPIC) == len(CATALOGUE)
    assert all(len(kinds) == 1 for kinds in pubsub_functions().values()), "a gen2 function has one trigger topic"


def test_the_deploy_plan_derives_from_the_catalogue() -> None:
    derived = {name: tuple(k.topic for k in kinds) for name, kinds in pubsub_functions().items()}
    assert derived == deploy.PUBSUB_FUNCTIONS
    documented = {route.function: route for k in CATALOGUE if isinstance(route := route_of(k), DocumentTrigger)}
    assert documented.items() <= deploy.FIRESTORE_FUNCTIONS.items()
    assert not set(deploy.FIRESTORE_FUNCTIONS) & set(deploy.PUBSUB_FUNCTIONS), "a function has one trigger"
    assert not set(deploy.RETIRED_FUNCTIONS) & set(deploy.functions())
    assert json.loads(deploy.scheduler_body())["topic"] == deploy.SWEEP_TOPIC
