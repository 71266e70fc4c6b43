"""`cachebash connect`: a key for one program and its client's config file, in one command.

The entry is merged into the file (other servers and settings kept, a backup of the previous
version beside it, written atomically). Re-running is idempotent: an entry whose key still works
for the same program on the same URL is left alone, so no key is minted for nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from cachebash.cli import common
from cachebash.cli.instance import running
from cachebash.cli.keys import create
from cachebash.config import Settings
from cachebash.domain.errors import Unauthenticated
from cachebash.interface.client_configs import CLIENTS, Client, NotMergeable, current_entry, key_of, merged
from cachebash.services.keys import authenticate
from cachebash.services.runtime import Runtime

BACKUP_SUFFIX = ".bak"
RECORD = "connections.json"  # in the data dir: the files `connect` wrote, for `doctor`


def recorded(config: Settings) -> dict[str, dict[str, Any]]:
    try:
        value = json.loads((config.data_dir / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _record(config: Settings, path: Path, client: Client, program: str) -> None:
    found = recorded(config)
    found[str(path.resolve())] = {"client": client.id, "program": program}
    (config.data_dir / RECORD).write_text(json.dumps(found, indent=2) + "\n")


def mcp_url(config: Settings) -> str:
    """The running server's own URL when there is one, else the one the settings give."""
    from cachebash.interface.http_app import MCP_PATH

    server = running(config.data_dir) if config.store == "sqlite" else None
    return server.url if server else common.base_url(config) + MCP_PATH


def config_path(client: Client, directory: Path, global_file: bool) -> Path:
    if not global_file:
        return directory / client.project_file
    if client.global_file is None:
        raise common.CliError(f"{client.label} reads its servers from the project ({client.project_file}): "
                              "leave out --global and give the project with --dir")
    return Path.home() / client.global_file


def _still_good(runtime: Runtime, client: Client, entry: dict[str, Any] | None, program: str, url: str) -> bool:
    if entry is None or entry.get(client.url_field) != url:
        return False
    key = key_of(client, entry)
    try:
        return key is not None and authenticate(runtime, key).program_id == program
    except Unauthenticated:
        return False


def write_atomically(path: Path, text: str) -> Path | None:
    """Write `text` to `path` through a temporary file; returns the backup of the previous version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        shutil.copy2(path, backup)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chmod(temporary, 0o600)  # it holds a key
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def cmd_connect(args: argparse.Namespace) -> int:
    config = common.settings(args)
    client = CLIENTS[args.client]
    runtime = common.runtime(config)
    url = mcp_url(config)
    path = config_path(client, Path(args.dir).expanduser(), args.global_file)
    text = path.read_text() if path.exists() and not args.print else ""
    try:
        entry = current_entry(client, text)
        merged(client, text, url, "cb_check")  # refuse before a key is minted for a file we cannot write
    except NotMergeable as exc:
        raise common.CliError(f"cannot merge into {path}: {exc}; fix or move the file, nothing was written") from None
    if not args.print and _still_good(runtime, client, entry, args.program, url):
        _record(config, path, client, args.program)
        print(f"{path} already connects '{args.program}' to {url}: nothing to do")
        return 0
    where = "~" if args.global_file else str(Path(args.dir).expanduser().resolve())
    created = create(runtime, args.tenant, args.program, args.group or [], args.label or f"{client.label} ({where})")
    if args.print:
        print(client.snippet(url, created["apiKey"]))
        print(f"(key {created['keyId']} for '{args.program}'; put this in {path})", file=sys.stderr)
        return 0
    backup = write_atomically(path, merged(client, text, url, created["apiKey"]))
    _record(config, path, client, args.program)
    groups = ", ".join(created["groups"]) or "no groups"
    print(f"Connected {client.label} in {path} as '{args.program}' ({groups}; key {created['keyId']}).")
    if backup is not None:
        print(f"  The previous file is in {backup}.")
    print(f"  The file holds the key: keep it out of version control. Restart {client.label} to pick it up.")
    return 0


def register(sub: Any) -> None:
    connect = sub.add_parser("connect", help="create a key for an agent and write it into its client's config")
    connect.add_argument("--program", required=True, help="the agent's program id (its identity), e.g. builder")
    connect.add_argument("--group", action="append", help="add the program to this group (repeatable)")
    connect.add_argument("--client", required=True, choices=sorted(CLIENTS), help="the agent's MCP client")
    connect.add_argument("--dir", default=".", help="the agent's project directory (default: here)")
    connect.add_argument("--global", dest="global_file", action="store_true",
                         help="write the client's user-wide file (Cursor, Gemini CLI, Codex) instead of the project's")
    connect.add_argument("--label", help="the key's label (default: the client and the directory)")
    connect.add_argument("--print", action="store_true", help="print the config instead of writing it")
    connect.set_defaults(func=cmd_connect)
    common.add_place(connect, server=True)
