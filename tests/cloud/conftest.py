"""The cloud-local suite: the whole Google Cloud topology (`make cloud-local`) under real MCP
clients, spread over its two mcp instances. One topology serves the package (it stops when
these tests are done, not at the end of the whole suite); each test gets a tenant of its own,
made with the CLI.

Events between functions travel as in the cloud (Pub/Sub push, the Firestore relay standing
in for Eventarc, the scheduler timer), so what a function does happens after the tool call
that caused it has answered: tests wait for it with deadlines, never with fixed sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import ExitStack

import pytest

from support.cloud_local import CloudLocal, Fleet, fleet_of, require_cloud_local, start_cloud_local
from support.firebase_auth_emulator import auth_emulator_unavailable, start_auth_emulator
from support.query_guard import QueryRecorder


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cloud_local: runs against the whole cloud topology (tests/cloud, "
                                       "`make cloud-local`); needs java and the Firestore and Pub/Sub emulators")


@pytest.fixture(scope="package")
def cloud(tmp_path_factory: pytest.TempPathFactory, query_recorder: QueryRecorder) -> Iterator[CloudLocal]:
    """The topology. Its scheduler ticks only every 10 minutes, i.e. not during the run: the
    sweeper also re-runs lost sprint releases, and here a wave must unlock through the event
    path alone (test_leases.py has a topology of its own that ticks every second). The
    functions log their queries' shapes where the index guard reads them, so cloud traffic is
    checked against the indexes too. With the Firebase Auth emulator (npm firebase-tools) the
    owner API is reachable as well."""
    require_cloud_local()
    with ExitStack() as stack:
        project = CloudLocal.new_project()
        auth = None if auth_emulator_unavailable() else stack.enter_context(start_auth_emulator(project))
        yield stack.enter_context(start_cloud_local(
            tmp_path_factory.mktemp("cloud-local"), project=project, sweep_seconds=600, auth_host=auth,
            env={"CACHEBASH_QUERY_LOG": str(query_recorder.log_path)}))


@pytest.fixture
async def fleet(cloud: CloudLocal) -> AsyncIterator[Fleet]:
    """A fresh tenant and a maker of its agents, spread over the mcp instances."""
    async with fleet_of(cloud) as made:
        yield made


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                         pytest.TestReport]:
    """A failed test shows the tail of every process's log: the cause is often in a function."""
    report = yield
    if call.when == "call" and report.failed:
        for running in {id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, CloudLocal)}.values():
            report.sections.append((f"cloud-local logs {running.log_dir}", running.logs()))
    return report
