"""`cachebash doctor`: what is wrong with this setup, each finding with what to do about it.
Checks the data dir and database, the server or the port, the keys, a key given with --key
(over HTTP, as a client sends it), and every client config `connect` wrote."""

from __future__ import annotations

import argparse
import http.client
import json
import urllib.parse
from pathlib import Path
from typing import Any

from cachebash.cli import common
from cachebash.cli.checks import bind, check_data_dir, check_database
from cachebash.cli.connect import mcp_url, recorded
from cachebash.cli.instance import running
from cachebash.config import Settings
from cachebash.domain.errors import Unauthenticated
from cachebash.interface.client_configs import CLIENTS, NotMergeable, current_entry, key_of
from cachebash.services.keys import authenticate, list_tenant_keys
from cachebash.services.runtime import Runtime

Finding = tuple[bool, str]


def _place(config: Settings) -> list[Finding]:
    try:
        check_data_dir(config.data_dir)
        check_database(config.sqlite_path)
    except common.CliError as exc:
        return [(False, str(exc))]
    return [(True, f"data dir {config.data_dir.resolve()}: writable, the database is CacheBash's")]


def _server(config: Settings) -> list[Finding]:
    server = running(config.data_dir)
    if server is None:
        try:
            bind(config.host, config.port).close()
        except common.CliError as exc:
            return [(False, f"no server on this data dir, and {exc}")]
        return [(True, f"no server running on this data dir; port {config.port} is free (`cachebash serve`)")]
    status, body = _http(server.url.rsplit("/v1/", 1)[0] + "/health", "GET")
    if status != 200:
        return [(False, f"server pid {server.pid} holds the data dir but {server.url} does not answer /health "
                        f"({status or body}): stop it and start it again")]
    return [(True, f"server pid {server.pid} answers at {server.url} (version {json.loads(body)['version']})")]


def _http(url: str, method: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        conn.request(method, parts.path or "/", body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


def check_key_over_http(url: str, key: str) -> Finding:
    """What a client sees: a tools/list with the key as Bearer (the curl in the README, Troubleshooting)."""
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    status, body = _http(url, "POST", request, {
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"})
    if status == 200:
        return True, f"the key works at {url} (tools/list answered)"
    if status == 401:
        why = json.loads(body).get("error", {}).get("message", body)
        return False, (f"the server refuses the key ({why}); clients show this as 'Failed to connect'. "
                       "`cachebash connect` writes a fresh one")
    return False, f"{url} answered {status or 'nothing'} ({body[:120]}): is the server running? (`cachebash status`)"


def _keys(runtime: Runtime, tenant: str) -> list[Finding]:
    active = [k for k in list_tenant_keys(runtime, tenant)["keys"] if k["active"]]
    if not active:
        return [(False, "no active keys: `cachebash connect --program NAME --client CLIENT` makes one")]
    admins = sum(1 for k in active if k["admin"])
    return [(True, f"{len(active)} active key(s), {admins} admin, for {len({k['programId'] for k in active})} "
                   "program(s)")]


def _configs(runtime: Runtime, config: Settings, url: str) -> list[Finding]:
    found: list[Finding] = []
    for path_text, info in recorded(config).items():
        path, client, program = Path(path_text), CLIENTS.get(info.get("client", "")), info.get("program", "?")
        if client is None:
            continue
        again = f"`cachebash connect --program {program} --client {client.id} --dir {path.parent}`"
        found.append(_config(runtime, path, client, program, url, again))
    return found


def _config(runtime: Runtime, path: Path, client: Any, program: str, url: str, again: str) -> Finding:
    where = f"{path} ({client.label}, '{program}')"
    try:
        entry = current_entry(client, path.read_text()) if path.exists() else None
    except NotMergeable as exc:
        return False, f"{where}: {exc}"
    if entry is None:
        return False, f"{where}: no cachebash entry any more; {again} writes it"
    if entry.get(client.url_field) != url:
        return False, f"{where}: points at {entry.get(client.url_field)}, the server is at {url}; {again}"
    key = key_of(client, entry)
    try:
        caller = authenticate(runtime, key)
    except Unauthenticated as exc:
        return False, f"{where}: {exc.message}; {again}"
    if caller.program_id != program:
        return False, f"{where}: its key acts as '{caller.program_id}'; {again}"
    return True, f"{where}: the key works"


def cmd_doctor(args: argparse.Namespace) -> int:
    config = common.settings(args)
    findings = _place(config) if config.store == "sqlite" else []
    if findings and not findings[0][0]:
        return _report(findings, args.json)
    runtime = common.runtime(config)
    url = mcp_url(config)
    findings += (_server(config) if config.store == "sqlite" else []) + _keys(runtime, args.tenant)
    if args.key:
        findings.append(check_key_over_http(url, args.key))
    findings += _configs(runtime, config, url)
    return _report(findings, args.json)


def _report(findings: list[Finding], as_json: bool) -> int:
    if as_json:
        common.emit_json([{"ok": ok, "finding": text} for ok, text in findings])
    else:
        for ok, text in findings:
            print(f"{'ok ' if ok else 'FIX'}  {text}")
    return 0 if all(ok for ok, _ in findings) else 1


def register(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check the data dir, the server or port, the keys and the client configs")
    doctor.add_argument("--key", help="also check this API key over HTTP, as a client would send it")
    doctor.set_defaults(func=cmd_doctor)
    common.add_place(doctor, json_out=True, server=True)
