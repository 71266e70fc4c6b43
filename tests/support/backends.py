"""The Firestore emulators behind the `firestore-*` backends, started once per session."""

from __future__ import annotations

import os
from contextlib import ExitStack

import pytest

from support.firestore_emulator import Emulator, identify, stand_in_unavailable, start_stand_in


class Emulators:
    """Starts each emulator at most once per session, on first use."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._started: dict[str, Emulator | str] = {}

    def get(self, backend: str) -> Emulator:
        if backend not in self._started:
            self._started[backend] = self._start(backend)
        found = self._started[backend]
        if isinstance(found, str):
            if backend in os.environ.get("CACHEBASH_REQUIRE_BACKENDS", "").split():
                pytest.fail(f"{backend} is required (CACHEBASH_REQUIRE_BACKENDS) but cannot run: {found}")
            pytest.skip(f"{backend}: {found}")
        return found

    def _start(self, backend: str) -> Emulator | str:
        if backend == "firestore-standin":
            reason = stand_in_unavailable()
            return reason or self._stack.enter_context(start_stand_in())
        host = os.environ.get("FIRESTORE_EMULATOR_HOST")
        if not host:
            return ("FIRESTORE_EMULATOR_HOST is not set; `bash .ci/run` starts Google's emulator for the "
                    "suite (README: 'The full suite against Google's emulator')")
        try:
            found = identify(host)
        except Exception as exc:  # whatever stops us talking to it is the reason to give
            return f"FIRESTORE_EMULATOR_HOST={host} does not answer as a Firestore emulator: {exc!r}"
        if not found.faithful:
            return f"FIRESTORE_EMULATOR_HOST={host} is the npm stand-in, not Google's emulator"
        return found

    def close(self) -> None:
        self._stack.close()
