"""`python -m cachebash.cloud_local` (`make cloud-local`): the whole cloud topology on this
machine, in the foreground until SIGINT or SIGTERM, then stopped.

Stdout carries only what a script needs, one item per line: the emulators' hosts, the
project, each mcp instance's URL, and `ready` last. Everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from cachebash.cloud_local.topology import Options, Topology, run


class Interrupted(Exception):
    """SIGINT or SIGTERM: unwind, stopping whatever was started (also half-way through starting)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for each in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the clean-up short
        signal.signal(each, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name, time.monotonic())


def _stop_when_stdin_closes() -> None:
    """For a supervising process: our stdin is its pipe, so EOF means it is gone. (Raw reads:
    a daemon thread inside a buffered read would hold its lock when the interpreter exits.)"""
    while os.read(0, 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def parse(argv: Sequence[str]) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(prog="python -m cachebash.cloud_local", description=__doc__)
    parser.add_argument("--project", default=Options.project, help="a demo- project id (default %(default)s)")
    parser.add_argument("--sweep-seconds", type=float, default=Options.sweep_seconds,
                        help="seconds between Cloud Scheduler ticks on the sweeper topic (default %(default)s)")
    parser.add_argument("--mcp-instances", type=int, default=Options.mcp_instances)
    parser.add_argument("--mcp-port", type=int, help="port of the first mcp instance; the others follow it")
    parser.add_argument("--log-dir", type=Path, help="one log file per process (default: a new temporary directory)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set for every function, e.g. CACHEBASH_LEASE_SECONDS=5 (the environment is "
                             "passed through as well)")
    parser.add_argument("--stop-on-stdin-eof", action="store_true", help="stop when stdin closes (for supervisors)")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(env) != len(args.env):
        parser.error("--env takes NAME=VALUE")
    return Options(project=args.project, sweep_seconds=args.sweep_seconds, mcp_instances=args.mcp_instances,
                   mcp_port=args.mcp_port, log_dir=args.log_dir, env=env), args.stop_on_stdin_eof


def announce(topology: Topology) -> None:
    for line in (f"FIRESTORE_EMULATOR_HOST={topology.firestore_host}", f"PUBSUB_EMULATOR_HOST={topology.pubsub_host}",
                 f"GOOGLE_CLOUD_PROJECT={topology.project}", *(f"mcp: {url}" for url in topology.mcp_urls)):
        print(line, flush=True)
    for name, running in topology.functions.items():
        for function in running:
            logging.info("%-18s %s  (log %s)", name, function.url, function.child.log_path)
    logging.info("scheduler tick every %g s on %s; logs in %s", topology.scheduler.interval,
                 topology.scheduler.topic, topology.log_dir)
    print("ready", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="cloud-local: %(message)s")
    options, stop_on_eof = parse(sys.argv[1:] if argv is None else argv)
    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, _interrupt)
    if stop_on_eof:
        threading.Thread(target=_stop_when_stdin_closes, name="stdin-eof", daemon=True).start()
    try:
        with run(options) as topology:
            announce(topology)
            while True:
                signal.pause()
    except Interrupted as why:
        name, since = why.args
        logging.info("%s: stopped everything in %.1f s", name, time.monotonic() - since)
        return 0
    except (RuntimeError, ValueError) as exc:  # could not start (StartFailed, a bad flag): say why
        print(f"cloud-local: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
