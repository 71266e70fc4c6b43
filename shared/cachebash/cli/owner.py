"""The owner API from the terminal: through the server running on this data dir when there is
one (so a reply wakes the agent waiting for it, a revocation reaches that process), or on the
data dir directly when there is none. Both run the same route table (`owner_api.ROUTES`), so
the CLI and the console cannot behave differently.

The CLI signs in as the console does: having the data dir is having the owner's rights (it can
already create keys), so it mints a one-time login token in the store and trades it for a
session over HTTP; the session ends when the command does.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

from cachebash.cli.common import CliError
from cachebash.cli.instance import Running
from cachebash.interface import owner_api
from cachebash.interface.owner_auth import CSRF_HEADER, SESSION_COOKIE
from cachebash.services import console_auth
from cachebash.services.runtime import Runtime


class _Http:
    def __init__(self, base_url: str, runtime: Runtime, tenant_id: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        token = console_auth.issue_login(runtime, tenant_id)
        status, headers, _ = self._send("GET", f"/console/login?token={token}")
        cookie = next((v for k, v in headers if k.lower() == "set-cookie" and v.startswith(SESSION_COOKIE + "=")), "")
        if status != 303 or not cookie:
            raise CliError(f"the server at {base_url} refused the CLI's sign-in (HTTP {status}); is it a CacheBash "
                           "server on this data dir?")
        self.cookie = cookie.split(";", 1)[0]
        self.csrf = self.call("GET", "/session")["csrf"]

    def _send(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        except OSError as exc:
            raise CliError(f"cannot reach the server at {self.host}:{self.port} ({exc}); is it still running? "
                           "`cachebash status` says") from None
        finally:
            conn.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Cookie": self.cookie, "Content-Type": "application/json"}
        if method != "GET":
            headers[CSRF_HEADER] = self.csrf
        raw = json.dumps(body).encode() if body is not None else None
        _, _, answer = self._send(method, owner_api.PREFIX + path, raw, headers)
        value: dict[str, Any] = json.loads(answer)
        return value

    def close(self) -> None:
        self.call("POST", "/logout")


class Owner:
    """One owner-API conversation for one command."""

    def __init__(self, runtime: Runtime, tenant_id: str, server: Running | None) -> None:
        self.runtime = runtime
        self.tenant_id = tenant_id
        self.server = server
        self._http: _Http | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
        """The route's answer; a refusal becomes a CliError with the service's own words."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        if self.server is not None:
            if self._http is None:
                self._http = _Http(self.server.url.rsplit("/v1/", 1)[0], self.runtime, self.tenant_id)
            answer = self._http.call(method, path, body)
        else:
            route, _, qs = path.partition("?")
            request = owner_api.OwnerRequest(method, route, dict(urllib.parse.parse_qsl(qs)),
                                             json.dumps(body).encode() if body is not None else b"")
            answer = owner_api.dispatch(self.runtime, self.tenant_id, request).body
        if answer.get("success") is False:
            raise CliError(answer["error"]["message"])
        return answer

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
