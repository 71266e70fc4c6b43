"""The developer's and operator's commands: console link, docs, indexes, bench, deploy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cachebash.cli import common


def cmd_console(args: argparse.Namespace) -> int:
    from cachebash.cli.serve import console_link

    config = common.settings(args)
    print(console_link(common.runtime(config), config, args.tenant))
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


def register(sub: Any) -> None:
    console = sub.add_parser("console", help="print a fresh one-time login link to the web console")
    common.add_place(console, server=True)
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
