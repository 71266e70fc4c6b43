"""The few facts of the MCP protocol the fast path needs, as our own code, so that it answers
without importing the MCP SDK (whose import is most of a cold instance's first request).

Each fact is the SDK's (mcp 2.3): the protocol versions of each era, the `_meta` keys of the
per-request envelope, the version a request without MCP-Protocol-Version is taken to speak,
and the shapes of `tools/call` and `tools/list` params that the SDK's schema accepts at each
era (`mcp_types.methods.validate_client_request`). The checks here are one-sided on purpose:
`servable_params` says yes only to params the SDK's schema also accepts (whatever else the
schema would take goes to the SDK, which answers it in its own words). tests/unit/
test_protocol_facts.py holds every fact and check against the SDK itself; tests/e2e/
test_fast_path.py compares whole answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SERVER_NAME = "cachebash"

HANDSHAKE_PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_PROTOCOL_VERSIONS = ("2026-07-28",)
#: What the SDK assumes a request without an MCP-Protocol-Version header speaks.
DEFAULT_NEGOTIATED_VERSION = "2025-03-26"

PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_META_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"

LOG_LEVELS = frozenset({"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"})

Check = Callable[[Any], bool]


@dataclass(frozen=True)
class TransportSecurity:
    """The SDK's DNS-rebinding protection settings (Host and Origin allow-lists), held as ours
    so the fast path can apply them before the SDK is imported; `mcp_server` hands them on."""

    enabled: bool
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _object_with(fields: Mapping[str, Check], required: frozenset[str] = frozenset()) -> Check:
    """An object whose listed fields, where present, pass their checks (others are ignored,
    as the SDK's models ignore or allow them)."""
    def check(value: Any) -> bool:
        return (isinstance(value, dict) and required <= value.keys()
                and all(test(value[name]) for name, test in fields.items() if name in value))
    return check


def _object_of(values: Check) -> Check:
    return lambda value: isinstance(value, dict) and all(values(v) for v in value.values())


def _is_progress_token(value: Any) -> bool:
    """`str | int`; the SDK's lax schema also takes floats and the like, which we leave to it."""
    return isinstance(value, (str, int))


_OBJECT = _optional(_is_object)
_IMPLEMENTATION = _object_with({"name": _is_str, "version": _is_str, "title": _optional(_is_str),
                                "description": _optional(_is_str), "icons": lambda v: v is None},
                               required=frozenset({"name", "version"}))
_CLIENT_CAPABILITIES = _object_with({
    "elicitation": _optional(_object_with({"form": _OBJECT, "url": _OBJECT})),
    "experimental": _optional(_object_of(_is_object)),
    "extensions": _optional(_object_of(_is_object)),
    "roots": _OBJECT,
    "sampling": _optional(_object_with({"context": _OBJECT, "tools": _OBJECT})),
})
#: `_meta` at the handshake era: an open object whose progressToken, if any, is a token.
_HANDSHAKE_META = _optional(_object_with({"progressToken": _optional(_is_progress_token)}))
#: `_meta` at 2026-07-28: the per-request envelope (required).
_MODERN_META = _object_with({
    PROTOCOL_VERSION_META_KEY: _is_str, CLIENT_CAPABILITIES_META_KEY: _CLIENT_CAPABILITIES,
    CLIENT_INFO_META_KEY: _optional(_IMPLEMENTATION), LOG_LEVEL_META_KEY: _optional(lambda v: v in LOG_LEVELS),
    "progressToken": _optional(_is_progress_token),
}, required=frozenset({PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY}))


def servable_params(method: str, version: str, params: dict[str, Any]) -> bool:
    """True only if the SDK's schema accepts these `tools/call` or `tools/list` params at
    `version` (the caller has already refused keys other than name, arguments and _meta)."""
    meta_ok = _MODERN_META if version in MODERN_PROTOCOL_VERSIONS else _HANDSHAKE_META
    if not meta_ok(params.get("_meta")):
        return False
    if method == "tools/list":
        return True
    arguments = params.get("arguments")
    return isinstance(params.get("name"), str) and (arguments is None or isinstance(arguments, dict))
