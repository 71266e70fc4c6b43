"""The person's side of a live server: a console login link exchanged for a session, and the
owner API called as the console page calls it (cookie + X-CSRF-Token)."""

from __future__ import annotations

from typing import Any

import httpx

from support.server import ServerProcess


def login_link(server: ServerProcess, tenant: str) -> str:
    return server.cli("console", "--tenant", tenant, "--port", str(server.port)).strip().splitlines()[-1]


class Owner:
    def __init__(self, server: ServerProcess, tenant: str) -> None:
        self.server = server
        self.tenant = tenant
        self.http = httpx.Client(base_url=server.base, timeout=40)
        landed = self.http.get(login_link(server, tenant), follow_redirects=False)
        assert landed.status_code == 303, landed.text
        self.csrf = self.http.get("/v1/owner/session").json()["csrf"]

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        reply = self.http.get("/v1/owner" + path, params=params)
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def send(self, method: str, path: str, body: dict[str, Any] | None = None, *, status: int = 200,
             csrf: bool = True) -> dict[str, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        reply = self.http.request(method, "/v1/owner" + path, json=body or {}, headers=headers)
        assert reply.status_code == status, reply.text
        return dict(reply.json())

    def post(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return self.send("POST", path, body, **kw)

    def close(self) -> None:
        self.http.close()
