"""Ready-to-paste MCP client configurations for a new key, one place for every client, so the
CLI banner, the console's Keys page and the README say the same thing."""

from __future__ import annotations

import json
import shlex
from typing import Any

SERVER_NAME = "cachebash"


def mcp_json(url: str, key: str) -> str:
    """Claude Code's project `.mcp.json` (Cursor reads the same shape)."""
    return json.dumps({"mcpServers": {SERVER_NAME: {"type": "http", "url": url,
                                                    "headers": {"Authorization": f"Bearer {key}"}}}}, indent=2)


def configs(url: str, key: str) -> list[dict[str, str]]:
    header = f"Authorization: Bearer {key}"
    cursor = {"mcpServers": {SERVER_NAME: {"url": url, "headers": {"Authorization": f"Bearer {key}"}}}}
    gemini = {"mcpServers": {SERVER_NAME: {"httpUrl": url, "headers": {"Authorization": f"Bearer {key}"}}}}
    vscode = {"servers": {SERVER_NAME: {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {key}"}}}}
    return [
        {"client": "Claude Code (.mcp.json)", "text": mcp_json(url, key)},
        {"client": "Claude Code (claude mcp add)",
         "text": f"claude mcp add --transport http {SERVER_NAME} {shlex.quote(url)} --header {shlex.quote(header)}"},
        {"client": "Cursor (~/.cursor/mcp.json)", "text": json.dumps(cursor, indent=2)},
        {"client": "Gemini CLI (~/.gemini/settings.json)", "text": json.dumps(gemini, indent=2)},
        {"client": "VS Code (.vscode/mcp.json)", "text": json.dumps(vscode, indent=2)},
    ]


def qr_svg(text: str) -> str:
    """An inline SVG QR code (segno: pure Python), black on white so any phone camera reads it."""
    import segno

    return str(segno.make(text, error="l").svg_inline(scale=3, dark="#000", light="#fff", border=2))


def shown_once(created: dict[str, Any], url: str) -> dict[str, Any]:
    """A created key with everything the person needs to use it, since it is never shown again."""
    key = created["apiKey"]
    return {**created, "mcpUrl": url, "configs": configs(url, key), "qrSvg": qr_svg(mcp_json(url, key))}
