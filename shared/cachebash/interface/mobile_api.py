"""The mobile app's HTTPS endpoints (the `keys` and `replies` functions): framework-neutral,
so a Cloud Function (Flask request) or any other server can call them.

The caller is the human signed in to the app: a Firebase ID token in `Authorization: Bearer`,
whose uid is the tenant. Nothing here accepts a tenant from the request body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cachebash.domain.errors import CacheBashError, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from cachebash.domain.inputs import parse
from cachebash.domain.programs import CreateKey
from cachebash.ports.identity import IdTokenVerifier, InvalidIdToken
from cachebash.services import keys, replies
from cachebash.services.runtime import Runtime

_STATUS = {InvalidInput: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


def _tenant(verifier: IdTokenVerifier, authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send the Firebase ID token as 'Authorization: Bearer <token>'")
    try:
        return verifier.verify(token.strip())
    except InvalidIdToken as exc:
        raise Unauthenticated(f"invalid Firebase ID token: {exc}") from None


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise InvalidInput("body: not valid JSON", field="body") from None
    if not isinstance(value, dict):
        raise InvalidInput("body: must be a JSON object", field="body")
    return value


def _guard(handler: Any, runtime: Runtime, verifier: IdTokenVerifier, request: Request) -> Reply:
    try:
        tenant = _tenant(verifier, request.authorization)
        return Reply(200, handler(runtime, tenant, request))
    except CacheBashError as exc:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        return Reply(status, {"success": False, "error": exc.to_dict()})


def _keys(runtime: Runtime, tenant: str, request: Request) -> dict[str, Any]:
    parts = [p for p in request.path.split("/") if p and p != "keys"]
    if request.method == "GET" and not parts:
        return keys.list_tenant_keys(runtime, tenant)
    if request.method == "POST" and not parts:
        return keys.create_owner_key(runtime, tenant, parse(CreateKey, _json(request.body)))
    if request.method == "DELETE" and len(parts) == 1:
        return keys.revoke_tenant_key(runtime, tenant, parts[0])
    raise NotFound(f"no route {request.method} {request.path}: use GET /, POST / or DELETE /<keyId>")


def _replies(runtime: Runtime, tenant: str, request: Request) -> dict[str, Any]:
    if request.method != "POST":
        raise NotFound(f"no route {request.method} {request.path}: POST a reply")
    return replies.reply(runtime, tenant, parse(replies.HumanReply, _json(request.body)))


def keys_endpoint(runtime: Runtime, verifier: IdTokenVerifier, request: Request) -> Reply:
    return _guard(_keys, runtime, verifier, request)


def replies_endpoint(runtime: Runtime, verifier: IdTokenVerifier, request: Request) -> Reply:
    return _guard(_replies, runtime, verifier, request)
