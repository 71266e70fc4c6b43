"""The whole cloud topology for the tests in tests/cloud: `python -m cachebash.cloud_local` as a
subprocess (exactly what `make cloud-local` runs), waited for until it prints `ready`.

    with start_cloud_local(log_dir, sweep_seconds=1) as cloud:
        cloud.mcp_urls            # one /v1/mcp URL per mcp instance
        cloud.cli("keys", ...)    # the cachebash CLI on the same Firestore project

It starts its own emulators, so it does not depend on the suite's Firestore backends; a
second topology can reuse the first one's (`reuse=`) under a project of its own. When java or
an emulator is missing, `require_cloud_local()` skips with the reason, or fails when
CACHEBASH_REQUIRE_BACKENDS names `cloud-local` (`.ci/run` does when they are installed).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from cachebash.cloud_local.emulators import missing
from support.server import Agent

BACKEND = "cloud-local"
BIN = Path(sys.executable).parent
#: Emulators are slow, and events hop through Pub/Sub and the relay: generous, but bounded.
DEADLINE_S = 60.0
T = TypeVar("T")


def unavailable(reason: str, backend: str = BACKEND) -> NoReturn:
    """Skip with the reason, or fail if CACHEBASH_REQUIRE_BACKENDS requires `backend`."""
    if backend in os.environ.get("CACHEBASH_REQUIRE_BACKENDS", "").split():
        pytest.fail(f"{backend} is required (CACHEBASH_REQUIRE_BACKENDS) but cannot run: {reason}", pytrace=False)
    pytest.skip(f"{backend}: {reason}")


def require_cloud_local() -> None:
    if reason := missing():
        unavailable(reason)


@dataclass
class CloudLocal:
    """A running topology, as its `ready` banner described it."""

    project: str
    firestore_host: str
    pubsub_host: str
    mcp_urls: list[str]
    log_dir: Path
    auth_host: str | None = None
    banner: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0

    @staticmethod
    def new_project() -> str:
        """A project per topology: the emulators keep projects apart, so topologies can share them."""
        return "demo-cl-" + uuid.uuid4().hex[:10]

    @property
    def env(self) -> dict[str, str]:
        """What the README tells a person to export for the CLI (and what the functions have)."""
        return {"CACHEBASH_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": self.firestore_host,
                "PUBSUB_EMULATOR_HOST": self.pubsub_host, "GOOGLE_CLOUD_PROJECT": self.project}

    def mcp_url(self, i: int) -> str:
        """Instance `i % n`: spreading agents over the instances is the point of having two."""
        return self.mcp_urls[i % len(self.mcp_urls)]

    def base(self, i: int) -> str:
        return self.mcp_url(i).removesuffix("/v1/mcp")

    def cli(self, *args: str) -> str:
        """`cachebash ...` on this topology's Firestore project; returns stdout."""
        done = subprocess.run([str(BIN / "cachebash"), *args], capture_output=True, text=True,
                              env={**os.environ, **self.env}, check=False, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"cachebash {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done.stdout

    def tenant_admin_key(self, tenant: str | None = None) -> tuple[str, str]:
        """A tenant (a fresh one unless given) and an admin key for it, made with the CLI as README's
        deploy step 4 does."""
        tenant = tenant or "t-" + uuid.uuid4().hex[:10]
        out = self.cli("keys", "create", "--program", "admin", "--admin", "--tenant", tenant)
        return tenant, out.strip().splitlines()[-1]

    def logs(self, lines: int = 15) -> str:
        """The tail of every process's log, for a failure message."""
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)


def _banner_value(lines: list[str], prefix: str) -> str:
    return next(line[len(prefix):] for line in lines if line.startswith(prefix))


@contextmanager
def start_cloud_local(log_dir: Path, *, project: str | None = None, sweep_seconds: float = 1.0,
                      env: Mapping[str, str] | None = None, reuse: CloudLocal | None = None,
                      auth_host: str | None = None) -> Iterator[CloudLocal]:
    """Run `python -m cachebash.cloud_local` on a demo- project (a fresh one unless given) until the
    block ends. `env` is set for every function (`--env`); `reuse` shares another topology's emulators."""
    log_dir.mkdir(parents=True, exist_ok=True)
    project = project or CloudLocal.new_project()
    command = [sys.executable, "-m", "cachebash.cloud_local", "--project", project, "--sweep-seconds",
               str(sweep_seconds), "--log-dir", str(log_dir), "--stop-on-stdin-eof",
               *(f"--env={name}={value}" for name, value in (env or {}).items())]
    child_env = {k: v for k, v in os.environ.items()
                 if k not in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST")}
    if reuse is not None:
        child_env.update(FIRESTORE_EMULATOR_HOST=reuse.firestore_host, PUBSUB_EMULATOR_HOST=reuse.pubsub_host)
    if auth_host:
        child_env["FIREBASE_AUTH_EMULATOR_HOST"] = auth_host
    with (log_dir / "cloud_local.stderr.log").open("w") as stderr:
        # stdin is our pipe: if this process dies without stopping it, EOF stops the topology.
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env=child_env)
        try:
            started = time.monotonic()
            banner = _read_banner(proc, log_dir)
            yield CloudLocal(project=project, firestore_host=_banner_value(banner, "FIRESTORE_EMULATOR_HOST="),
                             pubsub_host=_banner_value(banner, "PUBSUB_EMULATOR_HOST="),
                             mcp_urls=[line.removeprefix("mcp: ") for line in banner if line.startswith("mcp: ")],
                             log_dir=log_dir, auth_host=auth_host, banner=banner,
                             startup_seconds=time.monotonic() - started)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, on which it stops every process it started; SIGKILL only if that takes over a
    minute (its children then get SIGTERM from the kernel: they were started with PDEATHSIG)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def _read_banner(proc: subprocess.Popen[str], log_dir: Path) -> list[str]:
    """Lines of stdout up to `ready`; fails with the logs if the topology exits instead. (It
    bounds its own start-up: every emulator and function it waits for has a timeout.)"""
    assert proc.stdout is not None
    banner: list[str] = []
    for line in proc.stdout:
        banner.append(line.rstrip("\n"))
        if banner[-1] == "ready":
            return banner
    proc.wait(timeout=30)
    stderr = (log_dir / "cloud_local.stderr.log").read_text(errors="replace")
    raise RuntimeError(f"cloud-local exited with {proc.returncode} before 'ready':\n{stderr}")


class Fleet:
    """A tenant's agents; the n-th agent made talks to mcp instance n % 2 unless told (`on=`)."""

    def __init__(self, cloud: CloudLocal, stack: AsyncExitStack, tenant: str, admin: Agent) -> None:
        self.cloud, self.tenant, self.admin = cloud, tenant, admin
        self._stack = stack
        self._next = count(1)

    async def __call__(self, program: str, *, groups: list[str] | None = None, on: int | None = None) -> Agent:
        created = await self.admin.call("create_key", programId=program, groups=groups or [])
        url = self.cloud.mcp_url(next(self._next) if on is None else on)
        return await self._stack.enter_async_context(Agent(url, created["apiKey"]))


@asynccontextmanager
async def fleet_of(cloud: CloudLocal, tenant: str | None = None) -> AsyncIterator[Fleet]:
    """A tenant (a fresh one unless given) with an admin key from the CLI, its admin agent on instance 0."""
    tenant, key = cloud.tenant_admin_key(tenant)
    async with AsyncExitStack() as stack:
        admin = await stack.enter_async_context(Agent(cloud.mcp_url(0), key))
        yield Fleet(cloud, stack, tenant, admin)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, deadline: float = DEADLINE_S,
                     every: float = 0.25) -> T:
    """Run `probe` until it returns something other than None or False; fail after `deadline` s."""
    until = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < until:
        last = await probe()
        if last is not None and last is not False:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(every)
    raise AssertionError(f"{what}: not within {deadline:.0f} s (last: {last!r})")
