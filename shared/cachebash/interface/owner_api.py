"""The owner API: what the person who runs the fleet can see and do, as JSON routes under
`/v1/owner`. The console, the phone app's `keys`/`replies` functions and scripts all go
through this one table, so they cannot behave differently.

Framework-neutral (a method, a path, a query, a body in; a status and a JSON body out): the
embedded server and the Cloud Functions adapt their requests to it. Who the owner is (the
tenant) is decided before this module runs, from a console session or a Firebase ID token,
never from the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field

from cachebash.domain.errors import (
    CacheBashError,
    Code,
    Conflict,
    Contention,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from cachebash.domain.inputs import ID_PATTERN, Input, LongText, Name, ShortText, parse
from cachebash.domain.messages import MessageType, SendMessage
from cachebash.domain.programs import CreateKey
from cachebash.domain.sprints import SprintRef, UpdateSprintStory
from cachebash.domain.tasks import Action, CreateTask, Priority, TaskType
from cachebash.interface import plan_api
from cachebash.interface.client_configs import shown_once
from cachebash.services import fleet, inbox, keys, owner_tasks, relay, replies, sprint_board, sprints, tasks
from cachebash.services.owner_tasks import owner_caller
from cachebash.services.rate_limits import admit_owner
from cachebash.services.runtime import Runtime

PREFIX = "/v1/owner"
_STATUS = {InvalidInput: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, LimitExceeded: 429,
           RateLimited: 429, Contention: 503}


@dataclass(frozen=True)
class OwnerRequest:
    method: str
    path: str  # below PREFIX, e.g. "/tasks/abc/cancel"
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    mcp_url: str = "http://127.0.0.1:8080/v1/mcp"  # shown in the configs of a new key


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class OwnerMessage(Input):
    target: Name = Field(description="Program or group to tell.")
    message: LongText = Field(min_length=1)
    message_type: MessageType = MessageType.DIRECTIVE
    priority: Priority = Priority.NORMAL
    threadId: ShortText | None = None


class OwnerTask(Input):
    """The `create_task` fields a person sets; the rest take the agents' defaults."""

    title: str
    target: str
    instructions: str | None = None
    priority: Priority = Priority.NORMAL
    action: Action = Action.QUEUE
    type: TaskType = TaskType.TASK


class StoryDecision(Input):
    status: str = Field(pattern="^(skipped|queued)$", description="skipped, or queued to retry a failed story.")


class Device(Input):
    token: str = Field(min_length=1, max_length=4096, description="The browser's FCM registration token.")
    platform: ShortText = "web"


class UsageWindow(Input):
    model_config = ConfigDict(strict=False)  # `days` arrives as query-string text

    days: int = Field(30, ge=1, le=366)


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise InvalidInput("body: not valid JSON", field="body") from None
    if not isinstance(value, dict):
        raise InvalidInput("body: must be a JSON object", field="body")
    return value


Handler = Callable[[Runtime, str, OwnerRequest, "re.Match[str]"], dict[str, Any]]


def _send_message(rt: Runtime, tenant: str, req: OwnerRequest, _: re.Match[str]) -> dict[str, Any]:
    cmd = parse(OwnerMessage, _json(req.body))
    if cmd.message_type not in (MessageType.DIRECTIVE, MessageType.STATUS):
        raise InvalidInput("message_type: the person sends DIRECTIVE or STATUS (answer questions in the inbox)",
                           field="message_type")
    return relay.send_message(rt, owner_caller(tenant), parse(SendMessage, cmd.model_dump(mode="json")))


def _create_task(rt: Runtime, tenant: str, req: OwnerRequest, _: re.Match[str]) -> dict[str, Any]:
    fields = parse(OwnerTask, _json(req.body)).model_dump(mode="json", exclude_none=True)
    return tasks.create_task(rt, owner_caller(tenant), parse(CreateTask, fields))


def _board(rt: Runtime, tenant: str, req: OwnerRequest, _: re.Match[str]) -> dict[str, Any]:
    shown = {k: v for k, v in req.query.items() if k in owner_tasks.BoardFilter.model_fields and v}
    return owner_tasks.board(rt, tenant, parse(owner_tasks.BoardFilter, shown))


def _story(rt: Runtime, tenant: str, req: OwnerRequest, m: re.Match[str]) -> dict[str, Any]:
    decision = parse(StoryDecision, _json(req.body))
    cmd = parse(UpdateSprintStory, {"sprintId": m["id"], "storyId": m["story"], "status": decision.status})
    return sprints.update_sprint_story(rt, owner_caller(tenant), cmd)


def _create_key(rt: Runtime, tenant: str, req: OwnerRequest, _: re.Match[str]) -> dict[str, Any]:
    return shown_once(keys.create_owner_key(rt, tenant, parse(CreateKey, _json(req.body))), req.mcp_url)


def _register_device(rt: Runtime, tenant: str, req: OwnerRequest, _: re.Match[str]) -> dict[str, Any]:
    from cachebash.services.devices import register

    device = parse(Device, _json(req.body))
    return register(rt, tenant, device.token, device.platform)


def _usage(rt: Runtime, tenant: str, req: OwnerRequest, _: re.Match[str]) -> dict[str, Any]:
    from cachebash.interface.charts import usage_charts
    from cachebash.services import usage, usage_report

    window = parse(UsageWindow, {k: v for k, v in req.query.items() if k == "days"})
    summary = usage.summary(rt, tenant, days=window.days)
    return {**summary, "charts": usage_charts(summary), **usage_report.plan_and_quota(rt, tenant)}


_ID = f"(?P<id>{ID_PATTERN.strip('^$')})"  # the ids tools accept (domain/inputs.py), not one more

# (method, path pattern, handler, whether it is a view that long polling may wait on)
ROUTES: list[tuple[str, re.Pattern[str], Handler, bool]] = [(m, re.compile(f"^{p}$"), h, v) for m, p, h, v in [
    ("GET", "/inbox", lambda rt, t, r, m: inbox.inbox(rt, t), True),
    ("GET", "/counts", lambda rt, t, r, m: inbox.open_count(rt, t), True),
    ("POST", "/replies", lambda rt, t, r, m: replies.reply(rt, t, parse(replies.HumanReply, _json(r.body))), False),
    ("POST", "/messages", _send_message, False),
    ("GET", "/tasks", _board, True),
    ("POST", "/tasks", _create_task, False),
    ("GET", f"/tasks/{_ID}", lambda rt, t, r, m: owner_tasks.detail(rt, t, m["id"]), True),
    ("POST", f"/tasks/{_ID}/cancel",
     lambda rt, t, r, m: owner_tasks.cancel(rt, t, m["id"], parse(owner_tasks.CancelTask, _json(r.body))), False),
    ("POST", f"/tasks/{_ID}/retry", lambda rt, t, r, m: owner_tasks.retry(rt, t, m["id"]), False),
    ("POST", f"/tasks/{_ID}/reassign",
     lambda rt, t, r, m: owner_tasks.reassign(rt, t, m["id"], parse(owner_tasks.Reassign, _json(r.body))), False),
    ("GET", "/sprints", lambda rt, t, r, m: sprint_board.sprints(rt, t), True),
    ("GET", f"/sprints/{_ID}",
     lambda rt, t, r, m: sprints.get_sprint(rt, owner_caller(t), parse(SprintRef, {"sprintId": m["id"]})), True),
    ("POST", f"/sprints/{_ID}/stories/(?P<story>[A-Za-z0-9_.-]{{1,64}})", _story, False),
    ("GET", "/agents", lambda rt, t, r, m: fleet.agents(rt, t), True),
    ("GET", "/keys", lambda rt, t, r, m: keys.list_tenant_keys(rt, t), True),
    ("POST", "/keys", _create_key, False),
    ("DELETE", f"/keys/{_ID}", lambda rt, t, r, m: keys.revoke_tenant_key(rt, t, m["id"]), False),
    ("POST", f"/keys/{_ID}/rotate",
     lambda rt, t, r, m: shown_once(keys.rotate_tenant_key(rt, t, m["id"]), r.mcp_url), False),
    ("POST", "/devices", _register_device, False),
    ("GET", "/usage", _usage, True),
    ("GET", "/plan", lambda rt, t, r, m: plan_api.show(rt, t), True),
    ("PUT", "/plan", lambda rt, t, r, m: plan_api.change(rt, t, _json(r.body)), False),
]]


def route(req: OwnerRequest) -> tuple[Handler, re.Match[str], bool]:
    """The handler for a request, or NotFound naming what exists at that path."""
    path = req.path.rstrip("/") or "/"
    allowed = []
    for method, pattern, handler, view in ROUTES:
        if match := pattern.match(path):
            if method == req.method:
                return handler, match, view
            allowed.append(method)
    if allowed:
        raise NotFound(f"{req.method} is not allowed on {PREFIX}{path}; use {' or '.join(allowed)}",
                       code=Code.METHOD_NOT_ALLOWED)
    raise NotFound(f"no owner route {req.method} {PREFIX}{path} (see the README, 'Owner API')")


def status_of(exc: CacheBashError) -> int:
    if exc.code == Code.METHOD_NOT_ALLOWED:
        return 405
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)


def error_reply(exc: CacheBashError) -> Reply:
    return Reply(status_of(exc), {"success": False, "error": exc.to_dict()})


def headers(reply: Reply) -> dict[str, str]:
    """Retry-After on a refusal that says when to come back (429 over a rate limit, 503 contention)."""
    retry = reply.body.get("error", {}).get("retryAfterSeconds") if reply.status in (429, 503) else None
    return {"Retry-After": str(retry)} if retry else {}


def dispatch(rt: Runtime, tenant_id: str, req: OwnerRequest, *, count: bool = True) -> Reply:
    """Run one owner request for an already authenticated tenant; `count=False` for the later
    looks of a long poll, which counts once against the owner's rate limit."""
    try:
        handler, match, _ = route(req)
        if count:
            admit_owner(rt, tenant_id)
        return Reply(200, handler(rt, tenant_id, req, match))
    except CacheBashError as exc:
        return error_reply(exc)
