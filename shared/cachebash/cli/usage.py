"""`cachebash usage`: get_usage from the terminal, as a table or `--json`, for the whole tenant
(the person holding the data dir is its owner). It reads the same counters the console's
Usage page and the get_usage tool read, on the data dir (SQLite readers never block the server)."""

from __future__ import annotations

import argparse
from typing import Any

from cachebash.cli import common
from cachebash.domain.inputs import parse
from cachebash.domain.usage import GetUsage, GroupBy, Period
from cachebash.services.owner_tasks import owner_caller
from cachebash.services.usage_report import get_usage

_COLUMNS = (("CREATED", "created"), ("ATTEMPTS", "attempts"), ("DONE", "completed"), ("FAILED", "failed"),
            ("DEAD", "dead"), ("CANCELLED", "cancelled"), ("TOKENS IN", "tokensIn"), ("TOKENS OUT", "tokensOut"))


def cmd_usage(args: argparse.Namespace) -> int:
    runtime = common.runtime(common.settings(args))
    given = {"period": args.period, "from_date": args.from_date, "to_date": args.to_date, "group_by": args.group_by}
    answer = get_usage(runtime, owner_caller(args.tenant), parse(GetUsage, {k: v for k, v in given.items() if v}))
    if args.json:
        common.emit_json(answer)
        return 0
    for line in table(answer):
        print(line)
    return 0


def table(answer: dict[str, Any]) -> list[str]:
    """The answer as lines: what it covers, one row per group, the total, the plan and quota."""
    width = max([len(answer["groupBy"]), 5, *(len(str(r["key"])) for r in answer["rows"])])
    head = f"{answer['groupBy'].upper():<{width}}  " + "  ".join(f"{t:>{len(t)}}" for t, _ in _COLUMNS)
    lines = [f"usage {answer['from']} to {answer['to']} ({answer['period']}), by {answer['groupBy']}", "",
             head + f"  {'COST USD':>10}  {'P50':>7}"]
    for row in [*answer["rows"], {"key": "TOTAL", **answer["totals"]}]:
        p50 = row["duration"]["p50Seconds"]
        lines.append(f"{str(row['key']):<{width}}  " + "  ".join(f"{row[m]:>{len(t)},}" for t, m in _COLUMNS)
                     + f"  {row['costUsd']:>10.4f}  {'-' if p50 is None else f'≤{p50:g}s':>7}")
    quota = answer["quota"]
    used = f"{quota['used']:,}" + (", no quota" if quota["limit"] is None
                                   else f" of {quota['limit']:,} ({quota['remaining']:,} left)")
    return [*lines, "", f"plan {answer['plan']['name']}: tasks created in {quota['month']}: {used}"]


def register(sub: Any) -> None:
    usage = sub.add_parser("usage", help="tokens, cost and outcomes by program, model, provider, project, type or day")
    usage.add_argument("--period", choices=[p.value for p in Period], help="today, 7d, 30d (default) or month")
    usage.add_argument("--from", dest="from_date", metavar="YYYY-MM-DD", help="first UTC day (instead of --period)")
    usage.add_argument("--to", dest="to_date", metavar="YYYY-MM-DD", help="last UTC day, included (default today)")
    usage.add_argument("--group-by", "--by", dest="group_by", choices=[g.value for g in GroupBy],
                       help="rows per program (default), model, provider, project, type or day")
    usage.set_defaults(func=cmd_usage)
    common.add_place(usage, json_out=True)
