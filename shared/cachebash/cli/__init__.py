"""`cachebash`: serve the embedded server, connect agents, and watch and answer them from a
terminal. One module per command group; this one only assembles them and turns every problem
a person can fix into one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import sys

from cachebash import __version__
from cachebash.cli import connect, doctor, keys, plan, serve, tools, usage, watch
from cachebash.cli.common import CliError, add_place
from cachebash.config import LOG_LEVELS, SettingsError
from cachebash.domain.errors import CacheBashError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cachebash", description="Coordination server for AI coding agents.")
    root.add_argument("--version", action="version", version=f"cachebash {__version__}")
    sub = root.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser("serve", help="run the server (SQLite by default; CACHEBASH_STORE=firestore for "
                                           "Firestore)")
    add_place(serve_p, tenant=False, server=True)
    serve_p.add_argument("--log-level", choices=LOG_LEVELS,
                         help="activity (one line per state change, the default), warning or debug ($CACHEBASH_LOG)")
    serve_p.set_defaults(func=serve.cmd_serve)
    connect.register(sub)
    keys.register(sub)
    plan.register(sub)
    watch.register(sub)
    doctor.register(sub)
    tools.register(sub)
    usage.register(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CacheBashError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cachebash tasks | head`
        return 0
