"""`cachebash serve`: check the place, take the data dir's lock, bind the port, print the
first-start banner, serve until a signal; stop cleanly.

On SIGINT/SIGTERM calls waiting for work answer empty at once, in-flight calls finish (for at
most GRACE_SECONDS), and one line says the server stopped; a second signal stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from cachebash.cli import common
from cachebash.cli.checks import bind, check_store
from cachebash.cli.instance import ServerLock
from cachebash.config import Settings
from cachebash.domain.programs import CreateKey
from cachebash.ports.store import Query
from cachebash.services import keys
from cachebash.services.runtime import Runtime

ADMIN_PROGRAM = "admin"
GRACE_SECONDS = 5
#: The agents the first-start banner shows `connect` lines for.
EXAMPLE_AGENTS = (("builder", "builders", "claude-code"), ("reviewer", "council", "cursor"),
                  ("investigator", None, "gemini"))


def console_link(runtime: Runtime, config: Settings, tenant_id: str) -> str:
    """A fresh one-time login link for the tenant's console (as Jupyter prints one)."""
    from cachebash.services.console_auth import issue_login

    return f"{common.base_url(config)}/console/login?token={issue_login(runtime, tenant_id)}"


def first_start_banner(admin_key: str) -> str:
    lines = ["First start: created the admin key. It is yours, the person's (for the CLI, curl, scripts or an",
             "admin agent), not an agent's. Shown only once:", "", f"  {admin_key}", "",
             "Give each agent its own key and client config with `connect` (run it in the agent's project):"]
    for program, group, client in EXAMPLE_AGENTS:
        grouped = f" --group {group}" if group else ""
        lines.append(f"  cachebash connect --program {program}{grouped} --client {client}")
    return "\n".join(lines) + "\n"


class _Server:
    """uvicorn's server with CacheBash's signals: the first one starts closing (waiters answer
    at once), a second one stops at once; neither is re-raised afterwards (no traceback)."""

    def __init__(self, config: Any, on_close: Callable[[], None]) -> None:
        import uvicorn

        owner = self

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                owner.signal(sig)

            async def serve(self, sockets: list[socket.socket] | None = None) -> None:
                owner.loop = asyncio.get_running_loop()
                await super().serve(sockets)

        self.server = Server(config)
        self.on_close = on_close
        self.stopped_by: str | None = None
        self.forced = False
        self.signalled_at: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def signal(self, sig: int) -> None:
        if self.server.should_exit:
            self.forced = True
            self.server.force_exit = True
            for name in ("uvicorn.error", "mcp", "cachebash"):  # cancelled calls are expected now
                logging.getLogger(name).disabled = True
            return
        self.stopped_by = signal.Signals(sig).name
        self.signalled_at = time.monotonic()
        self.server.should_exit = True
        if self.loop is not None:  # not here: the handler may have interrupted a holder of a lock it needs
            self.loop.call_soon_threadsafe(self.on_close)

    def run(self, sock: socket.socket) -> None:
        try:
            self.server.run(sockets=[sock])
        finally:  # uvicorn restored the default handlers: a late signal must not cut the last line short
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)

    def summary(self, woken: int) -> str:
        if self.stopped_by is None:
            return "CacheBash stopped."
        how = "at once (second signal)" if self.forced else \
            f"in {time.monotonic() - (self.signalled_at or time.monotonic()):.1f} s"
        waiting = f", {woken} waiting call(s) answered early" if woken else ""
        return f"CacheBash stopped ({self.stopped_by}{waiting}) {how}."


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cachebash import logs
    from cachebash.bootstrap import begin_closing, start_sweeper
    from cachebash.interface import connection_limits
    from cachebash.interface.http_app import MCP_PATH, build_app

    config = common.settings(args)
    logs.configure(args.log_level or config.log_level, config.log_json)
    check_store(config)
    lock = ServerLock(config.data_dir).acquire() if config.store == "sqlite" else None
    try:
        sock = bind(config.host, config.port)
        runtime = common.runtime(config)
        url = common.base_url(config) + MCP_PATH
        if not runtime.store.query(Query(keys.KEYS).take(1)):
            created = keys.issue_key(runtime, keys.DEFAULT_TENANT, CreateKey(
                programId=ADMIN_PROGRAM, admin=True, label="the person's admin key"), "cli")
            print(first_start_banner(created["apiKey"]))
        if lock is not None:
            lock.publish(url)
        print(f"CacheBash serving MCP at {url} ({config.describe_store()})")
        print(f"Console (one-time login link; `cachebash console` prints a new one):\n  "
              f"{console_link(runtime, config, keys.DEFAULT_TENANT)}", flush=True)
        woken = [0]

        def close() -> None:
            woken[0] = begin_closing(runtime)

        # httptools, uvloop (picked by loop="auto" where installed: a dependency except on Windows)
        # and no access log: the bare stack's cost per request drops by more than half (README,
        # Benchmark), so CacheBash's own work is most of what a call costs. The httptools protocol
        # is ours: deadlines for idle connections, request heads and bodies, and a connection cap.
        # No WebSockets: nothing is served over them.
        app = build_app(runtime, host=config.host, settings=config)
        server = _Server(uvicorn.Config(
            app, log_config=None, loop="auto",
            access_log=False, ws="none", timeout_graceful_shutdown=GRACE_SECONDS,
            http=connection_limits.protocol_class(connection_limits.ConnectionLimits(
                idle_seconds=config.http_idle_seconds, head_seconds=config.http_head_seconds,
                body_seconds=config.http_body_seconds, max_connections=config.http_max_connections))), close)
        sweeper = start_sweeper(runtime, config.sweep_seconds, app.metrics.swept if app.metrics else None)
        try:
            server.run(sock)
        finally:
            sweeper.stop()
    finally:
        if lock is not None:
            lock.release()
    print(server.summary(woken[0]), flush=True)
    return 0
