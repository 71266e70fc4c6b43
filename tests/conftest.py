"""Fixtures shared by every tier: a store per backend, a runtime on it, and callers.

Every test that asks for `backend` (or for `store`, `runtime`, an e2e server) runs once per
backend: `sqlite`; `firestore-standin`, the npm stand-in this suite starts itself; and
`firestore-google`, Google's emulator at FIRESTORE_EMULATOR_HOST. A backend that cannot run
here is skipped with the reason, unless CACHEBASH_REQUIRE_BACKENDS names it (CI does), in
which case it fails. Tests marked with a stand-in gap (see `STAND_IN_GAPS`) skip on the stand-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cachebash.adapters.sqlite_store import SqliteStore, iter_collections
from cachebash.bootstrap import embedded_runtime
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Store
from cachebash.services.runtime import Runtime
from support.backends import Emulators
from support.firestore_emulator import STAND_IN_GAPS, Emulator
from support.query_guard import IndexReport, QueryRecorder
from support.rules_file import rule_for_collection
from support.server import ServerEnv

BACKENDS = ("sqlite", "firestore-standin", "firestore-google")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REPORT] = IndexReport()


_REPORT = pytest.StashKey[IndexReport]()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    running = Emulators()
    yield running
    running.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def emulator(backend: str, emulators: Emulators) -> Emulator | None:
    """The Firestore emulator behind this backend; None for SQLite."""
    return None if backend == "sqlite" else emulators.get(backend)


@pytest.fixture(autouse=True)
def _skip_stand_in_gaps(request: pytest.FixtureRequest) -> None:
    """Skip, with the reason, a test that needs what the stand-in gets wrong; never weaken it."""
    if "backend" not in request.fixturenames:
        return
    found: Emulator | None = request.getfixturevalue("emulator")
    for marker in STAND_IN_GAPS:
        if found is not None and request.node.get_closest_marker(marker) and (reason := found.gap(marker)):
            pytest.skip(f"{marker}: {reason}")


def new_project() -> str:
    """One Firestore project per store under test: both emulators keep projects apart."""
    return "demo-" + uuid.uuid4().hex[:12]


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store_factory(backend: str, emulator: Emulator | None, sqlite_path: Path) -> Callable[[], Store]:
    """New, independent connections to one database, for tests that race them."""
    if emulator is None:
        return lambda: SqliteStore(sqlite_path)
    from cachebash.adapters.firestore_store import FirestoreStore

    project = new_project()
    return lambda: FirestoreStore(project=project, emulator_host=emulator.host)


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Iterator[Store]:
    opened = store_factory()
    yield opened
    opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# ---------------------------------------------------------------------------- the index guard


@pytest.fixture(scope="session")
def query_recorder(tmp_path_factory: pytest.TempPathFactory) -> QueryRecorder:
    return QueryRecorder(tmp_path_factory.mktemp("queries") / "queries.jsonl")


@pytest.fixture(autouse=True)
def _every_query_has_its_index(request: pytest.FixtureRequest, query_recorder: QueryRecorder) -> Iterator[None]:
    """Fail the test whose services issued a query that no declared composite index serves."""
    query_recorder.take()  # anything left over belongs to no test
    yield
    missing = request.config.stash[_REPORT].add(query_recorder.take(), request.node.nodeid)
    if missing:
        pytest.fail("queries without a composite index in ports/indexes.py (Firestore would refuse them):\n  "
                    + "\n  ".join(missing), pytrace=False)


@pytest.fixture
def runtime(store: Store, clock: ManualClock, query_recorder: QueryRecorder, sqlite_path: Path) -> Iterator[Runtime]:
    store.observers.append(query_recorder.observe)
    yield embedded_runtime(store, clock, strict=True)
    if isinstance(store, SqliteStore):
        _every_collection_is_named_in_the_rules(sqlite_path)


def _every_collection_is_named_in_the_rules(sqlite_path: Path) -> None:
    """Fail the test whose services wrote a collection firestore.rules does not name (SQLite
    lists what was written; the test may have closed its own connection, so open another)."""
    listing = SqliteStore(sqlite_path)
    try:
        unnamed = sorted(c for c in iter_collections(listing) if rule_for_collection(c) is None)
    finally:
        listing.close()
    if unnamed:
        pytest.fail(f"collections written but not named in firestore.rules: {unnamed}", pytrace=False)


@pytest.fixture(scope="session")
def server_env(backend: str, emulator: Emulator | None, query_recorder: QueryRecorder) -> ServerEnv:
    """Environment for a `cachebash serve` (or CLI) subprocess on this backend; each call
    names a fresh, empty Firestore project (SQLite servers get their own data dirs)."""

    def make() -> dict[str, str]:
        env = {"CACHEBASH_STORE": "sqlite" if emulator is None else "firestore",
               "CACHEBASH_QUERY_LOG": str(query_recorder.log_path)}
        if emulator is not None:
            env.update(FIRESTORE_EMULATOR_HOST=emulator.host, GOOGLE_CLOUD_PROJECT=new_project())
        return env

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = terminalreporter.config.stash.get(_REPORT, None)
    if report is None or not report.checked:
        return
    terminalreporter.write_sep("-", "index guard")
    terminalreporter.write_line(
        f"{report.checked} queries issued by the services ({len(report.shapes)} shapes) checked against "
        f"ports/indexes.py; {len(report.missing)} without an index")
    for problem, test_id in report.missing.items():
        terminalreporter.write_line(f"  MISSING {problem}  (first in {test_id})")

