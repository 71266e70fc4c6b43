"""Errors an agent should read and act on.

Every refusal carries a stable machine `code`, a sentence for the model, and, when one
input was at fault, the `field` it came from, so an LLM can correct itself in one step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Code(StrEnum):
    """Every error code the server answers with, tools and HTTP alike; the README's error table
    lists exactly these (a test keeps the two in step), so raise with one of them, never a string."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN_TOOL = "UNKNOWN_TOOL"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CONFLICT = "CONFLICT"
    ALREADY_CLAIMED = "ALREADY_CLAIMED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    TASK_FINISHED = "TASK_FINISHED"
    TASK_EXPIRED = "TASK_EXPIRED"
    CLAIM_LOST = "CLAIM_LOST"
    NOT_AVAILABLE_YET = "NOT_AVAILABLE_YET"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    STORY_LOCKED = "STORY_LOCKED"
    STORY_FINISHED = "STORY_FINISHED"
    STORY_TASK_HELD = "STORY_TASK_HELD"
    SPRINT_OPEN = "SPRINT_OPEN"
    SPRINT_CLOSED = "SPRINT_CLOSED"
    ALREADY_ANSWERED = "ALREADY_ANSWERED"
    KEY_LIMIT = "KEY_LIMIT"
    KEY_REVOKED = "KEY_REVOKED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    CSRF = "CSRF"
    CONTENTION = "CONTENTION"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"
    # HTTP refusals before any tool runs (interface.refusals)
    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    LENGTH_REQUIRED = "LENGTH_REQUIRED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    MISDIRECTED_REQUEST = "MISDIRECTED_REQUEST"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    UNAVAILABLE = "UNAVAILABLE"


#: Where an agent gets each kind of id: the next step of a NOT_FOUND.
ID_SOURCES = {
    "taskId": "task ids come from create_task, get_tasks or claim_next",
    "messageId": "message ids come from send_message, get_messages or get_thread",
    "reply_to": "message ids come from send_message, get_messages or get_thread",
    "sprintId": "sprint ids come from create_sprint",
    "storyId": "story ids are the ids given in create_sprint or add_story_to_sprint; get_sprint lists them",
    "keyId": "key ids come from list_keys or create_key",
}


class CacheBashError(Exception):
    code: str = Code.INTERNAL

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class InvalidInput(CacheBashError):
    code = Code.VALIDATION_ERROR


class NotFound(CacheBashError):
    code = Code.NOT_FOUND

    def __init__(self, message: str, *, field: str | None = None, **details: Any):
        """The message gains where ids of `field`'s kind come from, so the agent knows where to look."""
        source = ID_SOURCES.get(field or "")
        super().__init__(f"{message}; {source}" if source else message, field=field, **details)


class Forbidden(CacheBashError):
    code = Code.FORBIDDEN


class Conflict(CacheBashError):
    """The request was well formed but the thing it acts on is in the wrong state."""

    code = Code.CONFLICT


class LimitExceeded(CacheBashError):
    """The tenant's plan (domain/plans.py) allows no more of this: the monthly task quota
    (`QUOTA_EXCEEDED`) or one of the tier limits (`LIMIT_EXCEEDED`). Nothing was written; the
    details name the plan, the limit and what to do (wait for `resetsAt`, or raise the plan)."""

    code = Code.LIMIT_EXCEEDED


class Unauthenticated(CacheBashError):
    code = Code.UNAUTHENTICATED


class Contention(CacheBashError):
    """The store stayed busy (other transactions held the documents this call needs) until the
    call's deadline. Nothing was changed; the same call may simply be made again, and an
    idempotent one (with its `idempotency_key`) is safe to repeat."""

    code = Code.CONTENTION

    def __init__(self, message: str, *, retry_after_seconds: float, **details: Any):
        super().__init__(message, retryAfterSeconds=retry_after_seconds, **details)


class RateLimited(CacheBashError):
    """Over a rate limit (domain.rate_limits): the call was not run. `limit` says which one
    (`key`, `tenant`, `owner` or `waiting`); the same call may be made after `retryAfterSeconds`."""

    code = Code.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_seconds: int, limit: str, **details: Any):
        super().__init__(message, retryAfterSeconds=retry_after_seconds, limit=limit, **details)
