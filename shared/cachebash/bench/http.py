"""A minimal HTTP/1.1 keep-alive client for the load generator.

On a 2-core machine the load generator shares the CPU with the server. A general-purpose
client (httpx, plus the MCP SDK's session machinery) spends more CPU per request than the
server does, so the benchmark would measure the client. This one writes prebuilt bytes and
reads a Content-Length body: the cost left is the server's. It speaks only what the server
under test answers with (no chunked bodies, no TLS)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class HttpError(Exception):
    """The server answered with something this minimal client does not speak."""


class Connection:
    """One persistent connection; requests on it are strictly sequential, like one agent."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise HttpError(f"only http:// URLs are supported, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        fixed = {"Host": parts.netloc, **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def post(self, body: bytes, extra: bytes = b"", path: str | None = None) -> tuple[int, bytes]:
        """POST `body`; `extra` is preformatted header lines. Returns (status, body)."""
        request = (b"POST " + (path or self.path).encode() + b" HTTP/1.1\r\n" + self._head + extra
                   + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        reused = self._writer is not None
        reader, writer = await self._connect()
        writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            # The server closes idle keep-alive connections (uvicorn: after 5 s). Not a byte of
            # an answer came back, so it never read the request: resend it on a new connection.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            await self.close()
            reader, writer = await self._connect()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = _content_length(head)
        payload = await reader.readexactly(length) if length else b""
        if b"\r\nconnection: close" in head.lower():
            await self.close()
        return status, payload

    async def get(self, path: str) -> tuple[int, bytes]:
        reader, writer = await self._connect()
        writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head + b"\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = _content_length(head)
        return int(head[9:12]), (await reader.readexactly(length) if length else b"")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def _content_length(head: bytes) -> int:
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        raise HttpError("chunked responses are not supported by the bench client")
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = lower.index(b"\r\n", at + 2)
    return int(lower[at + 17 : end])
