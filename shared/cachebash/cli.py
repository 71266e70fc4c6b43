"""`cachebash`: serve the embedded server and manage keys from a terminal."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from cachebash.bootstrap import embedded_runtime, open_store, start_sweeper
from cachebash.config import Settings
from cachebash.domain.errors import CacheBashError
from cachebash.domain.inputs import parse
from cachebash.domain.programs import CreateKey
from cachebash.ports.store import Query
from cachebash.services import keys
from cachebash.services.runtime import Runtime

ADMIN_PROGRAM = "admin"


def _settings(args: argparse.Namespace) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        host=getattr(args, "host", None) or base.host,
        port=getattr(args, "port", None) or base.port,
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else base.data_dir,
    )


def _runtime(settings: Settings) -> Runtime:
    return embedded_runtime(open_store(settings), policy=settings.policy)


def base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def console_link(runtime: Runtime, settings: Settings, tenant_id: str) -> str:
    """A fresh one-time login link for the tenant's console (as Jupyter prints one)."""
    from cachebash.services.console_auth import issue_login

    return f"{base_url(settings)}/console/login?token={issue_login(runtime, tenant_id)}"


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cachebash.interface import connection_limits
    from cachebash.interface.client_configs import mcp_json
    from cachebash.interface.http_app import MCP_PATH, build_app

    settings = _settings(args)
    runtime = _runtime(settings)
    url = base_url(settings) + MCP_PATH
    if not runtime.store.query(Query(keys.KEYS).take(1)):
        created = keys.issue_key(runtime, keys.DEFAULT_TENANT, CreateKey(programId=ADMIN_PROGRAM, admin=True,
                                                                        label="first admin key"), "cli")
        print(f"First start: created an admin key for program '{ADMIN_PROGRAM}' (shown only once):\n")
        print(f"  {created['apiKey']}\n")
        print("MCP client config (.mcp.json for Claude Code, ~/.cursor/mcp.json for Cursor):")
        print(mcp_json(url, created["apiKey"]))
        print("\nCreate one key per agent:  .venv/bin/cachebash keys create --program builder --group builders\n")
    print(f"CacheBash serving MCP at {url} ({settings.describe_store()})")
    print(f"Console (one-time login link; `cachebash console` prints a new one):\n  "
          f"{console_link(runtime, settings, keys.DEFAULT_TENANT)}", flush=True)
    sweeper = start_sweeper(runtime, settings.sweep_seconds)
    try:
        # httptools, uvloop (picked by loop="auto" where installed: a dependency except on Windows)
        # and no access log: the bare stack's cost per request drops by more than half (README,
        # Benchmark), so CacheBash's own work is most of what a call costs. The httptools protocol
        # is ours: deadlines for idle connections, request heads and bodies, and a connection cap.
        # No WebSockets: nothing is served over them.
        uvicorn.run(build_app(runtime, host=settings.host, settings=settings), host=settings.host, port=settings.port,
                    log_level="warning", loop="auto", access_log=False, ws="none",
                    http=connection_limits.protocol_class(connection_limits.ConnectionLimits(
                        idle_seconds=settings.http_idle_seconds, head_seconds=settings.http_head_seconds,
                        body_seconds=settings.http_body_seconds, max_connections=settings.http_max_connections)))
    finally:
        sweeper.stop()
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(console_link(_runtime(settings), settings, args.tenant))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    runtime = _runtime(_settings(args))
    cmd = parse(CreateKey, {"programId": args.program, "label": args.label, "groups": args.group or [],
                            "admin": args.admin})
    created = keys.issue_key(runtime, args.tenant, cmd, "cli")
    groups = ", ".join(created["groups"]) or "none"
    print(f"Key {created['keyId']} for program '{args.program}' in tenant '{args.tenant}' "
          f"(groups: {groups}{', admin' if args.admin else ''}). Shown only once:", file=sys.stderr)
    print(created["apiKey"])
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    listing = keys.list_tenant_keys(_runtime(_settings(args)), args.tenant)
    for key in listing["keys"]:
        state = "active" if key["active"] else f"revoked {key['revokedAt']}"
        print(f"{key['keyId']}  {key['programId']:<20} {'admin ' if key['admin'] else ''}{state:<10} "
              f"{key.get('label') or ''}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    keys.revoke_tenant_key(_runtime(_settings(args)), args.tenant, args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def cmd_indexes(args: argparse.Namespace) -> int:
    from cachebash.ports.indexes import firestore_indexes_json

    sys.stdout.write(firestore_indexes_json())
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from cachebash.interface import tool_docs

    if args.write:
        path = Path(args.write)
        path.write_text(tool_docs.replace_in(path.read_text()))
    else:
        print(tool_docs.render())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from cachebash.bench.main import main
    from cachebash.bench.options import options_from

    return main(options_from(args))


def cmd_deploy(args: argparse.Namespace) -> int:
    from cachebash.deploy import deploy

    web_config = Path(args.web_config).read_text() if args.web_config else None
    deploy(args.project, args.region, dry_run=args.dry_run, web_config=web_config, vapid_key=args.vapid_key)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cachebash", description="Coordination server for AI coding agents.")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (SQLite by default; CACHEBASH_STORE=firestore for Firestore)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir")
    serve.set_defaults(func=cmd_serve)

    console = sub.add_parser("console", help="print a fresh one-time login link to the web console")
    console.add_argument("--tenant", default=keys.DEFAULT_TENANT)
    console.add_argument("--host")
    console.add_argument("--port", type=int)
    console.add_argument("--data-dir")
    console.set_defaults(func=cmd_console)

    sub.add_parser("indexes", help="print firestore.indexes.json for the queries the code makes").set_defaults(
        func=cmd_indexes)

    deploy = sub.add_parser("deploy", help="deploy to Google Cloud: print (--dry-run) or run gcloud/firebase")
    deploy.add_argument("--project", required=True, help="Google Cloud / Firebase project id")
    deploy.add_argument("--region", default="us-central1", help="functions region (default us-central1)")
    deploy.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    deploy.add_argument("--web-config", metavar="JSON_FILE",
                        help="the Firebase web app config (JSON) the console signs in with")
    deploy.add_argument("--vapid-key", help="the project's web-push key, for console notifications")
    deploy.set_defaults(func=cmd_deploy)

    docs = sub.add_parser("docs", help="print the MCP tool reference (markdown)")
    docs.add_argument("--write", metavar="README", help="replace the reference section of this file")
    docs.set_defaults(func=cmd_docs)

    from cachebash.bench.options import add_arguments as bench_arguments

    bench = sub.add_parser("bench", help="measure throughput, latency, claim safety and scale (see README)")
    bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    key = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = key.add_parser("create", help="create a key; prints it alone on the last line")
    create.add_argument("--program", required=True, help="program id the key acts as")
    create.add_argument("--label")
    create.add_argument("--group", action="append", help="add the program to this group (repeatable)")
    create.add_argument("--admin", action="store_true", help="may manage keys and read any program state")
    create.set_defaults(func=cmd_keys_create)
    listing = key.add_parser("list", help="list keys of a tenant")
    listing.set_defaults(func=cmd_keys_list)
    revoke = key.add_parser("revoke", help="revoke a key by keyId")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)
    for command in (create, listing, revoke):
        command.add_argument("--tenant", default=keys.DEFAULT_TENANT)
        command.add_argument("--data-dir")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CacheBashError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
