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


class Terminal:
    """A command in a real terminal (a tmux session), for what only a terminal shows: Ctrl-C, live output."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.session = f"cb{os.getpid()}{id(self)}"
        shown = [f"{k}={v}" for k, v in env.items() if k in ("PYTHONPATH", "PATH") or k.startswith("CACHEBASH_")]
        # bash keeps the pane open after the command, so its last lines and exit code stay readable
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "200", "-y", "50", "env", *shown,
                        "bash", "-c", f"{command}; echo exit=$?; sleep 60"], check=True)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The screen once `text` is on it (polling the pane: a terminal has nothing to wait on)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", self.session], capture_output=True,
                                    text=True).stdout
            if text in screen or time.monotonic() > deadline:
                assert text in screen, screen
                return screen
            time.sleep(0.1)
