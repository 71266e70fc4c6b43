from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli_runner import Cli
from support.server import ServerProcess


@pytest.fixture
def cachebash(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running `cachebash serve` on its own data dir, for commands that go through it."""
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()
