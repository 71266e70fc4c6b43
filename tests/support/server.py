"""A real `cachebash serve` process on a free port, and MCP agents that talk to it over HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import httpx2
import jsonschema
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cachebash.bench.server import free_port, stop_process
from cachebash.interface.tools import all_tools
from cachebash.interface.tools.results import output_schema

BIN = Path(sys.executable).parent

#: Makes the environment for one `cachebash serve`/CLI run on the backend under test
#: (the `server_env` fixture): CACHEBASH_STORE, and for Firestore the emulator and a fresh project.
ServerEnv = Callable[[], dict[str, str]]


class ServerProcess:
    """Runs the CLI exactly as `make serve` does, with its own data dir."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.admin_key: str | None = None
        self.output: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/v1/mcp"

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            [str(BIN / "cachebash"), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if found := re.search(r"^\s+(cb_\S+)\s*$", line):
                self.admin_key = found.group(1)
            if line.startswith("CacheBash serving"):
                break
        else:
            raise RuntimeError("server exited:\n" + "".join(self.output))
        # Keep draining its output so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> None:
        stop_process(self.proc)

    def cli(self, *args: str) -> str:
        """Run `cachebash ...` against this server's data dir; returns stdout."""
        done = subprocess.run([str(BIN / "cachebash"), *args, "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, env=self.env, check=True)
        return done.stdout


@cache
def published_output_schemas() -> dict[str, dict[str, Any]]:
    return {spec.name: output_schema(spec.output) for spec in all_tools() if spec.output is not None}


class ToolFailed(AssertionError):
    pass


class Agent:
    """One AI session: an official MCP client with its own API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self._client: Client | None = None
        self._http: httpx2.AsyncClient | None = None

    async def __aenter__(self) -> Agent:
        self._http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        self._client = Client(streamable_http_client(self.url, http_client=self._http))
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: tuple[type[BaseException] | None, BaseException | None,
                                          TracebackType | None]) -> None:
        assert self._client is not None and self._http is not None
        await self._client.__aexit__(None, None, None)
        await self._http.aclose()

    async def raw(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool; returns the structured result, checking it matches the text content."""
        assert self._client is not None
        result = await self._client.call_tool(tool, arguments)
        body = result.structured_content
        assert isinstance(body, dict)
        assert json.loads(result.content[0].text) == body  # type: ignore[union-attr]
        assert result.is_error == (body["success"] is False)
        await self.check_against_output_schema(tool, body)
        return body

    async def check_against_output_schema(self, tool: str, body: dict[str, Any]) -> None:
        """Every answer, a refusal too, is what the tool's published outputSchema says (the
        official client checks only successes). The schemas are the ones the server publishes,
        built from the same specs here, so an agent whose key was revoked meanwhile (it can no
        longer list tools) is checked too; test_tool_contract checks what tools/list carries."""
        schema = published_output_schemas().get(tool)
        if schema is not None:
            jsonschema.validate(body, schema)

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        body = await self.raw(tool, **arguments)
        if not body["success"]:
            raise ToolFailed(f"{tool} failed: {body['error']}")
        return body

    async def fail(self, tool: str, **arguments: Any) -> dict[str, Any]:
        body = await self.raw(tool, **arguments)
        assert body["success"] is False, f"{tool} unexpectedly succeeded: {body}"
        return dict(body["error"])

    async def list_tools(self) -> list[Any]:
        assert self._client is not None
        return list((await self._client.list_tools()).tools)


AgentFactory = Callable[..., Awaitable[Agent]]


@contextmanager
def function_process(target: str, env: dict[str, str]) -> Iterator[str]:
    """`functions-framework --target TARGET` in its own process, as Cloud Run runs it; yields its
    base URL once /health answers."""
    from support.gcp import MAIN

    port = free_port()
    proc = subprocess.Popen([str(BIN / "functions-framework"), "--target", target, "--source", MAIN,
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"functions-framework --target {target} did not start")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(proc)
