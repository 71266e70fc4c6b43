"""The ASGI application: `/v1/mcp` behind API-key auth, and a health route for probes."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cachebash import __version__
from cachebash.config import Settings
from cachebash.domain.errors import Unauthenticated
from cachebash.interface import bench_routes, console_routes
from cachebash.interface.console_routes import ConsoleConfig, ConsoleRoutes
from cachebash.interface.fast_path import FastPath
from cachebash.interface.mcp_server import SERVER_NAME, build_mcp_server, make_runner
from cachebash.interface.owner_auth import OwnerAuth, SessionAuth
from cachebash.interface.tools import all_tools
from cachebash.services.keys import authenticate
from cachebash.services.runtime import Runtime

MCP_PATH = "/v1/mcp"
MAX_BODY_BYTES = 256 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class ApiKeyAuth:
    """Resolve the Bearer key before the MCP layer sees the request: an unknown or revoked
    key gets 401 and nothing runs. The resolved `Caller` rides in the ASGI scope's state."""

    def __init__(self, app: ASGIApp, runtime: Runtime, path: str = MCP_PATH, fast: FastPath | None = None) -> None:
        self.app = app
        self.runtime = runtime
        self.path = path
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == self.path:
            token = _bearer(scope)
            try:
                caller = authenticate(self.runtime, token)
            except Unauthenticated as exc:
                await _unauthorized(exc, scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = caller
            if self.fast is not None:
                await self.fast(scope, receive, send, caller)
                return
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


async def _unauthorized(exc: Unauthenticated, scope: Scope, receive: Receive, send: Send) -> None:
    body = {"success": False, "error": exc.to_dict()}
    response = Response(
        json.dumps(body), status_code=401, media_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="cachebash"'},
    )
    await response(scope, receive, send)


def _transport_security(host: str, allowed_hosts: tuple[str, ...]) -> TransportSecuritySettings:
    """DNS-rebinding protection stays on for a loopback bind; for other binds the allowed
    Host headers come from CACHEBASH_ALLOWED_HOSTS (comma-separated), or are not checked
    when it is unset, since every request must carry a valid API key anyway."""
    allowed = list(allowed_hosts)
    if host in LOCAL_HOSTS:
        allowed += ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    elif not allowed:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"http://{h}" for h in allowed] + [f"https://{h}" for h in allowed]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed, allowed_origins=origins
    )


def build_app(runtime: Runtime, *, host: str = "127.0.0.1", owner_auth: OwnerAuth | None = None,
              console: ConsoleConfig | None = None, settings: Settings | None = None) -> Any:
    """MCP for agents at /v1/mcp; the console and the owner API for the person (signed in with a
    console session unless `owner_auth` says otherwise, e.g. Firebase in the cloud)."""
    settings = settings or Settings.from_env()
    server = build_mcp_server(runtime)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    server.custom_route("/health", methods=["GET"])(health)
    owner = owner_auth or SessionAuth(runtime)
    console_routes.register(server, ConsoleRoutes(runtime, owner, console or ConsoleConfig()))
    if settings.bench_routes:
        bench_routes.register(server, runtime)

    security = _transport_security(host, settings.allowed_hosts)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        json_response=True,
        stateless_http=True,
        max_request_body_size=MAX_BODY_BYTES,
        transport_security=security,
        host=host,
    )
    fast = None
    if settings.fast_path:
        fast = FastPath(app, runtime, all_tools(), make_runner(runtime), path=MCP_PATH, security=security,
                        max_body=MAX_BODY_BYTES, server_info={"name": SERVER_NAME, "version": __version__})
    return ApiKeyAuth(app, runtime, fast=fast)
