"""Run the npm `@firestore-emulator/server` stand-in so tests can drive the real Python Firestore client.

It is an in-memory Node gRPC server (no Java, no gcloud) that starts in ~0.4 s and keeps
nothing across restarts; see tests/emulator/serve.mjs. It is NOT a faithful Firestore:
transactions never conflict, set() merges instead of replacing, cursors, offsets and
collection groups are ignored. Give each test its own project id to isolate its data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

EMULATOR_DIR = Path(__file__).resolve().parent.parent / "emulator"
READY_PREFIX = "FIRESTORE_EMULATOR_READY "
STARTUP_TIMEOUT_S = 20.0


def _installed() -> bool:
    return (EMULATOR_DIR / "node_modules" / "@firestore-emulator" / "server" / "package.json").is_file()


def node_available() -> str | None:
    """Say why the stand-in can't run, so callers can skip with a reason instead of erroring."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not _installed():
        if shutil.which("npm") is None:
            return "tests/emulator/node_modules is missing and npm is not on PATH"
        try:
            ensure_installed()
        except (OSError, subprocess.SubprocessError) as exc:
            return f"npm install in tests/emulator failed: {exc}"
    return None


def ensure_installed() -> None:
    """Install from the lockfile on first use: node_modules is git-ignored, so fresh clones and CI lack it."""
    if _installed():
        return
    cmd = ["npm", "ci"] if (EMULATOR_DIR / "package-lock.json").is_file() else ["npm", "install"]
    subprocess.run(
        [*cmd, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=EMULATOR_DIR,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_grpc_ready(target: str, deadline: float) -> None:
    """The ready line means the port is bound; a gRPC handshake proves the client will really connect."""
    # grpc ships with google-cloud-firestore; imported late so node_available() works without it.
    import grpc  # type: ignore[import-untyped, unused-ignore]

    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=max(0.1, deadline - time.monotonic()))


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the whole session we started, so no stray server outlives the test run."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextmanager
def start_emulator() -> Iterator[str]:
    """Yield "127.0.0.1:PORT" of a fresh, empty stand-in; suitable for FIRESTORE_EMULATOR_HOST."""
    ensure_installed()
    port = _free_port()
    proc = subprocess.Popen(
        ["node", "serve.mjs", str(port), "127.0.0.1"],
        cwd=EMULATOR_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    output: list[str] = []

    def pump() -> None:
        # Keep draining stdout forever: a full pipe would block the server's console.error calls.
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if line.startswith(READY_PREFIX):
                ready.set()

    reader = threading.Thread(target=pump, name="firestore-emulator-log", daemon=True)
    reader.start()
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while not ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Firestore stand-in did not start on {target}:\n{''.join(output)}")
        _wait_grpc_ready(target, deadline)
        yield target
    finally:
        _kill_group(proc)
        reader.join(timeout=5)  # EOF follows the kill; closing first would race the reader
        if proc.stdout is not None:
            proc.stdout.close()
