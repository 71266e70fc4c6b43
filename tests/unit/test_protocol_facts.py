"""`interface/protocol.py` holds, as our own code, the protocol facts and params checks the fast
path needs without the MCP SDK. Each is held against the SDK itself here: the constants must be
the SDK's, and params our check serves must be params the SDK's schema accepts, at every version
(tests/e2e/test_fast_path.py compares whole answers over HTTP)."""

from __future__ import annotations

from typing import Any

import mcp_types
import pytest
from mcp_types import methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from cachebash.interface import protocol
from cachebash.interface.protocol import servable_params

VERSIONS = [*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS]
MODERN = MODERN_PROTOCOL_VERSIONS[0]


def test_the_constants_are_the_sdks() -> None:
    assert protocol.HANDSHAKE_PROTOCOL_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    assert protocol.MODERN_PROTOCOL_VERSIONS == MODERN_PROTOCOL_VERSIONS
    assert protocol.DEFAULT_NEGOTIATED_VERSION == mcp_types.DEFAULT_NEGOTIATED_VERSION
    for name in ("PROTOCOL_VERSION_META_KEY", "CLIENT_CAPABILITIES_META_KEY", "CLIENT_INFO_META_KEY",
                 "SERVER_INFO_META_KEY"):
        assert getattr(protocol, name) == getattr(mcp_types, name), name
    assert set(protocol.LOG_LEVELS) == set(mcp_types.LoggingLevel.__args__)  # type: ignore[attr-defined]


def _envelope(**overrides: Any) -> dict[str, Any]:
    meta = {protocol.PROTOCOL_VERSION_META_KEY: MODERN, protocol.CLIENT_CAPABILITIES_META_KEY: {},
            protocol.CLIENT_INFO_META_KEY: {"name": "t", "version": "1"}}
    return {k: v for k, v in {**meta, **overrides}.items() if v is not _DROP}


_DROP = object()
CAPS = protocol.CLIENT_CAPABILITIES_META_KEY
INFO = protocol.CLIENT_INFO_META_KEY
LEVEL = protocol.LOG_LEVEL_META_KEY

# (method, params, expected at a modern version, expected at a handshake-era version):
# True where the fast path should serve (so the SDK must accept), False where it hands on.
SHAPES: list[tuple[str, dict[str, Any], bool, bool]] = [
    ("tools/call", {"name": "get_tasks", "arguments": {}}, False, True),
    ("tools/call", {"name": "get_tasks", "arguments": None, "_meta": None}, False, True),
    ("tools/call", {"name": "get_tasks"}, False, True),
    ("tools/call", {"name": 5, "arguments": {}}, False, False),
    ("tools/call", {"arguments": {}}, False, False),
    ("tools/call", {"name": "get_tasks", "arguments": [1]}, False, False),
    ("tools/call", {"name": "get_tasks", "_meta": {"progressToken": "p"}}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": {"progressToken": 7, "other": [1]}}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": {"progressToken": [7]}}, False, False),
    ("tools/call", {"name": "get_tasks", "_meta": {"progressToken": 1.5}}, False, False),
    ("tools/call", {"name": "get_tasks", "_meta": "x"}, False, False),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope()}, True, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{INFO: _DROP})}, True, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: _DROP})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: []})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: {
        "roots": {"listChanged": True}, "sampling": {"tools": {}, "context": None}, "elicitation": {"form": {}},
        "experimental": {"x": {"y": 1}}, "extensions": {"io.example/x": {}}, "unknown": 5}})}, True, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: {"roots": True}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: {"experimental": {"x": 1}}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: {"sampling": {"tools": 1}}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{CAPS: {"elicitation": []}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{INFO: {"name": "t"}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{INFO: {"name": "t", "version": 1}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{INFO: {"name": "t", "version": "1",
                                                                       "title": "T", "icons": None}})}, True, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{INFO: {"name": "t", "version": "1",
                                                                       "icons": [{"src": "x"}]}})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{LEVEL: "info"})}, True, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{LEVEL: "loud"})}, False, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(progressToken=True)}, True, True),
    ("tools/call", {"name": "get_tasks", "_meta": _envelope(**{protocol.PROTOCOL_VERSION_META_KEY: 5})}, False, True),
    ("tools/list", {}, False, True),
    ("tools/list", {"_meta": None}, False, True),
    ("tools/list", {"_meta": _envelope()}, True, True),
    ("tools/list", {"_meta": _envelope(**{CAPS: _DROP})}, False, True),
    ("tools/list", {"_meta": {"progressToken": {}}}, False, False),
]


def _sdk_accepts(method: str, version: str, params: dict[str, Any]) -> bool:
    try:
        methods.validate_client_request(method, version, params)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_served_params_are_params_the_sdk_accepts(shape: int, version: str) -> None:
    method, params, modern, handshake = SHAPES[shape]
    served = servable_params(method, version, params)
    assert served == (modern if version in MODERN_PROTOCOL_VERSIONS else handshake)
    if served:
        assert _sdk_accepts(method, version, params), "the fast path would answer what the SDK refuses"
