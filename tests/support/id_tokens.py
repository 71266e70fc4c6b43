"""Firebase ID tokens as the Auth emulator issues them (unsigned), which firebase-admin
verifies for real when FIREBASE_AUTH_EMULATOR_HOST is set: audience, issuer, expiry."""

from __future__ import annotations

import base64
import json
import time

PROJECT = "demo-cachebash"


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def id_token(uid: str, *, project: str = PROJECT, expires_in: int = 3600) -> str:
    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "auth_time": now,
              "user_id": uid, "sub": uid, "iat": now - 1, "exp": now + expires_in}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
