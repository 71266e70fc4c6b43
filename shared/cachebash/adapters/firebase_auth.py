"""Firebase ID tokens, checked by firebase-admin (signature, audience, issuer, expiry). With
FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin accepts the emulator's unsigned tokens."""

from __future__ import annotations

from typing import Any

from cachebash.adapters.firebase_app import firebase_app
from cachebash.ports.identity import IdTokenVerifier, InvalidIdToken


class FirebaseVerifier(IdTokenVerifier):
    def __init__(self, app: Any = None) -> None:
        self._app = app

    def _firebase(self) -> Any:
        return self._app or firebase_app()

    def verify(self, token: str) -> str:
        from firebase_admin import auth

        try:
            claims = auth.verify_id_token(token, app=self._firebase())
        except (ValueError, auth.InvalidIdTokenError, auth.ExpiredIdTokenError, auth.CertificateFetchError) as exc:
            raise InvalidIdToken(str(exc)) from None
        return str(claims["uid"])
