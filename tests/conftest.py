"""Fixtures shared by every tier: a store per backend, a runtime on it, and callers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.bootstrap import embedded_runtime
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services.runtime import Runtime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(backend: str, sqlite_path: Path) -> Callable[[], Store]:
    """New, independent connections to one database, for tests that race them."""
    return lambda: SqliteStore(sqlite_path)


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Iterator[Store]:
    opened = store_factory()
    yield opened
    opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def runtime(store: Store, clock: ManualClock) -> Runtime:
    return embedded_runtime(store, clock, strict=True)
