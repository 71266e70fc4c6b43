"""Every HTTP refusal is JSON: `{"success": false, "error": {"code", "message", ...}}`.

The MCP SDK, Starlette and uvicorn answer some refusals in plain text (413, 400 for a bad
Content-Type, 421 for a bad Host, 403 for a bad Origin, 404, 405) or with no body at all;
`JsonRefusals` re-sends those in the shape every CacheBash refusal has, keeping their status
and headers (Allow, WWW-Authenticate, Retry-After). An unexpected failure is an `INTERNAL`
error whose `requestId` is also in the server log, next to the traceback.
"""

from __future__ import annotations

import http
import logging
import secrets
from typing import Any

from starlette.types import Message, Send

from cachebash.domain.errors import CacheBashError, Code
from cachebash.interface import wire_json

log = logging.getLogger(__name__)

CODES: dict[int, Code] = {
    400: Code.BAD_REQUEST, 401: Code.UNAUTHENTICATED, 403: Code.FORBIDDEN, 404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED, 406: Code.NOT_ACCEPTABLE, 408: Code.REQUEST_TIMEOUT, 411: Code.LENGTH_REQUIRED,
    413: Code.PAYLOAD_TOO_LARGE, 415: Code.UNSUPPORTED_MEDIA_TYPE, 421: Code.MISDIRECTED_REQUEST,
    431: Code.HEADERS_TOO_LARGE, 500: Code.INTERNAL, 503: Code.UNAVAILABLE,
}

# What to do about the plain-text refusals the MCP SDK sends, in words an agent's operator can act on.
_HINTS = {
    "Invalid Host header": "the Host header must name this server (see CACHEBASH_ALLOWED_HOSTS)",
    "Invalid Origin header": "requests from a browser page must come from an allowed origin "
                             "(see CACHEBASH_ALLOWED_HOSTS)",
    "Invalid Content-Type header": "send Content-Type: application/json",
}


def code_for(status: int) -> str:
    return CODES.get(status, f"HTTP_{status}")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(8)


def error_body(status: int, message: str, **details: Any) -> bytes:
    return wire_json.dumps({"success": False, "error": {"code": code_for(status), "message": message,
                                                        **details}}).encode()


def internal_error(what: str, request_id: str | None = None) -> CacheBashError:
    """The refusal an agent reads when something broke that it cannot fix; the caller logs the
    cause with the same request id."""
    request_id = request_id or new_request_id()
    return CacheBashError(f"{what} failed with an internal error on the server; it was logged as {request_id}. "
                          "Retrying may work; if it keeps failing, report the requestId to the operator.",
                          code=Code.INTERNAL, requestId=request_id)


async def send_error(send: Send, status: int, message: str, *, headers: dict[str, str] | None = None,
                     close: bool = False, **details: Any) -> None:
    body = error_body(status, message, **details)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _is_json_or_page(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json") or media == b"text/html"
    return False


class JsonRefusals:
    """Wraps an ASGI `send`: a refusal (status >= 400) that is neither JSON nor an HTML page
    is held back, and sent as JSON once its body is complete."""

    def __init__(self, send: Send, method: str, path: str) -> None:
        self.send = send
        self.method = method
        self.path = path
        self.started = False
        self.complete = False
        self.request_id: str | None = None
        self._held: Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if self._held is not None:
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_as_json(self._held, b"".join(self._chunks))
            return
        if message["type"] == "http.response.start":
            self.started = True
            if message["status"] >= 400 and not _is_json_or_page(list(message.get("headers", []))):
                self._held = message
                return
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self.send(message)

    async def _send_as_json(self, start: Message, plain: bytes) -> None:
        status = int(start["status"])
        text = plain.decode("utf-8", "replace").strip()
        message = _message_for(status, text, self.method, self.path)
        details: dict[str, Any] = {}
        if status >= 500:
            self.request_id = new_request_id()
            details["requestId"] = self.request_id
            log.error("HTTP %d for %s %s (requestId=%s): %s", status, self.method, self.path, self.request_id, text)
            if status == 500:
                message = internal_error(f"{self.method} {self.path}", self.request_id).message
        body = error_body(status, message, **details)
        kept = [(n, v) for n, v in start.get("headers", []) if n.lower() not in (b"content-type", b"content-length")]
        headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        self.complete = True
        await self.send({"type": "http.response.body", "body": body})


def _message_for(status: int, text: str, method: str, path: str) -> str:
    if status == 404:
        return f"no route for {method} {path}; the MCP endpoint is POST /v1/mcp"
    if status == 405 and text in ("", "Method Not Allowed"):
        return f"{method} is not allowed on {path}"
    if status == 406 and text in ("", "Not Acceptable"):
        return "Not Acceptable: send Accept: application/json"
    if not text:
        try:
            text = http.HTTPStatus(status).phrase
        except ValueError:
            text = f"HTTP {status}"
    hint = _HINTS.get(text)
    return f"{text}: {hint}" if hint else text
