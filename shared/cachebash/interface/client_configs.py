"""Every MCP client CacheBash knows, in one table: where its config file lives, which key holds
its servers and the shape of one server entry. The CLI's `connect` (which merges the entry into
the file), the first-start banner, the console's Keys page and the README all derive from it.

Formats, as each client documents them:
- Claude Code: project `.mcp.json`, `mcpServers`, `{"type": "http", "url", "headers"}`.
- Cursor: `.cursor/mcp.json` (project) or `~/.cursor/mcp.json`, `mcpServers`, `{"url", "headers"}`.
- Gemini CLI: `.gemini/settings.json` or `~/.gemini/settings.json`, `mcpServers`, `{"httpUrl",
  "headers"}` (its `url` means SSE, not Streamable HTTP).
- VS Code: `.vscode/mcp.json`, `servers`, `{"type": "http", "url", "headers"}`.
- Codex: `.codex/config.toml` (a trusted project) or `~/.codex/config.toml`, `[mcp_servers.NAME]`
  with `url` and `http_headers` (its `headers` key is ignored).
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from typing import Any

SERVER_NAME = "cachebash"


@dataclass(frozen=True)
class Client:
    id: str  # what `connect --client` takes
    label: str
    project_file: str  # relative to the project directory
    global_file: str | None  # relative to the home directory; None: the client has no user file we write
    servers_key: str  # the key (JSON) or table (TOML) that holds the servers
    url_field: str
    headers_field: str = "headers"
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def toml(self) -> bool:
        return self.project_file.endswith(".toml")

    def entry(self, url: str, key: str) -> dict[str, Any]:
        return {**dict(self.extra), self.url_field: url, self.headers_field: {"Authorization": f"Bearer {key}"}}

    def snippet(self, url: str, key: str) -> str:
        """The whole file for a project that has none: what `--print` shows and the console offers."""
        if self.toml:
            return toml_table(self.servers_key, SERVER_NAME, self.entry(url, key))
        return json.dumps({self.servers_key: {SERVER_NAME: self.entry(url, key)}}, indent=2)


CLIENTS: dict[str, Client] = {c.id: c for c in [
    Client("claude-code", "Claude Code", ".mcp.json", None, "mcpServers", "url", extra=(("type", "http"),)),
    Client("cursor", "Cursor", ".cursor/mcp.json", ".cursor/mcp.json", "mcpServers", "url"),
    Client("gemini", "Gemini CLI", ".gemini/settings.json", ".gemini/settings.json", "mcpServers", "httpUrl"),
    Client("vscode", "VS Code", ".vscode/mcp.json", None, "servers", "url", extra=(("type", "http"),)),
    Client("codex", "Codex", ".codex/config.toml", ".codex/config.toml", "mcp_servers", "url", "http_headers"),
]}


class NotMergeable(ValueError):
    """The existing file cannot be read as its client's format; nothing is written."""


def mcp_json(url: str, key: str) -> str:
    """Claude Code's project `.mcp.json`."""
    return CLIENTS["claude-code"].snippet(url, key)


def configs(url: str, key: str) -> list[dict[str, str]]:
    header = f"Authorization: Bearer {key}"
    shown = [{"client": f"{c.label} ({c.project_file})", "text": c.snippet(url, key)} for c in CLIENTS.values()]
    shown.insert(1, {"client": "Claude Code (claude mcp add)", "text": f"claude mcp add --transport http {SERVER_NAME} "
                     f"{shlex.quote(url)} --header {shlex.quote(header)}"})
    return shown


def current_entry(client: Client, text: str) -> dict[str, Any] | None:
    """Our server's entry in an existing file, if there is one."""
    servers = _parse(client, text).get(client.servers_key)
    entry = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
    return entry if isinstance(entry, dict) else None


def key_of(client: Client, entry: dict[str, Any]) -> str | None:
    headers = entry.get(client.headers_field)
    value = headers.get("Authorization") if isinstance(headers, dict) else None
    return value.split(" ", 1)[1] if isinstance(value, str) and value.startswith("Bearer ") else None


def merged(client: Client, text: str, url: str, key: str) -> str:
    """`text` (the existing file, "" for none) with our server's entry set and everything else kept."""
    if client.toml:
        return _merged_toml(client, text, url, key)
    document = _parse(client, text)
    servers = document.setdefault(client.servers_key, {})
    if not isinstance(servers, dict):
        raise NotMergeable(f"its '{client.servers_key}' is not an object")
    servers[SERVER_NAME] = client.entry(url, key)
    return json.dumps(document, indent=2) + "\n"


def _parse(client: Client, text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        document = tomllib.loads(text) if client.toml else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise NotMergeable(f"it is not valid {'TOML' if client.toml else 'JSON'} ({exc})") from None
    if not isinstance(document, dict):
        raise NotMergeable("it is not a JSON object")
    return document


def toml_table(servers_key: str, name: str, entry: dict[str, Any]) -> str:
    lines = [f"[{servers_key}.{name}]"]
    for field, value in entry.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{field} = {{ {inner} }}")
        else:
            lines.append(f"{field} = {json.dumps(value)}")  # a JSON string is a valid TOML basic string
    return "\n".join(lines) + "\n"


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _ours(header: str, servers_key: str) -> bool:
    parts = [p.strip().strip('"').strip("'") for p in header.split(".")]
    return parts[:2] == [servers_key, SERVER_NAME]


def _merged_toml(client: Client, text: str, url: str, key: str) -> str:
    """TOML has no writer in the standard library, so our table is replaced as text (its header to
    the next table that is not ours), the rest kept byte for byte, and the result checked by parsing."""
    before = _parse(client, text)
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if match := _TABLE.match(line):
            skipping = _ours(match.group(1), client.servers_key)
        if not skipping:
            kept.append(line)
    body = "\n".join(kept).rstrip()
    result = (body + "\n\n" if body else "") + toml_table(client.servers_key, SERVER_NAME, client.entry(url, key))
    expected = dict(before)
    servers = dict(expected.get(client.servers_key) or {})
    servers[SERVER_NAME] = client.entry(url, key)
    expected[client.servers_key] = servers
    try:
        same = _parse(client, result) == expected
    except NotMergeable:
        same = False
    if not same:
        raise NotMergeable(f"its [{client.servers_key}] tables are written in a form this merge does not rewrite "
                           "(e.g. an inline table)")
    return result


def qr_svg(text: str) -> str:
    """An inline SVG QR code (segno: pure Python), black on white so any phone camera reads it."""
    import segno

    return str(segno.make(text, error="l").svg_inline(scale=3, dark="#000", light="#fff", border=2))


def shown_once(created: dict[str, Any], url: str) -> dict[str, Any]:
    """A created key with everything the person needs to use it, since it is never shown again."""
    key = created["apiKey"]
    return {**created, "mcpUrl": url, "configs": configs(url, key), "qrSvg": qr_svg(mcp_json(url, key))}
