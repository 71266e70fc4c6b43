"""The Firebase Auth emulator for the suite: npm `firebase-tools` (pinned in tests/emulator).

    with start_auth_emulator() as host:        # "127.0.0.1:PORT", what FIREBASE_AUTH_EMULATOR_HOST holds
        uid = create_user(host, "ada@example.com", "secret-pw")
        token = sign_in(host, "ada@example.com", "secret-pw")

Only the Auth emulator runs (`firebase emulators:start --only auth`): it is plain Node, so it
needs no Java and downloads nothing, and it starts in a few seconds. Each start gets its own
temporary firebase.json with free ports for Auth, the emulator hub and the logging emulator,
and its own TMPDIR (where firebase-tools keeps the hub's locator file), so runs side by side
do not clash. The emulator's ID tokens are unsigned (`alg: none`); firebase-admin accepts them
only while FIREBASE_AUTH_EMULATOR_HOST is set, and then checks their claims, not a signature.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cachebash.bench.server import free_port
from support.firestore_emulator import EMULATOR_DIR, STARTUP_TIMEOUT_S, _server
from support.id_tokens import PROJECT

FIREBASE = EMULATOR_DIR / "node_modules" / ".bin" / "firebase"
READY = "All emulators ready"
API_KEY = "any"  # the emulator accepts any API key

#: Runs the emulator as its child and kills their whole session when our end of its stdin
#: closes, i.e. when the test process is gone (even SIGKILLed) without stopping it. The
#: firebase CLI has no such switch of its own. argv: TMPDIR, then the command.
_GUARD = """\
import os, signal, subprocess, sys, threading
env = {**os.environ, "TMPDIR": sys.argv[1], "CI": "true"}  # CI: no MOTD fetch, no prompts
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, env=env)
def orphaned():
    sys.stdin.buffer.read()
    child.terminate()
    try:
        child.wait(timeout=10)
    finally:
        os.killpg(0, signal.SIGKILL)  # whatever it started, and this guard
threading.Thread(target=orphaned, daemon=True).start()
sys.exit(child.wait())
"""


def _installed() -> bool:
    return FIREBASE.is_file() and (EMULATOR_DIR / "node_modules" / "firebase-tools" / "package.json").is_file()


def auth_emulator_unavailable() -> str | None:
    """Say why the Auth emulator can't run here (so callers skip with a reason), or None."""
    if shutil.which("node") is None:
        return "node is not on PATH, so the Firebase Auth emulator (npm firebase-tools) cannot run"
    if not _installed():
        if shutil.which("npm") is None:
            return "firebase-tools is not installed in tests/emulator/node_modules and npm is not on PATH"
        try:
            # node_modules is git-ignored: install from the lockfile, as `make emulator-deps` does.
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=EMULATOR_DIR,
                           check=True, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"npm ci in tests/emulator failed: {exc}"
        if not _installed():
            return "npm ci in tests/emulator did not install firebase-tools"
    return None


@contextmanager
def start_auth_emulator(project: str = PROJECT) -> Iterator[str]:
    """A fresh, empty Auth emulator for `project` on a free loopback port; yields its host
    ("127.0.0.1:PORT") once http://HOST/ answers, and kills its process group on exit."""
    with tempfile.TemporaryDirectory(prefix="firebase-auth-") as scratch:
        port = free_port()
        config = {"emulators": {
            "auth": {"host": "127.0.0.1", "port": port},
            "hub": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"host": "127.0.0.1", "port": free_port()},
            "ui": {"enabled": False},
        }}
        config_path = Path(scratch) / "firebase.json"
        config_path.write_text(json.dumps(config))
        tmp = Path(scratch) / "tmp"
        tmp.mkdir()
        command = [sys.executable, "-c", _GUARD, str(tmp), str(FIREBASE), "emulators:start", "--only", "auth",
                   "--project", project, "--config", str(config_path), "--non-interactive"]
        host = f"127.0.0.1:{port}"
        with _server(command, Path(scratch), READY, host, exit_with_us=True):
            _wait_answering(host)
            yield host


def _wait_answering(host: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}/", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Firebase Auth emulator at {host} does not answer http://{host}/")
        time.sleep(0.05)


# ---------------------------------------------------------------------------- the REST API


class AuthEmulatorError(RuntimeError):
    """The emulator refused a request; `message` is its error code (EMAIL_EXISTS, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


def _call(host: str, method: str, path: str, body: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{host}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            raw = reply.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            message = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = detail
        raise AuthEmulatorError(exc.code, message) from None
    return json.loads(raw) if raw else {}


def create_user(host: str, email: str, password: str) -> str:
    """Sign a new email/password user up on the emulator; returns its uid."""
    made = _call(host, "POST", f"/identitytoolkit.googleapis.com/v1/accounts:signUp?key={API_KEY}",
                 {"email": email, "password": password, "returnSecureToken": True})
    return str(made["localId"])


def sign_in(host: str, email: str, password: str) -> str:
    """Sign an existing user in with email and password; returns a fresh ID token."""
    signed = _call(host, "POST", f"/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key={API_KEY}",
                   {"email": email, "password": password, "returnSecureToken": True})
    return str(signed["idToken"])


def clear_users(host: str, project: str = PROJECT) -> None:
    """Delete every user of `project` on the emulator (its own reset endpoint)."""
    _call(host, "DELETE", f"/emulator/v1/projects/{project}/accounts", headers={"Authorization": "Bearer owner"})
