"""Checks that turn a bad place to run into one line saying what to do: the data dir, the
database file in it, the port. `serve` runs them before it starts; `doctor` reports them."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from pathlib import Path

from cachebash.cli.common import CliError
from cachebash.config import Settings

SQLITE_HEADER = b"SQLite format 3\x00"


def check_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise CliError(f"data dir {path} is a file, not a directory: set CACHEBASH_DATA_DIR or --data-dir to a "
                       "directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create data dir {path} ({exc.strerror}): set CACHEBASH_DATA_DIR or --data-dir to a "
                       "directory you can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"data dir {path} is not writable: set CACHEBASH_DATA_DIR or --data-dir to a directory you "
                       "can write")


def check_database(path: Path) -> None:
    """A file that exists must be CacheBash's SQLite database (one `docs` table), not any file."""
    if not path.exists():
        return
    advice = "move it away or set --data-dir to another directory"
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a CacheBash database: {advice}")
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise CliError(f"{path} is not a CacheBash database (not a SQLite file): {advice}")
    if not header:
        return  # empty: SQLite makes a database of it
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise CliError(f"{path} is not a readable CacheBash database ({exc}): {advice}") from None
    if tables and "docs" not in tables:
        raise CliError(f"{path} is a SQLite database of something else (tables: {', '.join(sorted(tables))}), not "
                       f"CacheBash's: {advice}")


def check_store(config: Settings) -> None:
    if config.store == "sqlite":
        check_data_dir(config.data_dir)
        check_database(config.sqlite_path)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear line, not uvicorn's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CliError(_bind_problem(host, port, exc)) from None
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        pid = listener_pid(port)
        return (f"port {port} is in use{f' (pid {pid}?)' if pid else ''}: set CACHEBASH_PORT or stop the other "
                "server")
    if exc.errno == errno.EACCES:
        return f"port {port} needs more rights than this user has: set CACHEBASH_PORT to 1024 or more"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}): set CACHEBASH_HOST to an address of this machine"


def listener_pid(port: int) -> int | None:
    """The process listening on `port`, where /proc shows it (Linux, processes this user may see)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None
