"""What agents may say to each other: message types and the relay tools' inputs."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field

from cachebash.domain.inputs import Id, IdempotencyKey, Input, LongText, Name, ShortText, Ttl, WaitSeconds
from cachebash.domain.tasks import Priority

DEFAULT_MESSAGE_TTL = 24 * 3600
#: A delivered message is kept this long after its delivery (for get_message, get_thread, ACKs and
#: the console), then the sweeper deletes it. Undelivered messages are deleted when their ttl runs
#: out, except those to the human: they stay in the person's inbox and count as delivered from then.
DELIVERED_RETENTION_SECONDS = 30 * 24 * 3600


def live(message: Mapping[str, Any], now: str) -> bool:
    """Whether a message may still be delivered: its ttl has not run out."""
    expires = message.get("expiresAt")
    return not isinstance(expires, str) or expires > now


class MessageType(StrEnum):
    PING = "PING"
    PONG = "PONG"
    HANDSHAKE = "HANDSHAKE"
    DIRECTIVE = "DIRECTIVE"
    STATUS = "STATUS"
    ACK = "ACK"
    QUERY = "QUERY"
    RESULT = "RESULT"


class SendMessage(Input):
    target: Name = Field(
        description="Recipient program id, or a group (council, builders, intelligence, all, or a custom group): every "
                    "member but you gets one copy.",
    )
    message: LongText = Field(min_length=1, description="The message text.")
    message_type: MessageType = Field(
        MessageType.STATUS,
        description="PING/PONG liveness, HANDSHAKE intro, DIRECTIVE (do this), STATUS update, ACK (received; use "
                    "reply_to), QUERY (question), RESULT (outcome).",
    )
    priority: Priority = Field(Priority.NORMAL, description="high messages are delivered before normal and low.")
    source: Name | None = Field(
        None,
        description="Optional; always your own program id (taken from your API key). Any other value is refused.",
    )
    threadId: ShortText | None = Field(None, description="Conversation thread; read it whole with get_thread.")
    reply_to: Id | None = Field(
        None,
        description="messageId this answers (an ACK to a DIRECTIVE, a RESULT to a QUERY): a message you sent or "
                    "received; only its recipient may ACK it.",
    )
    ttl: Ttl = Field(DEFAULT_MESSAGE_TTL, description="Seconds until an undelivered message expires (default 86400).")
    idempotency_key: IdempotencyKey | None = None


class GetMessages(Input):
    limit: int = Field(20, ge=1, le=50, description="Most messages to return (1-50).")
    peek: bool = Field(
        False,
        description="true: look without marking them delivered, so they are returned again next time.",
    )
    message_type: MessageType | None = Field(None, description="Only messages of this type.")
    sessionId: ShortText | None = Field(None, description="Your session id, recorded on delivered messages.")
    wait_seconds: WaitSeconds = 0


class GetThread(Input):
    threadId: ShortText = Field(description="The thread to read.")
    limit: int = Field(50, ge=1, le=50, description="Most messages to return (1-50), oldest first.")
    cursor: ShortText | None = Field(None, description="nextCursor from a previous call.")


class MessageRef(Input):
    messageId: Id = Field(description="messageId from send_message (or a message you received).")
