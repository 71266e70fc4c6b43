"""Put many queued tasks in front of the server before measuring it at scale.

Through the store (spawned server): one task is created by the real `create_task` tool
handler, then copied with fresh ids in large transactions (400 documents on Firestore), so
the documents have exactly the shape the service writes (whatever fields it grows) at a cost
of seconds for 100,000.
Through MCP (`--url`): plain `create_task` calls on a few connections; slow, but it is all a
remote server offers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cachebash.bench.agents import LeanAgent, ProtocolError
from cachebash.bench.stats import Recorder

CHUNK = 5_000
REMOTE_CHUNK = 400  # a Firestore transaction takes at most 500 writes
MCP_CONNECTIONS = 8


def preload_store(rt: Any, tenant: str, target: str, count: int) -> list[str]:
    from cachebash.domain.inputs import parse
    from cachebash.domain.programs import CreateKey
    from cachebash.interface.tools import all_tools
    from cachebash.services import keys, usage
    from cachebash.services.runtime import new_id, tenant_path

    if count <= 0:
        return []
    loader = CreateKey(programId=f"{target}-loader", label="bench preload", admin=False)
    creator = keys.authenticate(rt, keys.issue_key(rt, tenant, loader, "bench")["apiKey"])
    spec = next(s for s in all_tools() if s.name == "create_task")
    first = spec.handler(rt, creator, parse(spec.input, {"title": "preloaded 0", "target": target}))
    template = rt.store.get(tenant_path(tenant, "tasks", first["taskId"]))
    ids = [first["taskId"]]
    chunk = REMOTE_CHUNK if rt.store.blocking_io else CHUNK
    while len(ids) < count:
        batch = []
        for n in range(len(ids), min(count, len(ids) + chunk)):
            task_id = new_id()
            batch.append((tenant_path(tenant, "tasks", task_id), {**template, "taskId": task_id,
                                                                  "title": f"preloaded {n}"}))
            ids.append(task_id)

        def write(tx: Any, batch: list[tuple[str, dict[str, Any]]] = batch) -> None:
            for path, doc in batch:
                tx.create(path, doc)
            usage.count_copies(tx, rt, tenant, template, len(batch))

        rt.store.run_transaction(write)
    return ids


async def preload_mcp(url: str, admin_key: str, target: str, count: int) -> list[str]:
    ids: list[str] = []
    agents = [LeanAgent(url, admin_key, "admin", Recorder()) for _ in range(MCP_CONNECTIONS)]

    async def fill(agent: LeanAgent, share: int) -> None:
        for n in range(share):
            body = await agent.call("create_task", title=f"preloaded {n}", target=target)
            if not body["success"]:
                raise ProtocolError(f"create_task failed while preloading: {body}")
            ids.append(body["taskId"])

    shares = [count // MCP_CONNECTIONS + (1 if i < count % MCP_CONNECTIONS else 0) for i in range(MCP_CONNECTIONS)]
    try:
        await asyncio.gather(*(fill(a, s) for a, s in zip(agents, shares, strict=True)))
    finally:
        for agent in agents:
            await agent.close()
    return ids
