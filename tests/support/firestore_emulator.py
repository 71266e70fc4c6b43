"""Firestore emulators for the suite: the npm stand-in, and Google's emulator.

The stand-in (`@firestore-emulator/server`, pinned in tests/emulator) is an in-memory Node
gRPC server that starts in ~0.4 s. It is NOT a faithful Firestore: transactions never
conflict and commits are not atomic, set() merges instead of replacing, and cursors are
ignored. Tests that depend on those carry a marker (see `STAND_IN_GAPS`) and are skipped on it.

Google's emulator (the `cloud-firestore-emulator` gcloud component, Java) behaves like
Firestore, including ABORTED transactions under contention. Pytest uses it when
FIRESTORE_EMULATOR_HOST is set; `.ci/run` starts it with this module's `exec-google` command:

    python3 tests/support/firestore_emulator.py exec-google -- make test

This file imports only the standard library at module level, so that command runs before
any virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

EMULATOR_DIR = Path(__file__).resolve().parent.parent / "emulator"
STAND_IN_READY = "FIRESTORE_EMULATOR_READY "
GOOGLE_READY = "Dev App Server is now running"
STARTUP_TIMEOUT_S = 60.0

#: Marker name -> why a test carrying it cannot run on the npm stand-in.
STAND_IN_GAPS = {
    "real_transactions": "the npm Firestore stand-in's transactions never conflict and its commits are not "
                         "atomic; this runs on SQLite and on Google's emulator",
    "real_cursors": "the npm Firestore stand-in ignores query cursors (start_after), so paging would repeat "
                    "the first page; this runs on SQLite and on Google's emulator",
    "real_set": "the npm Firestore stand-in's set() merges into an existing document instead of replacing "
                "it; this runs on SQLite and on Google's emulator",
    "real_ordering": "the npm Firestore stand-in breaks order-by ties by insertion order, not by document id; "
                     "this runs on SQLite and on Google's emulator",
    "real_preconditions": "the npm Firestore stand-in ignores write preconditions (a document's update time), so "
                          "a conditional write always applies; this runs on SQLite and on Google's emulator",
}

#: Where Debian's google-cloud-cli-firestore-emulator package puts the launcher.
_DEBIAN_SDK = Path("/usr/lib/google-cloud-sdk")
_LAUNCHER = Path("platform/cloud-firestore-emulator/cloud_firestore_emulator")


@dataclass(frozen=True)
class Emulator:
    """A running emulator: `host` is what FIRESTORE_EMULATOR_HOST would hold."""

    kind: str  # "stand-in" | "google"
    host: str

    @property
    def faithful(self) -> bool:
        return self.kind == "google"

    def gap(self, marker: str) -> str | None:
        """Why a test with `marker` cannot run here, or None if it can."""
        return None if self.faithful else STAND_IN_GAPS.get(marker)


# ---------------------------------------------------------------------------- the npm stand-in


def _installed() -> bool:
    return (EMULATOR_DIR / "node_modules" / "@firestore-emulator" / "server" / "package.json").is_file()


def stand_in_unavailable() -> str | None:
    """Say why the stand-in can't run, so callers can skip with a reason instead of erroring."""
    if shutil.which("node") is None:
        return "node is not on PATH, so the npm Firestore stand-in cannot run"
    if not _installed():
        if shutil.which("npm") is None:
            return "tests/emulator/node_modules is missing and npm is not on PATH"
        try:
            ensure_installed()
        except (OSError, subprocess.SubprocessError) as exc:
            return f"npm ci in tests/emulator failed: {exc}"
    return None


def ensure_installed() -> None:
    """Install from the lockfile on first use: node_modules is git-ignored, so fresh clones lack it."""
    if _installed():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=EMULATOR_DIR, check=True, capture_output=True, text=True, timeout=300,
    )


@contextmanager
def start_stand_in() -> Iterator[Emulator]:
    """A fresh, empty stand-in on a free loopback port, stopped on exit."""
    ensure_installed()
    port = free_port()
    with _server(["node", "serve.mjs", str(port), "127.0.0.1"], EMULATOR_DIR, STAND_IN_READY,
                 f"127.0.0.1:{port}", exit_with_us=True) as host:
        yield Emulator("stand-in", host)


# ---------------------------------------------------------------------------- Google's emulator


def google_launcher() -> Path | None:
    """The gcloud component's launcher, if installed (it also needs java)."""
    roots = [_DEBIAN_SDK]
    if gcloud := shutil.which("gcloud"):
        roots.insert(0, Path(gcloud).resolve().parent.parent)
    for root in roots:
        if (root / _LAUNCHER).is_file() and shutil.which("java"):
            return root / _LAUNCHER
    return None


@contextmanager
def start_google() -> Iterator[Emulator]:
    """A fresh Google emulator on a free loopback port (~2 s to start), stopped on exit."""
    launcher = google_launcher()
    if launcher is None:
        raise RuntimeError("Google's Firestore emulator is not installed (gcloud component "
                           "cloud-firestore-emulator, plus java)")
    port = free_port()
    command = [str(launcher), "start", "--host=127.0.0.1", f"--port={port}"]
    with _server(command, launcher.parent, GOOGLE_READY, f"127.0.0.1:{port}") as host:
        yield Emulator("google", host)


def identify(host: str) -> Emulator:
    """Tell Google's emulator from the stand-in behind an address: only the former lists
    collection ids. Needs grpc (the test environment has it)."""
    import grpc  # type: ignore[import-untyped, unused-ignore]
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    client = firestore.Client(project="demo-identify", credentials=AnonymousCredentials())
    client._emulator_host = host
    try:
        with grpc.insecure_channel(host) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
        list(client.collections())
    except gexc.Unknown:
        return Emulator("stand-in", host)
    finally:
        client.close()
    return Emulator("google", host)


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(host: str) -> bool:
    name, _, port = host.rpartition(":")
    with suppress(OSError), socket.create_connection((name, int(port)), timeout=1):
        return True
    return False


@contextmanager
def _server(command: Sequence[str], cwd: Path, ready_line: str, host: str, *,
            exit_with_us: bool = False) -> Iterator[str]:
    """Run `command` in its own session until it prints `ready_line` and `host` accepts
    connections; on exit kill the whole session, so no JVM or node outlives the run.
    `exit_with_us`: the server also exits when our end of its stdin closes, which covers
    this process being killed before it can clean up (serve.mjs supports it)."""
    env = {**os.environ, "FIRESTORE_EMULATOR_EXIT_ON_EOF": "1"} if exit_with_us else None
    proc = subprocess.Popen(list(command), cwd=cwd, stdin=subprocess.PIPE if exit_with_us else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=env)
    ready = threading.Event()
    output: list[str] = []

    def pump() -> None:
        # Keep draining forever: a full pipe would block the emulator's logging.
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if ready_line in line:
                ready.set()

    reader = threading.Thread(target=pump, name=f"emulator-log-{host}", daemon=True)
    reader.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while not (ready.wait(0.05) and _port_open(host)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start on {host}:\n{''.join(output)}")
        yield host
    finally:
        _kill_session(proc)
        reader.join(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def _kill_session(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    with suppress(ProcessLookupError):  # the JVM is a child of the launcher script
        os.killpg(proc.pid, signal.SIGKILL)


def _exit_on(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exec_google(command: Sequence[str]) -> int:
    """Run `command` with FIRESTORE_EMULATOR_HOST pointing at a fresh Google emulator."""
    # A cancelled CI job sends SIGTERM: turn it into an exit, so the emulator is stopped too.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on)
    started = time.monotonic()
    with start_google() as emulator:
        print(f"Google's Firestore emulator ready at {emulator.host} in {time.monotonic() - started:.1f} s",
              file=sys.stderr, flush=True)
        env = {**os.environ, "FIRESTORE_EMULATOR_HOST": emulator.host}
        return subprocess.run(list(command), env=env).returncode


def main(argv: Sequence[str]) -> int:
    if len(argv) >= 2 and argv[0] == "exec-google" and argv[1] == "--" and argv[2:]:
        return exec_google(argv[2:])
    if argv == ["google-available"]:
        return 0 if google_launcher() else 1
    print("usage: firestore_emulator.py exec-google -- COMMAND... | google-available", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
