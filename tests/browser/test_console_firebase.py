"""The console as the cloud serves it: the `mcp` Cloud Function under functions-framework (owner
API behind Firebase sign-in), the page's vendored Firebase JS SDK signing a user in on the
Firebase Auth emulator, and firebase-admin in the function verifying that user's ID token."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.firebase_auth_emulator import create_user, sign_in
from support.id_tokens import PROJECT
from support.server import function_process


@pytest.fixture
def cloud_console(firebase_auth: str, tmp_path: Path) -> Iterator[str]:
    """`functions-framework --target mcp` as Cloud Run runs it, its Firebase Auth on the emulator."""
    web_config = {"apiKey": "demo-api-key", "projectId": PROJECT, "authDomain": f"{PROJECT}.firebaseapp.com"}
    env = {**os.environ, "CACHEBASH_STORE": "sqlite", "CACHEBASH_DATA_DIR": str(tmp_path / "data"),
           "CACHEBASH_BUS": "inprocess", "CACHEBASH_NOTIFIER": "log", "GOOGLE_CLOUD_PROJECT": PROJECT,
           "FIREBASE_AUTH_EMULATOR_HOST": firebase_auth, "CACHEBASH_FIREBASE_CONFIG": json.dumps(web_config)}
    with function_process("mcp", env) as base:
        yield base


def test_signing_in_with_firebase_opens_the_owners_console(cloud_console: str, firebase_auth: str,
                                                           desk_page: Any) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    uid = create_user(firebase_auth, email, "secret-pw-1")
    config = httpx.get(f"{cloud_console}/console/config.json").json()
    assert config["mode"] == "firebase" and config["authEmulator"] == f"http://{firebase_auth}"
    assert httpx.get(f"{cloud_console}/v1/owner/inbox").status_code == 401

    tab = desk_page()
    tab.page.goto(f"{cloud_console}/console/")
    form = tab.page.get_by_test_id("signin-form")
    form.wait_for()
    tab.page.get_by_test_id("signin-email").fill(email)
    tab.page.get_by_test_id("signin-password").fill("secret-pw-1")
    form.locator("button[type=submit]").first.click()
    tab.page.get_by_test_id("open-count").wait_for()

    tab.page.get_by_test_id("nav-keys").click()
    made = tab.page.get_by_test_id("key-create-form")
    made.locator("[name=programId]").fill("builder")
    made.locator("button[type=submit]").click()
    key = tab.page.get_by_test_id("new-key-value").inner_text().strip()
    assert key.startswith("cb_")

    # The key belongs to the signed-in user's tenant (the uid), as the owner API sees it with her token.
    token = sign_in(firebase_auth, email, "secret-pw-1")
    listed = httpx.get(f"{cloud_console}/v1/owner/keys", headers={"Authorization": f"Bearer {token}"}).json()
    assert [k["programId"] for k in listed["keys"]] == ["builder"]
    session = httpx.get(f"{cloud_console}/v1/owner/session", headers={"Authorization": f"Bearer {token}"}).json()
    assert session["tenant"] == uid and session["mode"] == "firebase"
    # A browser registering for web push: the device write path (delivery itself is FCM's).
    device = httpx.post(f"{cloud_console}/v1/owner/devices", json={"token": "fcm-web-token"},
                        headers={"Authorization": f"Bearer {token}"})
    assert device.status_code == 200 and device.json()["deviceId"]
    # The agent's key is no way into the owner API, here either.
    assert httpx.get(f"{cloud_console}/v1/owner/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    tab.assert_clean()
