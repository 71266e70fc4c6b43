from __future__ import annotations

from pathlib import Path

import pytest

from support.cli_runner import Cli


@pytest.fixture
def cachebash(tmp_path: Path) -> Cli:
    return Cli(tmp_path)
