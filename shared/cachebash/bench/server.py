"""The server under test: a fresh embedded one the bench spawns (default), or one at a URL.

A spawned server runs `cachebash serve` in its own process with a temporary data directory,
on a free loopback port, with the bench routes on (`CACHEBASH_BENCH_ROUTES=1`: the echo
baseline and `/bench/stats`). Keys and preloaded tasks are written straight into its SQLite
file by this process, as `cachebash keys create` does, so setting up 100,000 tasks takes
seconds instead of 100,000 tool calls; the measurement itself is all over HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any, Protocol

from cachebash.bench.agents import LeanAgent, ProtocolError
from cachebash.bench.stats import Recorder

BENCH_ROUTES_ENV = "CACHEBASH_BENCH_ROUTES"
STATS_PATH = "/bench/stats"
TENANT = "bench"


class Target(Protocol):
    url: str
    base: str
    label: str
    run_id: str

    async def issue_keys(self, programs: list[str], groups: list[str]) -> list[str]: ...

    async def preload(self, count: int, target: str) -> list[str]: ...

    async def stats(self, reset_peak: bool = False) -> dict[str, Any]: ...

    def close(self) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[str] | None) -> None:
    """Terminate a server we started (kill it if it will not stop) and close its output pipe."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _http_json(url: str, method: str = "GET", timeout: float = 5) -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


class SpawnedServer:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cachebash-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/v1/mcp"
        self.label = f"spawned server ({os.environ.get('CACHEBASH_STORE', 'sqlite')} store)"
        self.run_id = "b"
        self.env = {**os.environ, **(env or {}), BENCH_ROUTES_ENV: "1"}
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._runtime: Any = None

    def start(self) -> SpawnedServer:
        # The server logs (an activity line per create, claim and completion) to a file, not a
        # pipe: a pipe drained by a thread of this busy process made each of those writes wait
        # for the reader, ~100 µs a line that no deployment pays (README: Benchmark).
        self._log = (self.dir / "server.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cachebash.cli", "serve", "--port", str(self.port), "--data-dir", str(self.dir)],
            stdout=self._log, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.output())
            try:
                _http_json(f"{self.base}/health", timeout=1)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy:\n" + self.output())

    def output(self) -> str:
        """What the server has logged so far."""
        return (self.dir / "server.log").read_text(errors="replace")

    def runtime(self) -> Any:
        """This process's own connection to the server's database (for keys and preloading)."""
        if self._runtime is None:
            from cachebash.bootstrap import embedded_runtime, open_store
            from cachebash.config import Settings

            # The server's own store settings (CACHEBASH_STORE=firestore included), our data dir.
            settings = dataclasses.replace(Settings.from_env(), data_dir=self.dir)
            self._runtime = embedded_runtime(open_store(settings))
        return self._runtime

    async def issue_keys(self, programs: list[str], groups: list[str]) -> list[str]:
        from cachebash.domain.programs import CreateKey
        from cachebash.services import keys

        rt = self.runtime()
        return [keys.issue_key(rt, TENANT, CreateKey(programId=p, groups=groups, label="bench", admin=False),
                               "bench")["apiKey"] for p in programs]

    async def preload(self, count: int, target: str) -> list[str]:
        from cachebash.bench.preload import preload_store

        return preload_store(self.runtime(), TENANT, target, count)

    async def stats(self, reset_peak: bool = False) -> dict[str, Any]:
        return await asyncio.to_thread(_http_json, self.base + STATS_PATH, "POST" if reset_peak else "GET")

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.store.close()
        stop_process(self.proc)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RemoteServer:
    """A running server (`--url`), started with CACHEBASH_BENCH_ROUTES=1 for the baseline and
    stats. Agents get keys from the admin key in `--keys` (first line), under program names
    unique to this run, so runs never see each other's queues."""

    def __init__(self, url: str, admin_key: str) -> None:
        self.url = url.rstrip("/")
        self.base = self.url.rsplit("/v1/mcp", 1)[0]
        self.label = f"server at {self.url}"
        self.admin_key = admin_key
        self.run_id = secrets.token_hex(3)

    def _admin(self) -> LeanAgent:
        return LeanAgent(self.url, self.admin_key, "admin", Recorder())

    async def issue_keys(self, programs: list[str], groups: list[str]) -> list[str]:
        admin = self._admin()
        try:
            created = []
            for program in programs:
                body = await admin.call("create_key", programId=program, groups=groups)
                if not body["success"]:
                    raise ProtocolError(f"create_key failed (is the first key in --keys an admin key?): {body}")
                created.append(body["apiKey"])
            return created
        finally:
            await admin.close()

    async def preload(self, count: int, target: str) -> list[str]:
        from cachebash.bench.preload import preload_mcp

        return await preload_mcp(self.url, self.admin_key, target, count)

    async def stats(self, reset_peak: bool = False) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(_http_json, self.base + STATS_PATH, "POST" if reset_peak else "GET")
        except urllib.error.URLError:
            return {}

    def close(self) -> None:
        pass


def read_admin_key(path: str) -> str:
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"{path}: no key in it (put an admin key on the first line)")
    return lines[0]
