"""What every command shares: the settings a command line overrides, the runtime on the data
dir, the one kind of error a person reads (`CliError`: one line, no traceback), and output as
text or `--json`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from cachebash.bootstrap import build_runtime, open_store
from cachebash.config import Settings, check_port
from cachebash.services.keys import DEFAULT_TENANT
from cachebash.services.runtime import Runtime


class CliError(Exception):
    """A problem the person can fix; the message says what to do."""


def port(text: str) -> int:
    """argparse type for --port: a number from 1 to 65535 (70000 would silently wrap)."""
    try:
        return check_port(int(text), "--port")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a port: use a number from 1 to 65535") from None


def add_place(parser: argparse.ArgumentParser, *, tenant: bool = True, json_out: bool = False,
              server: bool = False) -> None:
    """The options that say where a command acts: the data dir (and the tenant, the server's address)."""
    parser.add_argument("--data-dir", help="the server's data directory (default $CACHEBASH_DATA_DIR or .cachebash)")
    if tenant:
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="the account (default: default; in the cloud "
                            "the owner's Firebase uid)")
    if server:
        parser.add_argument("--host")
        parser.add_argument("--port", type=port)
    if json_out:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def settings(args: argparse.Namespace) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        host=getattr(args, "host", None) or base.host,
        port=getattr(args, "port", None) or base.port,
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else base.data_dir,
    )


def runtime(config: Settings) -> Runtime:
    from cachebash.cli.checks import check_store

    check_store(config)
    return build_runtime(config, store=open_store(config))  # every setting: the plan, away_seconds too


def base_url(config: Settings) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.port}"


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def table(rows: list[list[str]], header: list[str]) -> str:
    """Columns as wide as their widest cell; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def short(text: str | None, width: int = 60) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"
