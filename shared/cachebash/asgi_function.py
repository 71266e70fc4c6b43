"""Serving an ASGI app from a functions-framework async HTTP function.

functions-framework hands the function a Starlette request and sends back the response it
returns. We return a response object that, when sent, runs our whole ASGI app on the same
scope and stream, so `/v1/mcp` behaves exactly as under `cachebash serve`. The app is built
on the instance's first request (`LazyApp`), its lifespan entered then and held open for the
instance's life.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cachebash.interface.lazy_app import Build, LazyApp


class _RunApp(Response):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # functions-framework's catch-all route left its own path parameters in the scope; our
        # app routes the path afresh, and Starlette would merge stale ones into its matches.
        await self.app({**scope, "path_params": {}}, receive, send)


class AsgiFunction:
    def __init__(self, build: Build) -> None:
        """`build` returns (app to serve, Starlette app whose lifespan must run)."""
        self._lazy = LazyApp(build)

    @property
    def built(self) -> bool:
        return self._lazy.built

    async def app(self) -> ASGIApp:
        return await self._lazy.ready()

    async def __call__(self, _request: Any) -> Response:
        return _RunApp(await self.app())

    async def close(self) -> None:
        await self._lazy.close()
