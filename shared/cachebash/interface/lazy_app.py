"""An ASGI app built when the first request needs it, not before.

Why: a cold Cloud Functions instance answers its first requests while it is still importing;
what those requests do not need (the MCP SDK, the console) should not be imported for them.
The app's lifespan (the MCP SDK's session manager) is entered once, when it is built, and held
open by a background task until `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

#: Returns (the app to serve, the Starlette app whose lifespan must run while it serves).
Build = Callable[[], tuple[ASGIApp, Any]]


class LazyApp:
    def __init__(self, build: Build) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._ready: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None

    @property
    def built(self) -> bool:
        return self._app is not None

    async def _hold(self, lifespan_app: Any, ready: asyncio.Event) -> None:
        async with lifespan_app.router.lifespan_context(lifespan_app):
            ready.set()
            await asyncio.Event().wait()  # until close()

    async def ready(self) -> ASGIApp:
        """The app, built by the first caller (synchronously, so no second caller builds it
        again) and handed to every caller once its lifespan has started."""
        if self._ready is None:
            self._ready = asyncio.Event()
            app, lifespan_app = self._build()
            self._holder = asyncio.create_task(self._hold(lifespan_app, self._ready))
            self._app = app
        await self._ready.wait()
        assert self._app is not None
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (await self.ready())(scope, receive, send)

    async def close(self) -> None:
        if self._holder is not None:
            self._holder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._holder
