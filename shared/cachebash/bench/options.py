"""The `cachebash bench` command line. Kept free of heavy imports: `cachebash --help` loads it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

WORKLOADS = ("dispatch", "race", "relay", "scale")
#: Workloads run only when named: `waiters` holds hundreds of calls open for half a minute or more;
#: `coldstart` starts Google's Firestore emulator and a dozen function processes.
EXTRA_WORKLOADS = ("waiters", "coldstart")
# Agents per workload when --agents is not given: the targets (16; 64 for the race; for
# `waiters`, the few agents making plain calls beside the waiting ones).
DEFAULT_AGENTS = {"dispatch": 16, "race": 64, "relay": 16, "scale": 16, "waiters": 4}


@dataclass(frozen=True)
class Options:
    workloads: tuple[str, ...] = WORKLOADS
    agents: int | None = None
    duration: float = 10.0
    preload: int = 100_000
    race_tasks: int = 1_000
    waiters: int = 320
    wait_seconds: float = 25.0
    coldstart_runs: int = 3
    client: str = "lean"
    url: str | None = None
    keys: str | None = None
    json_out: str | None = None

    def agents_for(self, workload: str) -> int:
        return self.agents or DEFAULT_AGENTS[workload]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--spawn", action="store_true", default=True,
                       help="start a fresh embedded server per workload (default)")
    where.add_argument("--url", help="benchmark a running server's /v1/mcp URL instead (needs --keys)")
    parser.add_argument("--keys", metavar="FILE", help="with --url: file whose first line is an admin API key")
    parser.add_argument("--agents", type=int, help="concurrent agents (default 16; 64 for race)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed phase (default 10)")
    parser.add_argument("--workload", default="all", choices=[*WORKLOADS, *EXTRA_WORKLOADS, "all"],
                        help="one workload, or all of them but waiters (default all)")
    parser.add_argument("--preload", type=int, default=100_000, help="tasks queued for scale (default 100000)")
    parser.add_argument("--race-tasks", type=int, default=1_000, help="tasks in the race's shared set (default 1000)")
    parser.add_argument("--waiters", type=int, default=320,
                        help="waiters: calls held open in get_messages (default 320)")
    parser.add_argument("--wait-seconds", type=float, default=25.0,
                        help="waiters: each waiting call's wait_seconds (default 25, at most 25)")
    parser.add_argument("--coldstart-runs", type=int, default=3,
                        help="coldstart: process starts per figure, of which the median is reported (default 3)")
    parser.add_argument("--client", choices=["lean", "sdk"], default="lean",
                        help="lean: wire-level MCP client (default); sdk: the official mcp.Client")
    parser.add_argument("--json", dest="json_out", metavar="OUT", help="also write the full report as JSON")


def options_from(args: argparse.Namespace) -> Options:
    if args.url and not args.keys:
        raise SystemExit("cachebash bench: --url needs --keys FILE (an admin key on the first line)")
    if args.agents is not None and args.agents < 2:
        raise SystemExit("cachebash bench: --agents must be at least 2")
    if args.coldstart_runs < 1:
        raise SystemExit("cachebash bench: --coldstart-runs must be at least 1")
    if args.waiters < 1 or not 0 < args.wait_seconds <= 25:
        raise SystemExit("cachebash bench: --waiters must be at least 1 and --wait-seconds between 0 and 25")
    return Options(
        workloads=WORKLOADS if args.workload == "all" else (args.workload,),
        agents=args.agents, duration=args.duration, preload=args.preload, race_tasks=args.race_tasks,
        waiters=args.waiters, wait_seconds=args.wait_seconds, coldstart_runs=args.coldstart_runs,
        client=args.client, url=args.url, keys=args.keys, json_out=args.json_out,
    )
