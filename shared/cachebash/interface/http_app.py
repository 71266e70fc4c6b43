"""The ASGI application: `/v1/mcp` behind API-key auth, and a health route for probes.

`ApiKeyAuth` is the edge every request passes: it answers every refusal as JSON (`refusals`),
turns an unexpected exception into an `INTERNAL` error with a request id that is also logged,
and for `/v1/mcp` takes POST only (stateless: no GET stream), resolves the key, reads the body
(at most MAX_BODY_BYTES) and refuses JSON that is not strict (`wire_json`) before the fast path
or the MCP SDK sees it, so both read the same, finite, values.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cachebash import __version__
from cachebash.domain.errors import Forbidden, Unauthenticated
from cachebash.interface import bench_routes, refusals, wire_json
from cachebash.interface.fast_path import FastPath
from cachebash.interface.health import PATH as HEALTH_PATH
from cachebash.interface.health import health_body
from cachebash.interface.lazy_app import LazyApp
from cachebash.interface.metrics import CONTENT_TYPE, Metrics, is_error, tool_of
from cachebash.interface.protocol import SERVER_NAME, TransportSecurity
from cachebash.interface.tool_calls import make_runner
from cachebash.interface.tools import ToolSpec, all_tools
from cachebash.services.keys import authenticate
from cachebash.services.runtime import Caller, Runtime

if TYPE_CHECKING:
    from cachebash.interface.console_config import ConsoleConfig
    from cachebash.interface.owner_auth import OwnerAuth

log = logging.getLogger(__name__)

MCP_PATH = "/v1/mcp"
MAX_BODY_BYTES = 256 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class HttpSettings(Protocol):
    """What the HTTP app reads of `cachebash.config.Settings` (passed down, never read here)."""

    @property
    def fast_path(self) -> bool: ...

    @property
    def bench_routes(self) -> bool: ...

    @property
    def allowed_hosts(self) -> tuple[str, ...]: ...

    @property
    def metrics(self) -> bool: ...


class ApiKeyAuth:
    """Resolve the Bearer key before the MCP layer sees the request: an unknown or revoked
    key gets 401 and nothing runs. The resolved `Caller` rides in the ASGI scope's state.
    `sdk` serves `path` (the MCP SDK, built when first needed), `app` every other path (a
    Starlette app whose lifespan the host must run)."""

    def __init__(self, app: ASGIApp, runtime: Runtime, *, sdk: ASGIApp, path: str = MCP_PATH,
                 fast: FastPath | None = None, max_body: int = MAX_BODY_BYTES, metrics: Metrics | None = None) -> None:
        self.app = app
        self.sdk = sdk
        self.runtime = runtime
        self.path = path
        self.fast = fast
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder = refusals.JsonRefusals(send, scope["method"], scope["path"])
        try:
            if scope["path"].rstrip("/") == self.path:
                await self._mcp(scope, receive, responder)
            else:
                await self.app(scope, receive, responder)
        except Exception as exc:
            request_id = responder.request_id or refusals.new_request_id()
            log.error("Unexpected error in %s %s (requestId=%s)", scope["method"], scope["path"], request_id,
                      exc_info=exc)
            if not responder.started:
                error = refusals.internal_error(f"{scope['method']} {scope['path']}", request_id)
                await refusals.send_error(responder, 500, error.message, requestId=request_id)
            elif not responder.complete:
                raise  # half an answer is out: let the server close the connection

    async def _mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await refusals.send_error(send, 405, f"{self.path} takes POST only: this server is stateless and "
                                      "offers no GET event stream", headers={"Allow": "POST"})
            return
        try:
            caller = await self._authenticate(_bearer(scope))
        except Unauthenticated as exc:
            await _unauthorized(exc, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        if (declared := _content_length(scope)) is not None and declared > self.max_body:
            await self._too_large(send)
            return
        body = _Body()
        raw = await body.read(receive, self.max_body)
        if raw is None:
            if body.too_large:
                await self._too_large(send)
            return  # the client went away
        try:
            request = wire_json.loads(raw)
        except wire_json.NotStrictJson as exc:
            await _parse_error(send, exc.message)
            return
        except wire_json.NotJson:
            request = None  # the SDK refuses it in its own words
        replay = body.replay(receive)
        if self.metrics is not None and (tool := tool_of(request)) is not None:
            send = _Timed(send, self.metrics, tool)
        if self.fast is not None and request is not None:
            await self.fast(scope, replay, send, caller, request)
        else:
            await self.sdk(scope, replay, send)

    async def _authenticate(self, token: str | None) -> Caller:
        if self.runtime.store.blocking_io:
            return await anyio.to_thread.run_sync(authenticate, self.runtime, token)
        return authenticate(self.runtime, token)

    async def _too_large(self, send: Send) -> None:
        await refusals.send_error(send, 413, f"the request body is larger than {self.max_body} bytes",
                                  close=True, maxBytes=self.max_body)


class _Timed:
    """A tool call's answer on its way out: its time and whether it is an error, for the metrics."""

    def __init__(self, send: Send, metrics: Metrics, tool: str) -> None:
        self.send, self.metrics, self.tool = send, metrics, tool
        self.started = time.perf_counter()
        self.parts: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body":
            self.parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.metrics.tool_call(self.tool, time.perf_counter() - self.started,
                                       getattr(self, "status", 500) >= 400 or is_error(self.parts))
        await self.send(message)


class _Body:
    """The request messages read so far, to hand on as if nothing had been read."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.too_large = False

    async def read(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None when it is larger than `limit` or the client went away."""
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            self.messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                self.too_large = True
                return None
            if not message.get("more_body", False):
                return b"".join(m.get("body", b"") for m in self.messages)

    def replay(self, receive: Receive) -> Receive:
        pending = list(reversed(self.messages))

        async def replayed() -> Message:
            return pending.pop() if pending else await receive()

        return replayed


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _unauthorized(exc: Unauthenticated, send: Send) -> None:
    details = {k: v for k, v in exc.to_dict().items() if k not in ("code", "message")}
    await refusals.send_error(send, 401, exc.message, headers={"WWW-Authenticate": 'Bearer realm="cachebash"'},
                              **details)


async def _parse_error(send: Send, message: str) -> None:
    body = wire_json.parse_error(message)
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _transport_security(host: str, allowed_hosts: tuple[str, ...]) -> TransportSecurity:
    """DNS-rebinding protection stays on for a loopback bind; for other binds the allowed
    Host headers come from CACHEBASH_ALLOWED_HOSTS (comma-separated), or are not checked
    when it is unset, since every request must carry a valid API key anyway."""
    allowed = list(allowed_hosts)
    if host in LOCAL_HOSTS:
        allowed += ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    elif not allowed:
        return TransportSecurity(enabled=False)
    origins = [f"http://{h}" for h in allowed] + [f"https://{h}" for h in allowed]
    return TransportSecurity(enabled=True, allowed_hosts=allowed, allowed_origins=origins)


class _Routes:
    """Collects routes through the SDK server's `custom_route` interface (what `console_routes`
    and `bench_routes` register with), for an app of our own."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def custom_route(self, path: str, methods: list[str]) -> Any:
        def add(endpoint: Any) -> Any:
            self.routes.append(Route(path, endpoint, methods=methods))
            return endpoint

        return add


def build_app(runtime: Runtime, *, settings: HttpSettings, host: str = "127.0.0.1",
              owner_auth: OwnerAuth | None = None, console: ConsoleConfig | None = None,
              tools: list[ToolSpec] | None = None, sdk_when_needed: bool = False) -> ApiKeyAuth:
    """MCP for agents at /v1/mcp; the console and the owner API for the person (signed in with a
    console session unless `owner_auth` says otherwise, e.g. Firebase in the cloud). `tools`
    defaults to every tool (`all_tools()`).

    The MCP SDK's app and the console are built when a request first needs them (the fast path
    answers most tool calls without the SDK), or, unless `sdk_when_needed` (a Cloud Function's
    cold start), when the app's lifespan starts."""
    tools = all_tools() if tools is None else tools
    security = _transport_security(host, settings.allowed_hosts)

    def build_sdk() -> tuple[ASGIApp, Any]:
        from cachebash.interface.mcp_server import build_sdk_app

        app = build_sdk_app(runtime, tools, path=MCP_PATH, security=security, host=host, max_body=MAX_BODY_BYTES)
        return app, app

    def build_console() -> tuple[ASGIApp, Any]:
        from cachebash.interface import console_routes
        from cachebash.interface.console_config import ConsoleConfig
        from cachebash.interface.owner_auth import SessionAuth

        table = _Routes()
        console_routes.register(table, console_routes.ConsoleRoutes(runtime, owner_auth or SessionAuth(runtime),
                                                                    console or ConsoleConfig()))
        app = Starlette(routes=table.routes)
        return app, app

    sdk, person = LazyApp(build_sdk), LazyApp(build_console)
    edge = _edge(runtime, settings, [spec.name for spec in tools], host, person, [sdk, person],
                 warm=not sdk_when_needed)
    fast = None
    if settings.fast_path:
        fast = FastPath(sdk, runtime, tools, make_runner(runtime), path=MCP_PATH, security=security,
                        server_info={"name": SERVER_NAME, "version": __version__})
    return ApiKeyAuth(edge.app, runtime, sdk=sdk, fast=fast, metrics=edge.metrics)


class _Edge(NamedTuple):
    app: Starlette
    metrics: Metrics | None


def _edge(runtime: Runtime, settings: HttpSettings, tool_names: list[str], host: str, rest: LazyApp,
          lazy: list[LazyApp], *, warm: bool) -> _Edge:
    """Every path but /v1/mcp: health, metrics and the bench routes here; anything else (the
    console, the owner API, a 404) in `rest`. Its lifespan builds the `lazy` apps at startup
    when `warm`, and closes them at shutdown."""
    async def health(_: Request) -> Response:
        return JSONResponse(health_body(runtime))

    table = _Routes()
    table.custom_route(HEALTH_PATH, methods=["GET"])(health)
    if settings.bench_routes:
        bench_routes.register(table, runtime)
    metrics = None
    if settings.metrics:
        metrics = Metrics(runtime, tool_names)
        table.custom_route("/metrics", methods=["GET"])(_metrics_route(runtime, metrics, host))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for app in lazy if warm else []:
            await app.ready()
        try:
            yield
        finally:
            for app in lazy:
                await app.close()

    app = Starlette(routes=table.routes, lifespan=lifespan)
    app.router.default = rest  # what no route here matches: the console's routes, or their 404
    return _Edge(app, metrics)


def _metrics_route(runtime: Runtime, metrics: Metrics, host: str) -> Any:
    """Open on a loopback bind (only this machine can scrape); an admin key's Bearer otherwise."""

    async def scrape(request: Request) -> Response:
        if host not in LOCAL_HOSTS:
            try:
                caller = await anyio.to_thread.run_sync(authenticate, runtime, _bearer(request.scope))
            except Unauthenticated as exc:
                return JSONResponse({"success": False, "error": exc.to_dict()}, status_code=401,
                                    headers={"WWW-Authenticate": 'Bearer realm="cachebash"'})
            if not caller.admin:
                refused = Forbidden("/metrics takes an admin key on a non-loopback bind")
                return JSONResponse({"success": False, "error": refused.to_dict()}, status_code=403)
        body = await anyio.to_thread.run_sync(metrics.render)
        return Response(body, media_type=CONTENT_TYPE.split(";")[0], headers={"Content-Type": CONTENT_TYPE})

    return scrape
