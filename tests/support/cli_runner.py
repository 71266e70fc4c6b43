"""The `cachebash` binary as a person runs it: a subprocess with its own data dir."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.server import BIN


class Cli:
    """`cachebash ARGS...` on one data dir (CACHEBASH_DATA_DIR), from one working directory; never raises."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.data_dir = home / "data"
        self.env = {**os.environ, "CACHEBASH_DATA_DIR": str(self.data_dir), **(env or {})}

    def __call__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "cachebash"), *args], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=cwd or self.home, timeout=timeout)

    def ok(self, *args: str, **kwargs: object) -> str:
        """Stdout of a command that must succeed."""
        done = self(*args, **kwargs)  # type: ignore[arg-type]
        assert done.returncode == 0, f"cachebash {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout
