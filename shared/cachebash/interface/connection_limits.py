"""Deadlines and a cap for `cachebash serve`'s HTTP connections (uvicorn on httptools).

uvicorn closes a keep-alive connection only after an answer, and has no deadline for a
request's head or body: a connection that sends nothing, half a request line, or a body
shorter than its Content-Length stays open for ever, and enough of them use up the process's
file descriptors (1,100 slow connections without a key stopped all service under a limit of
1,024). This protocol gives every connection one deadline at a time, by phase:

| phase | from | deadline | then |
|---|---|---|---|
| idle | the connection opened, or the last answer went out | `idle_seconds` | closed |
| head | the request's first byte | `head_seconds` (and at most `max_head_bytes`) | 408 (431), closed |
| body | the end of the headers | `body_seconds` | 408 if nothing was answered yet, closed |
| app | the whole request arrived | none: a tool may wait (`wait_seconds`) | |

Bytes that trickle in never extend a deadline. A client that stops reading an answer is cut
off once its socket has been full for `body_seconds`. Beyond `max_connections` open
connections, a new one is answered 503 with Retry-After and closed at once, before it can
hold a descriptor for long. Every refusal is JSON, as everywhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from cachebash.interface import refusals

log = logging.getLogger(__name__)

#: How long a refused connection may stay open for its client to read the 503 and hang up.
REFUSAL_LINGER_SECONDS = 2.0
#: Descriptors kept free for everything else (the database, logs, outbound connections).
FD_RESERVE = 64


@dataclass(frozen=True)
class ConnectionLimits:
    idle_seconds: float = 15.0
    head_seconds: float = 10.0
    body_seconds: float = 30.0
    max_connections: int = 512
    max_head_bytes: int = 64 * 1024
    retry_after_seconds: int = 1

    def __post_init__(self) -> None:
        if min(self.idle_seconds, self.head_seconds, self.body_seconds) <= 0:
            raise ValueError("the HTTP idle, head and body deadlines must be positive numbers of seconds")
        if self.max_connections < 1 or self.max_head_bytes < 1:
            raise ValueError("the HTTP connection cap and head size limit must be at least 1")

    def fitted_to_fd_limit(self) -> ConnectionLimits:
        """The same limits with `max_connections` lowered to fit the open-file limit, if need be."""
        try:
            import resource
        except ImportError:  # Windows
            return self
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY or soft - FD_RESERVE >= self.max_connections:
            return self
        fitted = max(1, soft - FD_RESERVE)
        log.warning("at most %d connections (not %d): the open-file limit is %d", fitted, self.max_connections, soft)
        return dataclasses.replace(self, max_connections=fitted)


def protocol_class(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """The class to pass to `uvicorn.run(http=...)`."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits.fitted_to_fd_limit()})


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = "idle"
        self._since = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._feeding = False
        self._head_bytes = 0
        self._refused = False

    # --------------------------------------------------------------- the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse_over_cap()
            return
        self._enter("idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel(self._deadline)
        self._cancel(self._stall)
        self._deadline = self._stall = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._feeding = True
        try:
            super().data_received(data)
        finally:
            self._feeding = False
        if self.transport.is_closing():
            return
        if self._phase == "head":
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._answer_and_close(431, f"the request line and headers are larger than "
                                            f"{self.limits.max_head_bytes} bytes")
                return
        if self._deadline is None:
            self._arm()

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()

    # --------------------------------------------------------------- phases (httptools callbacks)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._enter("head")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._enter("body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._enter("idle" if self.cycle.response_complete else "app")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._unset_keepalive_if_required()  # the idle phase replaces uvicorn's keep-alive timer
        if self._phase == "app" and self.cycle.response_complete and not self.transport.is_closing():
            self._enter("idle")

    def _enter(self, phase: str) -> None:
        self._phase = phase
        self._since = self.loop.time()
        self._cancel(self._deadline)
        self._deadline = None
        if not self._feeding:  # while feeding, data_received arms the deadline of the phase it ends in
            self._arm()

    def _arm(self) -> None:
        limit = {"idle": self.limits.idle_seconds, "head": self.limits.head_seconds,
                 "body": self.limits.body_seconds}.get(self._phase)
        if limit is not None:
            remaining = max(0.0, self._since + limit - self.loop.time())
            self._deadline = self.loop.call_later(remaining, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._phase == "idle":
            self.transport.close()
            return
        cycle = self.cycle
        if self._phase == "head":
            answering = cycle is None or cycle.response_complete
            message = f"the request line and headers did not arrive within {self.limits.head_seconds:g} s"
        else:
            answering = cycle is not None and not cycle.response_started
            message = f"the request body did not arrive within {self.limits.body_seconds:g} s"
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app reads http.disconnect and sends nothing more
            cycle.message_event.set()
        if answering:
            self._answer_and_close(408, message)
        else:
            self.transport.close()

    # --------------------------------------------------------------- a client that stops reading

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.limits.body_seconds, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel(self._stall)
        self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        self.transport.abort()  # close() would wait for the full buffer to drain

    # --------------------------------------------------------------- refusals

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(400, msg)

    def _refuse_over_cap(self) -> None:
        self._refused = True
        retry = self.limits.retry_after_seconds
        self._write_error(503, f"the server has {self.limits.max_connections} open connections, its limit; "
                               f"retry in {retry} s", [(b"retry-after", str(retry).encode())], retryAfter=retry)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(REFUSAL_LINGER_SECONDS, self.transport.abort)

    def _answer_and_close(self, status: int, message: str) -> None:
        self._write_error(status, message, [])
        self.transport.close()

    def _write_error(self, status: int, message: str, extra: list[tuple[bytes, bytes]], **details: Any) -> None:
        body = refusals.error_body(status, message, **details)
        headers = [*self.server_state.default_headers, *extra, (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        self.transport.write(b"".join([STATUS_LINE[status], *(n + b": " + v + b"\r\n" for n, v in headers),
                                       b"\r\n", body]))

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()
