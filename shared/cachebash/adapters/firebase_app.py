"""The Firebase Admin app, initialised on first use (never at import) and shared by the
adapters that need it (ID token verification, FCM)."""

from __future__ import annotations

from typing import Any


def firebase_app() -> Any:
    import firebase_admin

    return firebase_admin.get_app() if firebase_admin._apps else firebase_admin.initialize_app()
