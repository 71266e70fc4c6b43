"""Child processes of the local topology: started in their own session with their output in a
log file, waited for until they answer, and stopped together.

Each child runs in a session of its own so that a Ctrl-C in the terminal reaches only the
topology, which then stops the children in order instead of racing them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cachebash.bench.server import stop_process


class StartFailed(RuntimeError):
    """A child exited or did not answer in time; the message ends with the tail of its log."""


@dataclass
class Child:
    """One started process, its log file, and how to tell it is ready."""

    name: str
    proc: subprocess.Popen[str]
    log_path: Path
    _log: IO[str] = field(repr=False)

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return ""

    def failed(self, why: str) -> StartFailed:
        return StartFailed(f"{self.name}: {why} (log {self.log_path}):\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) through `stop_process`, then whatever is left of its session."""
        stop_process(self.proc)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # launcher scripts' JVMs, gunicorn's workers
        self._log.close()


def spawn(name: str, command: Sequence[str], log_dir: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Child:
    """Start `command` with stdout and stderr appended to `log_dir/<name>.log`."""
    log_path = log_dir / f"{name}.log"
    log = log_path.open("a", encoding="utf-8")
    proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=cwd, start_new_session=True, preexec_fn=_term_with_parent())
    return Child(name, proc, log_path, log)


def _term_with_parent() -> Callable[[], None] | None:
    """What the child runs before exec, on Linux: ask the kernel for SIGTERM when the topology
    dies, even by SIGKILL, so no emulator or function outlives it. The C function is looked up
    here, in the parent, so that the forked child only makes the one call."""
    if sys.platform != "linux":
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def wait_until(child: Child, ready: Callable[[], bool], timeout: float) -> None:
    """Poll `ready` until it holds; fail with the child's log if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if child.proc.poll() is not None:
            raise child.failed(f"exited with status {child.proc.returncode}")
        if time.monotonic() > deadline:
            raise child.failed(f"not ready after {timeout:.0f} s")
        time.sleep(0.1)


def log_says(child: Child, text: str) -> Callable[[], bool]:
    """Ready once `text` appears in the child's log (the emulators announce themselves)."""
    return lambda: text in child.log_path.read_text(errors="replace")


def http_answers(url: str, *, status: int | None = None) -> Callable[[], bool]:
    """Ready once `url` answers: with `status`, or (None) with any HTTP status at all."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return status is None or reply.status == status
        except urllib.error.HTTPError as exc:
            return status is None or exc.code == status
        except OSError:
            return False

    return check
