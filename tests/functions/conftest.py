"""Cloud Functions under functions-framework's own test client, fed the payloads GCP sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cachebash import cloud
from cachebash.services.runtime import Runtime
from support.id_tokens import PROJECT


@pytest.fixture
def cloud_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Runtime]:
    """The functions' runtime on a fresh store; events stay in-process unless a test sends them."""
    monkeypatch.setenv("CACHEBASH_STORE", "sqlite")
    monkeypatch.setenv("CACHEBASH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CACHEBASH_BUS", "inprocess")
    monkeypatch.setenv("CACHEBASH_NOTIFIER", "log")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    cloud.reset()
    yield cloud.runtime()
    cloud.runtime().dispatcher.flush()  # before the store closes, not from the outbox's thread after it
    cloud.runtime().store.close()
    cloud.reset()
