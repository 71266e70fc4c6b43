"""The sign-in plumbing, for real: the Firebase Auth emulator issues ID tokens, the server's
FirebaseVerifier (firebase-admin) turns them into the uid, and the vendored Firebase JS SDK
(compat builds in console_static/vendor) signs in against the emulator in Chromium, offline."""

from __future__ import annotations

import base64
import functools
import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import Tab
from cachebash.adapters.firebase_auth import FirebaseVerifier
from cachebash.bench.server import free_port
from cachebash.ports.identity import InvalidIdToken
from support.firebase_auth_emulator import AuthEmulatorError, create_user, sign_in
from support.id_tokens import PROJECT

PASSWORD = "correct horse battery"


def new_email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _encode(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _with_claims(token: str, **claims: Any) -> str:
    header, _, signature = token.split(".")
    return ".".join([header, _encode({**_segment(token, 1), **claims}), signature])


# ---------------------------------------------------------------------------- REST -> firebase-admin


def test_emulator_id_token_verifies_to_the_users_uid(firebase_auth: str, firebase_verifier: FirebaseVerifier) -> None:
    email = new_email()
    uid = create_user(firebase_auth, email, PASSWORD)
    token = sign_in(firebase_auth, email, PASSWORD)

    assert _segment(token, 0)["alg"] == "none"  # the emulator's tokens are unsigned
    claims = _segment(token, 1)
    assert claims["aud"] == PROJECT and claims["iss"] == f"https://securetoken.google.com/{PROJECT}"
    assert claims["firebase"]["sign_in_provider"] == "password" and claims["email"] == email
    assert firebase_verifier.verify(token) == uid

    with pytest.raises(AuthEmulatorError) as wrong:
        sign_in(firebase_auth, email, "not the password")
    assert wrong.value.status == 400 and wrong.value.message.startswith("INVALID_")


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda t: _with_claims(t, aud="demo-other", iss="https://securetoken.google.com/demo-other"),
                 id="other-project"),
    pytest.param(lambda t: _with_claims(t, iss="https://evil.example/demo-cachebash"), id="other-issuer"),
    pytest.param(lambda t: _with_claims(t, sub=""), id="empty-subject"),
    pytest.param(lambda t: t.split(".")[0] + ".not*base64.", id="corrupt-payload"),
    pytest.param(lambda t: t[: len(t) // 2], id="truncated"),
])
def test_tampered_emulator_token_is_refused(firebase_auth: str, firebase_verifier: FirebaseVerifier,
                                            tamper: Callable[[str], str]) -> None:
    email = new_email()
    create_user(firebase_auth, email, PASSWORD)
    token = sign_in(firebase_auth, email, PASSWORD)
    with pytest.raises(InvalidIdToken):
        firebase_verifier.verify(tamper(token))


# ---------------------------------------------------------------------------- the browser

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Firebase Auth emulator check</title><link rel="icon" href="data:,"></head>
<body>
<form id="sign-in">
  <input id="email" type="email" autocomplete="username">
  <input id="password" type="password" autocomplete="current-password">
  <button id="go" type="submit">Sign in</button>
</form>
<output id="uid"></output><output id="token"></output><output id="error"></output>
<script src="vendor/firebase-app-compat.js"></script>
<script src="vendor/firebase-auth-compat.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  firebase.initializeApp({apiKey: "demo-api-key", authDomain: params.get("project") + ".firebaseapp.com",
                          projectId: params.get("project")});
  const auth = firebase.auth();
  auth.useEmulator("http://" + params.get("emulator"), {disableWarnings: true});
  document.getElementById("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const signed = await auth.signInWithEmailAndPassword(document.getElementById("email").value,
                                                           document.getElementById("password").value);
      document.getElementById("uid").textContent = signed.user.uid;
      document.getElementById("token").textContent = await signed.user.getIdToken();
    } catch (error) {
      document.getElementById("error").textContent = error.code || String(error);
    }
  });
</script>
</body></html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def test_page(tmp_path: Path, console_vendor: Path) -> Iterator[str]:
    """PAGE and a copy of the vendored SDK, served from a temporary directory on a free port."""
    if not (console_vendor / "firebase-auth-compat.js").is_file():
        pytest.fail(f"the vendored Firebase SDK is missing from {console_vendor}: run `make console-vendor`")
    (tmp_path / "index.html").write_text(PAGE)
    shutil.copytree(console_vendor, tmp_path / "vendor")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()),
                                 functools.partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, name="test-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sign_in_in_page(tab: Tab, url: str, emulator: str, email: str, password: str) -> None:
    tab.page.goto(f"{url}?emulator={emulator}&project={PROJECT}")
    tab.page.fill("#email", email)
    tab.page.fill("#password", password)
    tab.page.click("#go")
    tab.page.wait_for_function("() => document.getElementById('token').textContent"
                               " || document.getElementById('error').textContent", timeout=20_000)


@pytest.mark.parametrize("viewport", ["phone", "desk"])
def test_vendored_sdk_signs_in_against_the_emulator_in_chromium(
        firebase_auth: str, firebase_verifier: FirebaseVerifier, test_page: str, console_vendor: Path,
        viewport: str, phone_page: Callable[..., Tab], desk_page: Callable[..., Tab]) -> None:
    email = new_email()
    uid = create_user(firebase_auth, email, PASSWORD)
    tab = (phone_page if viewport == "phone" else desk_page)()

    _sign_in_in_page(tab, test_page, firebase_auth, email, PASSWORD)

    assert tab.page.text_content("#error") == ""
    assert tab.page.text_content("#uid") == uid
    token = tab.page.text_content("#token") or ""
    assert _segment(token, 1)["firebase"]["sign_in_provider"] == "password"
    assert firebase_verifier.verify(token) == uid
    assert tab.page.evaluate("firebase.SDK_VERSION") == (console_vendor / "VERSION").read_text().split()[1]
    tab.assert_clean()  # no console errors, and nothing fetched beyond loopback: the SDK works offline


def test_wrong_password_in_chromium_is_the_sdks_error(firebase_auth: str, test_page: str,
                                                      desk_page: Callable[..., Tab]) -> None:
    email = new_email()
    create_user(firebase_auth, email, PASSWORD)
    tab = desk_page()

    _sign_in_in_page(tab, test_page, firebase_auth, email, "not the password")

    assert tab.page.text_content("#token") == ""
    assert tab.page.text_content("#error") in {"auth/invalid-credential", "auth/wrong-password"}
    assert not tab.blocked
    # The only console error is the browser's report of the emulator's 400 reply.
    assert all("400" in error for error in tab.errors), tab.errors
