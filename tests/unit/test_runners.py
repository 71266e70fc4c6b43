"""Waiting calls' looks and every other call run on separate worker threads, so neither can
take all the threads the other needs (interface.runners)."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from cachebash.interface.runners import WAITING_THREADS, make_runner

pytestmark = pytest.mark.anyio


class Blocked:
    """Work that holds its worker thread until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(20)
        with self._lock:
            self.running -= 1
        return {"done": True}


async def _until(condition: Any) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)


async def test_a_plain_call_runs_while_waiting_calls_hold_all_their_threads() -> None:
    runner, blocked = make_runner(True), Blocked()
    async with anyio.create_task_group() as group:
        for _ in range(WAITING_THREADS + 8):
            group.start_soon(runner.waiting, blocked)
        await _until(lambda: blocked.running == WAITING_THREADS)
        with anyio.fail_after(5):
            assert await runner(lambda: {"plain": True}) == {"plain": True}
        assert blocked.most == WAITING_THREADS, "the waiting calls' looks are capped at their own threads"
        blocked.release.set()


async def test_a_waiting_look_runs_while_plain_calls_hold_every_default_thread() -> None:
    runner, blocked = make_runner(True), Blocked()
    default = anyio.to_thread.current_default_thread_limiter().total_tokens
    async with anyio.create_task_group() as group:
        for _ in range(int(default) + 4):
            group.start_soon(runner, blocked)
        await _until(lambda: blocked.running == default)
        with anyio.fail_after(5):
            assert await runner.waiting(lambda: {"look": True}) == {"look": True}
        blocked.release.set()


async def test_a_local_store_runs_inline() -> None:
    runner, seen = make_runner(False), []
    await runner(lambda: seen.append(threading.get_ident()) or {})
    await runner.waiting(lambda: seen.append(threading.get_ident()) or {})
    assert seen == [threading.get_ident()] * 2
