"""The console over HTTP: its static files under `/console/`, the login link, its config, and
the owner API under `/v1/owner`, with long polling for pages that stay open.

Long polling: every view answers with a `version` (a digest of its body). Asked again with
`?wait=S&version=V`, it answers as soon as the view differs from V, or after S seconds (at
most 25) with the same body. A waiting request subscribes to its tenant's change signal
(every event wakes it, right after the commit) and also looks again every second, since
claims and progress reports publish no event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from cachebash import __version__
from cachebash.domain.errors import CacheBashError, Code, InvalidInput, Unauthenticated
from cachebash.interface import owner_api
from cachebash.interface.console_config import ConsoleConfig
from cachebash.interface.owner_api import OwnerRequest, Reply
from cachebash.interface.owner_auth import CSRF_HEADER, SESSION_COOKIE, Owner, OwnerAuth
from cachebash.ports.signals import OWNER_KEY
from cachebash.services import console_auth
from cachebash.services.runtime import Runtime

STATIC_DIR = Path(__file__).parent / "console_static"
CONSOLE_PATH = "/console"
MAX_WAIT_SECONDS = 25.0
LOOK_AGAIN_SECONDS = 1.0
MAX_OWNER_BODY = 256 * 1024
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self' https://*.googleapis.com http://127.0.0.1:* http://localhost:*; "
       "frame-src https://*.firebaseapp.com; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
_SAFE_WRITES = ("GET", "HEAD")


def version_of(body: dict[str, Any]) -> str:
    raw = json.dumps({k: v for k, v in body.items() if k != "version"}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _json_reply(reply: Reply) -> Response:
    body = reply.body
    if reply.status == 200:
        body = {**body, "version": version_of(body)}
    headers = {"Cache-Control": "no-store", **owner_api.headers(reply)}
    return Response(json.dumps(body, allow_nan=False), status_code=reply.status, media_type="application/json",
                    headers=headers)


def _error(exc: CacheBashError) -> Response:
    return _json_reply(owner_api.error_reply(exc))


class ConsoleRoutes:
    def __init__(self, runtime: Runtime, auth: OwnerAuth, config: ConsoleConfig) -> None:
        self.runtime = runtime
        self.auth = auth
        self.config = config

    async def _run(self, fn: Any, *args: Any) -> Any:
        """Store calls off the event loop where they block on the network (Firestore)."""
        if self.runtime.store.blocking_io:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def _owner(self, request: Request) -> Owner:
        owner: Owner = await self._run(self.auth.identify, request.cookies.get(SESSION_COOKIE),
                                       request.headers.get("authorization"))
        if request.method not in _SAFE_WRITES:
            self.auth.check_write(owner, request.headers.get(CSRF_HEADER))
        return owner

    async def _body(self, request: Request) -> bytes:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_OWNER_BODY:
                raise InvalidInput(f"body: larger than {MAX_OWNER_BODY} bytes", field="body")
        return body

    async def api(self, request: Request) -> Response:
        try:
            owner = await self._owner(request)
            req = OwnerRequest(request.method, request.url.path[len(owner_api.PREFIX):], dict(request.query_params),
                               await self._body(request), _mcp_url(request))
            _, _, is_view = owner_api.route(req)
        except CacheBashError as exc:
            return _error(exc)
        reply = await self._view(owner.tenant_id, req) if is_view else \
            await self._run(owner_api.dispatch, self.runtime, owner.tenant_id, req)
        return _json_reply(reply)

    async def _view(self, tenant_id: str, req: OwnerRequest) -> Reply:
        try:
            wait = min(max(float(req.query.get("wait") or 0), 0.0), MAX_WAIT_SECONDS)
        except ValueError:
            return owner_api.error_reply(InvalidInput("wait: a number of seconds (0-25)", field="wait"))
        seen = req.query.get("version")
        if wait <= 0 or not seen or self.runtime.signals is None:
            return await self._run(owner_api.dispatch, self.runtime, tenant_id, req)  # type: ignore[no-any-return]
        deadline = time.monotonic() + wait
        with self.runtime.signals.subscribe(tenant_id, [OWNER_KEY]) as changes:
            reply: Reply = await self._run(owner_api.dispatch, self.runtime, tenant_id, req)
            while reply.status == 200 and version_of(reply.body) == seen and not self.runtime.closing.is_set() \
                    and (remaining := deadline - time.monotonic()) > 0:
                await changes.wait(min(remaining, LOOK_AGAIN_SECONDS))
                reply = await self._run(lambda: owner_api.dispatch(self.runtime, tenant_id, req, count=False))
        return reply

    async def session(self, request: Request) -> Response:
        try:
            owner = await self._owner(request)
        except CacheBashError as exc:
            return _error(exc)
        session = owner.session
        return _json_reply(Reply(200, {"success": True, "tenant": owner.tenant_id, "mode": self.auth.mode,
                                       "csrf": session.csrf if session else None,
                                       "expiresAt": session.expires_at if session else None}))

    async def logout(self, request: Request) -> Response:
        try:
            owner = await self._owner(request)
        except CacheBashError as exc:
            return _error(exc)
        if owner.session is not None:
            await self._run(console_auth.end_session, self.runtime, owner.session.session_id)
        response = _json_reply(Reply(200, {"success": True}))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def login(self, request: Request) -> Response:
        token = request.query_params.get("token") or ""
        try:
            if not token:
                raise Unauthenticated("the login link has no token: run `cachebash console` for one")
            session = await self._run(console_auth.redeem_login, self.runtime, token)
        except CacheBashError as exc:
            return Response(_login_failed_page(exc.message), status_code=401, media_type="text/html",
                            headers={"Content-Security-Policy": CSP})
        response = RedirectResponse(f"{CONSOLE_PATH}/#/inbox", status_code=303)
        response.set_cookie(SESSION_COOKIE, session.session_id, max_age=console_auth.SESSION_TTL_SECONDS,
                            path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    async def config_json(self, _: Request) -> Response:
        body = {"mode": self.auth.mode, "firebase": self.config.firebase, "authEmulator": self.config.auth_emulator,
                "vapidKey": self.config.vapid_key, "apiBase": owner_api.PREFIX}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def static(self, request: Request) -> Response:
        name = request.path_params.get("path") or "index.html"
        path = (STATIC_DIR / name).resolve()
        if not path.is_file() or STATIC_DIR.resolve() not in path.parents:
            return JSONResponse({"success": False, "error": {"code": Code.NOT_FOUND, "message": f"no file {name}"}},
                                status_code=404)
        headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}
        if name == "sw.js":
            headers["Service-Worker-Allowed"] = f"{CONSOLE_PATH}/"
        media = "application/manifest+json" if name.endswith(".webmanifest") else None
        return FileResponse(path, headers=headers, media_type=media)


def _mcp_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}/v1/mcp"


def _login_failed_page(message: str) -> str:
    from html import escape

    return ("<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<title>CacheBash console</title><h1>CacheBash console</h1>"
            f"<p>{escape(message)}</p><p>On the machine running CacheBash: <code>.venv/bin/cachebash console</code> "
            "prints a fresh login link.</p>")


def register(server: Any, routes: ConsoleRoutes) -> None:
    """Add the console's routes to the MCP server's Starlette app (before it is built)."""
    add = server.custom_route
    add(f"{owner_api.PREFIX}/session", methods=["GET"])(routes.session)
    add(f"{owner_api.PREFIX}/logout", methods=["POST"])(routes.logout)
    add(owner_api.PREFIX + "/{rest:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])(routes.api)
    add(f"{CONSOLE_PATH}/login", methods=["GET"])(routes.login)
    add(f"{CONSOLE_PATH}/config.json", methods=["GET"])(routes.config_json)
    add(f"{CONSOLE_PATH}/", methods=["GET"])(routes.static)
    add(CONSOLE_PATH + "/{path:path}", methods=["GET"])(routes.static)

    async def to_console(_: Request) -> Response:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=307)

    async def index(request: Request) -> Response:
        """Where things are, for a person or a script that opens the bare address."""
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        return JSONResponse({"name": "CacheBash", "version": __version__,
                             "mcp": {"url": f"{base}/v1/mcp", "method": "POST",
                                     "auth": "Authorization: Bearer <API key>"},
                             "health": f"{base}/health", "console": f"{base}{CONSOLE_PATH}/"},
                            headers={"Cache-Control": "no-store"})

    add("/", methods=["GET"])(index)
    add(CONSOLE_PATH, methods=["GET"])(to_console)
