"""Cloud Function entry points: one thin target per function, over the shared services.

Deployed by `cachebash deploy` (see README, "Deploy to Google Cloud"); each target only
decodes its trigger and calls `cachebash.cloud`.
"""

from __future__ import annotations

from typing import Any

import functions_framework
from functions_framework import aio

from cachebash import cloud


@aio.http
async def mcp(request: Any) -> Any:
    """HTTPS: the MCP endpoint at /v1/mcp (Streamable HTTP, stateless, Bearer API keys)."""
    return await cloud.on_mcp(request)


@functions_framework.http
def keys(request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """HTTPS for the mobile app: create, list and revoke the signed-in owner's API keys."""
    return cloud.on_keys(request)


@functions_framework.http
def replies(request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """HTTPS for the mobile app: the human answers a question or a message."""
    return cloud.on_replies(request)


# Pub/Sub: each consumes the events its route names in the catalogue (cachebash/services/events.py)
# and refuses any other; `cachebash.deploy.functions()` lists exactly the targets defined here.

@functions_framework.cloud_event
def fanout(cloud_event: Any) -> None:
    """MulticastSent: expand a group message into one copy per member."""
    cloud.on_pubsub("fanout", cloud_event)


@functions_framework.cloud_event
def interrupts(cloud_event: Any) -> None:
    """PushRequested: push urgent tasks, directives and questions to the owner's devices."""
    cloud.on_pubsub("interrupts", cloud_event)


@functions_framework.cloud_event
def sprint_sync(cloud_event: Any) -> None:
    """TaskFinished (of a sprint story's task): finish the story."""
    cloud.on_pubsub("sprint_sync", cloud_event)


@functions_framework.cloud_event
def sweeper(cloud_event: Any) -> None:
    """SweepDue (Cloud Scheduler): take back expired leases, close expired tasks, redeliver the outbox."""
    cloud.on_pubsub("sweeper", cloud_event)


@functions_framework.cloud_event
def sprint_waves(cloud_event: Any) -> None:
    """StoryChanged (a story finished or was retried): unlock the stories whose wave and dependencies are done."""
    cloud.on_pubsub("sprint_waves", cloud_event)


# Firestore: the document's creation is the event.

@functions_framework.cloud_event
def answered(cloud_event: Any) -> None:
    """Firestore (an answer created by the phone app): apply it to its question, so it reaches the asker."""
    cloud.on_answer_created(cloud_event)
