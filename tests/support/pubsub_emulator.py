"""Google's Pub/Sub emulator for tests: the one PUBSUB_EMULATOR_HOST names, or one started
from the Cloud SDK when this machine has it; otherwise tests skip with that reason."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cachebash.bench.server import free_port

BINARY = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
READY = "Server started"


def unavailable() -> str | None:
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        return None
    if not BINARY.exists():
        return f"PUBSUB_EMULATOR_HOST is not set and {BINARY} is not installed"
    if shutil.which("java") is None:
        return "PUBSUB_EMULATOR_HOST is not set and java (which the Pub/Sub emulator needs) is not on PATH"
    return None


@contextmanager
def pubsub_emulator() -> Iterator[str]:
    if host := os.environ.get("PUBSUB_EMULATOR_HOST"):
        yield host
        return
    port = free_port()
    proc = subprocess.Popen([str(BINARY), "--host=127.0.0.1", f"--port={port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:
            if READY in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("Pub/Sub emulator did not start")
        else:
            raise RuntimeError("Pub/Sub emulator exited")
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()
