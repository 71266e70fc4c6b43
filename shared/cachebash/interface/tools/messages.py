"""Message tools: the relay."""

from __future__ import annotations

from cachebash.domain.inputs import NoArguments
from cachebash.domain.messages import GetMessages, GetThread, MessageRef, SendMessage
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import directory, relay, wakeups

TOOLS = [
    ToolSpec(
        "send_message",
        "Send a typed message to a program, or to a group (council, builders, intelligence, all, or custom), "
        "where every member but you gets one copy. Use DIRECTIVE to ask for work, ACK with reply_to to confirm "
        "one, STATUS for updates, QUERY to ask, RESULT to report an outcome.",
        SendMessage,
        relay.send_message,
        output=results.Sent,
        title="Send a message",
    ),
    ToolSpec(
        "get_messages",
        "Fetch your undelivered messages, highest priority first, and mark them delivered so you never get "
        "the same message twice. Use peek=true to look without marking. Call at session start and after "
        "each task. With wait_seconds, waits for a message to arrive instead of returning empty.",
        GetMessages,
        relay.get_messages,
        wait_keys=wakeups.inbox_keys,
        output=results.Inbox,
        title="Fetch your messages",
    ),
    ToolSpec(
        "get_thread",
        "Read a whole conversation by threadId, oldest first, without changing what get_messages returns.",
        GetThread,
        relay.get_thread,
        read_only=True,
        output=results.Thread,
        title="Read a conversation",
    ),
    ToolSpec(
        "get_message",
        "Read one message you sent or received by messageId, e.g. to see whether the human answered your "
        "QUERY (answer, answeredAt). The answer also arrives in your inbox as a RESULT.",
        MessageRef,
        relay.get_message,
        read_only=True,
        output=results.OneMessage,
        title="Read a message",
    ),
    ToolSpec(
        "list_groups",
        "List the multicast groups of your tenant and their members (targets for send_message/create_task).",
        NoArguments,
        lambda rt, caller, _: directory.list_groups(rt, caller),
        read_only=True,
        output=results.Groups,
        title="List groups",
    ),
]
