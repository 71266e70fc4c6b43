"""Google's Firestore and Pub/Sub emulators (gcloud components, Java), found and started.

They are the same emulators the test suite uses (tests/support/firestore_emulator.py and
pubsub_emulator.py); this package cannot import from tests/, so it finds them again here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachebash.bench.server import free_port
from cachebash.cloud_local.processes import Child, log_says, spawn, wait_until

#: Where Debian's google-cloud-cli packages put the SDK; a gcloud on PATH is looked at first.
DEBIAN_SDK = Path("/usr/lib/google-cloud-sdk")
FIRESTORE_JAR = Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
FIRESTORE_READY = "Dev App Server is now running"
PUBSUB_LAUNCHER = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
PUBSUB_READY = "Server started"
STARTUP_TIMEOUT = 90.0


def _sdk_roots() -> list[Path]:
    roots = [DEBIAN_SDK]
    if gcloud := shutil.which("gcloud"):
        roots.insert(0, Path(gcloud).resolve().parent.parent)
    return roots


def _component(relative: Path) -> Path | None:
    return next((root / relative for root in _sdk_roots() if (root / relative).is_file()), None)


def firestore_jar() -> Path | None:
    return _component(FIRESTORE_JAR)


def pubsub_launcher() -> Path | None:
    return _component(PUBSUB_LAUNCHER)


def missing(*, need_firestore: bool = True, need_pubsub: bool = True) -> str | None:
    """Why the emulators cannot be started here (to skip or fail with the reason), or None."""
    reasons = []
    if shutil.which("java") is None:
        reasons.append("java is not on PATH")
    if need_firestore and firestore_jar() is None:
        reasons.append(f"the gcloud component cloud-firestore-emulator is not installed ({DEBIAN_SDK / FIRESTORE_JAR})")
    if need_pubsub and pubsub_launcher() is None:
        reasons.append(f"the gcloud component pubsub-emulator is not installed ({DEBIAN_SDK / PUBSUB_LAUNCHER})")
    return "; ".join(reasons) or None


@dataclass(frozen=True)
class Emulator:
    """A started emulator and its `host:port`; `wait_ready` once there is something to do meanwhile."""

    child: Child
    host: str
    ready_line: str

    def wait_ready(self) -> None:
        wait_until(self.child, log_says(self.child, self.ready_line), STARTUP_TIMEOUT)


#: Starts an emulator with its log in the given directory.
Starter = Callable[[Path], Emulator]


def start_firestore(log_dir: Path, host: str = "127.0.0.1") -> Emulator:
    """A fresh Firestore emulator on a free port (started, not yet waited for)."""
    jar = firestore_jar()
    if jar is None or shutil.which("java") is None:
        raise RuntimeError(missing(need_pubsub=False) or "the Firestore emulator cannot run")
    port = free_port()
    child = spawn("firestore-emulator", ["java", "-Duser.language=en", "-cp", str(jar), FIRESTORE_MAIN, "start",
                                         f"--host={host}", f"--port={port}"], log_dir)
    return Emulator(child, f"{host}:{port}", FIRESTORE_READY)


def start_pubsub(log_dir: Path, host: str = "127.0.0.1") -> Emulator:
    """A fresh Pub/Sub emulator on a free port (started, not yet waited for)."""
    launcher = pubsub_launcher()
    if launcher is None or shutil.which("java") is None:
        raise RuntimeError(missing(need_firestore=False) or "the Pub/Sub emulator cannot run")
    port = free_port()
    child = spawn("pubsub-emulator", [str(launcher), f"--host={host}", f"--port={port}"], log_dir)
    return Emulator(child, f"{host}:{port}", PUBSUB_READY)
