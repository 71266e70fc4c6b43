"""Serving an ASGI app from a functions-framework async HTTP function.

functions-framework hands the function a Starlette request and sends back the response it
returns. We return a response object that, when sent, runs our whole ASGI app on the same
scope and stream, so `/v1/mcp` behaves exactly as under `cachebash serve`. The app's
lifespan (the MCP SDK's session manager) is entered once per instance, on the first
request, and held open by a background task for the instance's life.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class _RunApp(Response):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # functions-framework's catch-all route left its own path parameters in the scope; our
        # app routes the path afresh, and Starlette would merge stale ones into its matches.
        await self.app({**scope, "path_params": {}}, receive, send)


class AsgiFunction:
    def __init__(self, build: Callable[[], tuple[ASGIApp, Any]]) -> None:
        """`build` returns (app to serve, Starlette app whose lifespan must run)."""
        self._build = build
        self._app: ASGIApp | None = None
        self._ready: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None

    async def _hold(self, lifespan_app: Any, ready: asyncio.Event) -> None:
        async with lifespan_app.router.lifespan_context(lifespan_app):
            ready.set()
            await asyncio.Event().wait()  # until the instance shuts down

    async def app(self) -> ASGIApp:
        if self._ready is None:
            self._ready = asyncio.Event()
            app, lifespan_app = self._build()
            self._holder = asyncio.create_task(self._hold(lifespan_app, self._ready))
            self._app = app
        await self._ready.wait()
        assert self._app is not None
        return self._app

    async def __call__(self, _request: Any) -> Response:
        return _RunApp(await self.app())

    async def close(self) -> None:
        if self._holder is not None:
            self._holder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._holder
