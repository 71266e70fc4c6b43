"""The phone app's `keys` and `replies` functions: the owner API (`owner_api`) under the paths
those functions have always had, so the phone, the console and scripts share one API.

The caller is the human signed in to the app: a Firebase ID token in `Authorization: Bearer`,
whose uid is the tenant. Nothing here accepts a tenant from the request body.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachebash.domain.errors import CacheBashError
from cachebash.interface import owner_api
from cachebash.interface.owner_api import OwnerRequest, Reply
from cachebash.interface.owner_auth import FirebaseAuth
from cachebash.ports.identity import IdTokenVerifier
from cachebash.services.runtime import Runtime

__all__ = ["Reply", "Request", "keys_endpoint", "replies_endpoint"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str | None
    body: bytes


def _serve(runtime: Runtime, verifier: IdTokenVerifier, request: Request, owner_path: str) -> Reply:
    try:
        owner = FirebaseAuth(verifier).identify(None, request.authorization)
    except CacheBashError as exc:
        return owner_api.error_reply(exc)
    return owner_api.dispatch(runtime, owner.tenant_id, OwnerRequest(request.method, owner_path, {}, request.body))


def keys_endpoint(runtime: Runtime, verifier: IdTokenVerifier, request: Request) -> Reply:
    """`GET /`, `POST /`, `DELETE /<keyId>`, `POST /<keyId>/rotate`: the owner API's `/keys` routes."""
    rest = "/".join(p for p in request.path.split("/") if p and p != "keys")
    return _serve(runtime, verifier, request, "/keys" + (f"/{rest}" if rest else ""))


def replies_endpoint(runtime: Runtime, verifier: IdTokenVerifier, request: Request) -> Reply:
    """`POST /`: the owner API's `/replies`."""
    return _serve(runtime, verifier, request, "/replies")
