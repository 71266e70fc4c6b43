"""`cachebash plan show|set --tenant T`: a tenant's plan (its preset and overrides) and what is
used of it. Through the running server when there is one (its cached plan changes at once), on
the data dir (or CACHEBASH_STORE=firestore: the cloud's operator) otherwise."""

from __future__ import annotations

import argparse
from typing import Any

from cachebash.cli import common
from cachebash.cli.instance import running
from cachebash.cli.owner import Owner
from cachebash.domain.plans import LIMIT_FIELDS, PRESETS


def _call(args: argparse.Namespace, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    config = common.settings(args)
    owner = Owner(common.runtime(config), args.tenant, running(config.data_dir))
    try:
        return owner.call(method, "/plan", body)
    finally:
        owner.close()


def _limit(text: str) -> int | None:
    """A whole number, or 'unlimited'."""
    if text.lower() in ("unlimited", "none", "null"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, or 'unlimited'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 0")
    return value


def _print(shown: dict[str, Any]) -> None:
    plan, usage, overrides = shown["plan"], shown["usage"], shown["overrides"]
    origin = " (the default: none stored)" if shown["default"] else ""
    print(f"Tenant '{shown['tenantId']}': plan '{plan['name']}'{origin}")
    used = {"monthly_tasks": f"{usage['tasksThisMonth']} in {usage['month']}, resets {usage['resetsAt']}",
            "max_open_tasks": f"{usage['openTasks']} open"}
    rows = [[name, "unlimited" if plan[name] is None else str(plan[name]), "override" if name in overrides else "",
             used.get(name, "")] for name in LIMIT_FIELDS]
    print(common.table(rows, ["LIMIT", "VALUE", "", "USED"]))


def cmd_show(args: argparse.Namespace) -> int:
    shown = _call(args, "GET")
    if args.json:
        common.emit_json(shown)
    else:
        _print(shown)
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in LIMIT_FIELDS if getattr(args, name) is not _UNSET}
    if args.plan is None and not overrides and not args.clear:
        raise common.CliError("plan set: give --plan, --clear or at least one limit (e.g. --monthly-tasks 1000)")
    shown = _call(args, "PUT", {"plan": args.plan, "overrides": overrides, "clear": args.clear})
    if args.json:
        common.emit_json(shown)
    else:
        _print(shown)
    return 0


_UNSET: Any = object()


def register(sub: Any) -> None:
    group = sub.add_parser("plan", help="a tenant's plan: quota and limits").add_subparsers(dest="plan_command",
                                                                                           required=True)
    show_p = group.add_parser("show", help="the plan, its limits and what is used this month")
    show_p.set_defaults(func=cmd_show)
    common.add_place(show_p, json_out=True)
    set_p = group.add_parser("set", help="change the preset and/or single limits (the rest stay)")
    set_p.add_argument("--plan", choices=list(PRESETS), help="the preset")
    set_p.add_argument("--clear", action="store_true", help="drop every earlier override first")
    for name in LIMIT_FIELDS:
        set_p.add_argument("--" + name.replace("_", "-"), dest=name, type=_limit, default=_UNSET, metavar="N",
                           help="a whole number, or 'unlimited'")
    set_p.set_defaults(func=cmd_set)
    common.add_place(set_p, json_out=True)
