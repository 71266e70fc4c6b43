"""One server per data dir: `server.lock` in it, held (flock) for the server's life and holding
its pid, URL and start time. A second server on the same SQLite file is refused, since its
writes would not wake the first one's waiting agents; `status` and the CLI's other commands
read it to find the running server. A crashed server's lock is released by the kernel."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cachebash.cli.common import CliError

try:
    import fcntl
except ImportError:  # Windows: no lock (and no second-server check)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "server.lock"


@dataclass(frozen=True)
class Running:
    pid: int
    url: str
    started_at: float

    @property
    def uptime_seconds(self) -> float:
        return max(0.0, time.time() - self.started_at)


class ServerLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> ServerLock:
        file = self.path.open("a+")
        if fcntl is not None:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.close()
                holder = running(self.path.parent)
                who = f" (pid {holder.pid}, {holder.url})" if holder else ""
                raise CliError(f"another CacheBash server{who} is using data dir {self.path.parent}: stop it, or "
                               "give this one another --data-dir") from None
        self._file = file
        return self

    def publish(self, url: str) -> None:
        """Say who holds the lock, for `status` and for a refused second server."""
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), "url": url, "startedAt": time.time()}))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.close()
            self._file = None


def running(data_dir: Path) -> Running | None:
    """The server holding this data dir's lock, or None when none does."""
    path = data_dir / LOCK_NAME
    try:
        file = path.open("r")
    except OSError:
        return None
    with file:
        if fcntl is not None:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None  # nobody holds it
            except BlockingIOError:
                pass
        info = _read(file.read())
    if info is None:
        return None
    return Running(int(info["pid"]), str(info["url"]), float(info["startedAt"]))


def _read(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and {"pid", "url", "startedAt"} <= value.keys() else None
