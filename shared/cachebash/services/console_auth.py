"""Sign-in to the embedded console: a one-time login link, exchanged for a session.

As Jupyter does, the server prints a link with a login token in its query string; opening it
trades the token (single use, stored only as its SHA-256) for a session whose id lives in an
HttpOnly cookie and whose CSRF token must accompany every state-changing request. Sessions
are for the tenant's owner only: agents' API keys are never accepted here, and nothing here
takes a tenant from the request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from cachebash.domain.errors import Code, Forbidden, Unauthenticated
from cachebash.ports.store import Transaction
from cachebash.services.runtime import Runtime

LOGINS = "console_logins"
SESSIONS = "console_sessions"
LOGIN_TTL_SECONDS = 24 * 3600
SESSION_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Session:
    session_id: str
    tenant_id: str
    csrf: str
    expires_at: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_login(rt: Runtime, tenant_id: str, ttl_seconds: int = LOGIN_TTL_SECONDS) -> str:
    """A fresh one-time login token for the tenant's console (the plaintext goes only into the link)."""
    token = secrets.token_urlsafe(32)
    doc = {"tenantId": tenant_id, "createdAt": rt.clock.iso(), "expiresAt": rt.clock.iso(ttl_seconds)}
    rt.store.run_transaction(lambda tx: tx.create(f"{LOGINS}/{_digest(token)}", doc))
    return token


def redeem_login(rt: Runtime, token: str) -> Session:
    """Trade a login token for a new session, once; a used, unknown or expired token is refused."""
    login_path = f"{LOGINS}/{_digest(token)}"
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now, expires = rt.clock.iso(), rt.clock.iso(SESSION_TTL_SECONDS)

    def redeem(tx: Transaction) -> str:
        login = tx.get(login_path)
        if login is None:
            raise Unauthenticated("this login link was already used or is unknown; run `cachebash console` "
                                  "for a fresh one")
        tx.delete(login_path)
        if login["expiresAt"] <= now:
            raise Unauthenticated("this login link has expired; run `cachebash console` for a fresh one")
        tx.create(f"{SESSIONS}/{_digest(session_id)}",
                  {"tenantId": login["tenantId"], "csrf": csrf, "createdAt": now, "expiresAt": expires})
        return str(login["tenantId"])

    tenant_id = rt.store.run_transaction(redeem)
    return Session(session_id, tenant_id, csrf, expires)


def session(rt: Runtime, session_id: str | None) -> Session:
    if not session_id:
        raise Unauthenticated("not signed in: open the console link printed by `make serve` "
                              "(or run `cachebash console`)")
    doc: dict[str, Any] | None = rt.store.get(f"{SESSIONS}/{_digest(session_id)}")
    if doc is None:
        raise Unauthenticated("unknown session: sign in again with a console link (`cachebash console`)")
    if doc["expiresAt"] <= rt.clock.iso():
        raise Unauthenticated("your session expired: sign in again with a console link (`cachebash console`)")
    return Session(session_id, doc["tenantId"], doc["csrf"], doc["expiresAt"])


def check_csrf(current: Session, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(presented, current.csrf):
        raise Forbidden("missing or wrong CSRF token: send the X-CSRF-Token header from GET /v1/owner/session",
                        code=Code.CSRF, field="X-CSRF-Token")


def end_session(rt: Runtime, session_id: str) -> None:
    path = f"{SESSIONS}/{_digest(session_id)}"
    rt.store.run_transaction(lambda tx: tx.delete(path) if tx.get(path) is not None else None)
