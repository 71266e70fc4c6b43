"""The Cloud Functions of the deploy plan, each in its own functions-framework process, as
Cloud Run runs them: the same `functions/main.py` targets, the same environment the deploy
sets (Firestore store, Pub/Sub bus), with the emulators in place of Google's services."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cachebash.bench.server import free_port
from cachebash.cloud_local.processes import Child, http_answers, spawn, wait_until

REPO = Path(__file__).resolve().parents[3]
MAIN = REPO / "functions" / "main.py"
#: Generous: eleven Python processes import side by side, on a machine that may be busy.
STARTUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Function:
    """A running function: its deploy name, the process serving it, and its base URL."""

    name: str
    child: Child
    url: str

    def wait_ready(self) -> None:
        """The mcp function has a health route. Any other answer (405 from a CloudEvent target,
        404 for /robots.txt from an HTTP one) shows the server is up without invoking the function."""
        probe = http_answers(f"{self.url}/health", status=200) if self.name == "mcp" else \
            http_answers(f"{self.url}/robots.txt")
        wait_until(self.child, probe, STARTUP_TIMEOUT)


def function_env(project: str, firestore_host: str, pubsub_host: str,
                 extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment (so CACHEBASH_LEASE_SECONDS and the like pass through), plus
    what `cachebash deploy` sets, with the log notifier instead of FCM and the emulators' hosts."""
    shared = str(REPO / "shared")
    path = os.pathsep.join(p for p in (shared, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **(extra or {}), "CACHEBASH_STORE": "firestore", "CACHEBASH_BUS": "pubsub",
            "CACHEBASH_NOTIFIER": "log", "GOOGLE_CLOUD_PROJECT": project, "FIRESTORE_EMULATOR_HOST": firestore_host,
            "PUBSUB_EMULATOR_HOST": pubsub_host, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def start_function(name: str, env: dict[str, str], log_dir: Path, *, label: str | None = None,
                   port: int | None = None) -> Function:
    """`python -m functions_framework --target NAME` on loopback, on a free port (or `port`);
    not yet waited for, so that all of them start side by side."""
    host, port = "127.0.0.1", port or free_port()
    label = label or name
    command = [sys.executable, "-m", "functions_framework", "--target", name, "--source", str(MAIN),
               "--host", host, "--port", str(port)]
    child = spawn(label, command, log_dir, env=env, cwd=REPO)
    return Function(name, child, f"http://{host}:{port}")
