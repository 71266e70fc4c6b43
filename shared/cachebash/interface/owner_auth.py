"""Who is the owner calling the owner API: one answer per runtime, the same API behind both.

- Embedded: a console session (cookie from the one-time login link), with a CSRF token on
  every state-changing request.
- Cloud: a Firebase ID token as Bearer; its uid is the tenant. No cookie, so no CSRF.

Agents' API keys are refused in both: the console is the owner's, not the fleet's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from cachebash.domain.errors import Unauthenticated
from cachebash.ports.identity import IdTokenVerifier, InvalidIdToken
from cachebash.services import console_auth
from cachebash.services.keys import KEY_PREFIX
from cachebash.services.runtime import Runtime

SESSION_COOKIE = "cb_console"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Owner:
    tenant_id: str
    session: console_auth.Session | None = None


def bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _refuse_api_key(token: str | None) -> None:
    if token is not None and token.startswith(KEY_PREFIX):
        raise Unauthenticated("API keys are for agents over MCP; the owner API takes the owner's sign-in "
                              "(a console session, or a Firebase ID token)")


class OwnerAuth(ABC):
    mode: str

    @abstractmethod
    def identify(self, cookie: str | None, authorization: str | None) -> Owner: ...

    def check_write(self, owner: Owner, csrf: str | None) -> None:  # noqa: B027 - only sessions need it
        """Refuse a state-changing request that a cross-site page could have forged."""


class SessionAuth(OwnerAuth):
    mode = "embedded"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def identify(self, cookie: str | None, authorization: str | None) -> Owner:
        _refuse_api_key(bearer(authorization))
        session = console_auth.session(self.runtime, cookie)
        return Owner(session.tenant_id, session)

    def check_write(self, owner: Owner, csrf: str | None) -> None:
        assert owner.session is not None
        console_auth.check_csrf(owner.session, csrf)


class FirebaseAuth(OwnerAuth):
    mode = "firebase"

    def __init__(self, verifier: IdTokenVerifier) -> None:
        self.verifier = verifier

    def identify(self, cookie: str | None, authorization: str | None) -> Owner:
        token = bearer(authorization)
        _refuse_api_key(token)
        if token is None:
            raise Unauthenticated("send the Firebase ID token as 'Authorization: Bearer <token>'")
        try:
            return Owner(self.verifier.verify(token))
        except InvalidIdToken as exc:
            raise Unauthenticated(f"invalid Firebase ID token: {exc}") from None
