"""Key tools (admin keys only)."""

from __future__ import annotations

from cachebash.domain.inputs import NoArguments
from cachebash.domain.programs import CreateKey, RevokeKey
from cachebash.interface.tools import ToolSpec, results
from cachebash.services import keys

TOOLS = [
    ToolSpec(
        "create_key",
        "Admin keys only: create an API key for a program (its identity) and optionally add the program to "
        "groups. The plaintext apiKey is returned once; store it securely.",
        CreateKey,
        keys.create_key,
        output=results.KeyCreated,
        title="Create an API key",
    ),
    ToolSpec(
        "list_keys",
        "Admin keys only: list the tenant's API keys (never the keys themselves): keyId, program, label, "
        "active, dates.",
        NoArguments,
        lambda rt, caller, _: keys.list_keys(rt, caller),
        read_only=True,
        output=results.Keys,
        title="List API keys",
    ),
    ToolSpec(
        "revoke_key",
        "Admin keys only: revoke a key by keyId; requests with it are refused from then on.",
        RevokeKey,
        keys.revoke_key,
        idempotent=True,
        output=results.KeyRevoked,
        title="Revoke an API key",
        destructive=True,
    ),
]
