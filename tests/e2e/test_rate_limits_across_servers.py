"""Rate limits over real HTTP with a real MCP client, on servers whose tenants have the `free`
plan (120 calls a minute per key, bursts of 60): a flood from one key is refused after its
budget while another key of the same tenant is served; the same across two server processes
on one store (two `cachebash serve` on one Firestore project, or on one SQLite file); the
owner API answers 429 with Retry-After."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cachebash.domain.plans import PRESETS
from cachebash.domain.rate_limits import agent_buckets
from cachebash.services.rate_limits import LEASE_SECONDS
from support.console import Owner
from support.server import Agent, ServerEnv, ServerProcess

pytestmark = pytest.mark.anyio

FREE = PRESETS["free"]
FLOOD = 90


def _limited(env: dict[str, str]) -> dict[str, str]:
    return {**env, "CACHEBASH_PLAN": "free"}


@pytest.fixture(scope="module")
def pair(backend: str, tmp_path_factory: pytest.TempPathFactory,
         server_env: ServerEnv) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one store. SQLite: the second data dir's database is the first's file (a
    data dir's lock allows one server per dir, not one per database file)."""
    env = _limited(server_env())
    a = ServerProcess(tmp_path_factory.mktemp("a") / "data", env=env).start()
    b_dir = tmp_path_factory.mktemp("b") / "data"
    if backend == "sqlite":
        b_dir.mkdir()
        (b_dir / "cachebash.db").symlink_to(Path(a.data_dir) / "cachebash.db")
    b = ServerProcess(b_dir, env=env).start()
    yield a, b
    b.stop()
    a.stop()


@pytest.fixture
async def admin(pair: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[Agent]:
    a, _ = pair
    key = a.cli("keys", "create", "--program", "admin", "--admin", "--tenant", "t-" + uuid.uuid4().hex[:10])
    async with Agent(a.url, key.strip().splitlines()[-1]) as agent:
        yield agent


async def _flood(agents: list[Agent], calls: int) -> tuple[int, list[dict[str, object]], float]:
    """`calls` get_tasks, taking the agents in turn: how many were served, the refusals, the seconds."""
    served, refusals, started = 0, [], time.monotonic()
    for i in range(calls):
        body = await agents[i % len(agents)].raw("get_tasks")
        if body["success"]:
            served += 1
        else:
            refusals.append(body["error"])
    return served, refusals, time.monotonic() - started


def _most(seconds: float, servers: int) -> float:
    """What a key's bucket may admit in `seconds` across `servers` (services.rate_limits' bound)."""
    bucket = agent_buckets(FREE, "k")[0]
    return bucket.capacity + bucket.per_second * (seconds + LEASE_SECONDS * (servers > 1)) + servers * bucket.max_slice


async def test_a_flood_from_one_key_is_refused_while_another_key_is_served(
        pair: tuple[ServerProcess, ServerProcess], admin: Agent) -> None:
    a, _ = pair
    flood_key = (await admin.call("create_key", programId="flood"))["apiKey"]
    calm_key = (await admin.call("create_key", programId="calm"))["apiKey"]
    async with Agent(a.url, flood_key) as flood, Agent(a.url, calm_key) as calm:
        served, refusals, seconds = await _flood([flood], FLOOD)
        assert FREE.burst is not None and FREE.burst <= served <= _most(seconds, 1), (served, seconds)
        first = refusals[0]
        assert first["code"] == "RATE_LIMITED" and first["limit"] == "key" and first["retryAfterSeconds"] == 1
        assert "120 calls a minute" in str(first["message"])
        calm_served, _, _ = await _flood([calm], 20)
        assert calm_served == 20, "another key of the same tenant is served normally"


async def test_two_servers_on_one_store_count_one_budget(pair: tuple[ServerProcess, ServerProcess],
                                                         admin: Agent) -> None:
    a, b = pair
    flood_key = (await admin.call("create_key", programId="flood2"))["apiKey"]
    calm_key = (await admin.call("create_key", programId="calm2"))["apiKey"]
    async with Agent(a.url, flood_key) as on_a, Agent(b.url, flood_key) as on_b, Agent(b.url, calm_key) as calm:
        served, refusals, seconds = await _flood([on_a, on_b], 2 * FLOOD)
        assert FREE.burst is not None and FREE.burst <= served <= _most(seconds, 2), (served, seconds)
        assert served < 2 * FREE.burst, "a budget per server would have served a burst on each"
        assert {str(r["limit"]) for r in refusals} == {"key"}
        calm_served, _, _ = await _flood([calm], 20)
        assert calm_served == 20


def test_the_owner_api_answers_429_with_retry_after(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, _ = pair
    owner = Owner(a, "t-" + uuid.uuid4().hex[:10])
    try:
        statuses = []
        for _ in range(FLOOD):
            reply = owner.http.get("/v1/owner/counts")
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                break
        assert statuses[-1] == 429 and statuses.count(200) >= (FREE.burst or 0)
        assert reply.headers["Retry-After"] == "1"
        assert reply.json()["error"]["code"] == "RATE_LIMITED" and reply.json()["error"]["limit"] == "owner"
    finally:
        owner.close()
