"""Errors an agent should read and act on.

Every refusal carries a stable machine `code`, a sentence for the model, and, when one
input was at fault, the `field` it came from, so an LLM can correct itself in one step.
"""

from __future__ import annotations

from typing import Any


class CacheBashError(Exception):
    code = "ERROR"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class InvalidInput(CacheBashError):
    code = "VALIDATION_ERROR"


class NotFound(CacheBashError):
    code = "NOT_FOUND"


class Forbidden(CacheBashError):
    code = "FORBIDDEN"


class Conflict(CacheBashError):
    """The request was well formed but the thing it acts on is in the wrong state."""

    code = "CONFLICT"


class Unauthenticated(CacheBashError):
    code = "UNAUTHENTICATED"


class Contention(CacheBashError):
    """The store stayed busy (other transactions held the documents this call needs) until the
    call's deadline. Nothing was changed; the same call may simply be made again, and an
    idempotent one (with its `idempotency_key`) is safe to repeat."""

    code = "CONTENTION"

    def __init__(self, message: str, *, retry_after_seconds: float, **details: Any):
        super().__init__(message, retryAfterSeconds=retry_after_seconds, **details)
