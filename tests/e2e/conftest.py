"""A live server per test module; tests make their own programs with the admin key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import pytest

from support.server import Agent, AgentFactory, ServerEnv, ServerProcess

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_env: ServerEnv) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("server") / "data", env=server_env()).start()
    yield proc
    proc.stop()


@pytest.fixture
def tenant_admin_key(server: ServerProcess) -> str:
    """Each test gets a tenant of its own (made with the CLI while the server runs), so
    groups and queues never leak between tests."""
    tenant = "t-" + uuid.uuid4().hex[:10]
    return server.cli("keys", "create", "--program", "admin", "--admin", "--tenant", tenant).strip().splitlines()[-1]


@pytest.fixture
async def agents(server: ServerProcess, tenant_admin_key: str) -> AsyncIterator[AgentFactory]:
    """`await agents("builder", groups=["builders"])` -> a connected agent with a fresh key."""
    async with AsyncExitStack() as stack:
        admin = await stack.enter_async_context(Agent(server.url, tenant_admin_key))

        async def make(program: str, *, groups: list[str] | None = None, admin_key: bool = False) -> Agent:
            created = await admin.call("create_key", programId=program, groups=groups or [], admin=admin_key)
            return await stack.enter_async_context(Agent(server.url, created["apiKey"]))

        yield make
