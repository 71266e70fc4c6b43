"""The deploy plan's topology on this machine: emulators, one functions-framework process per
function (two for `mcp`, so that state shared through Firestore and Pub/Sub is what makes
them agree, as with several Cloud Run instances), Pub/Sub push subscriptions, the Firestore
relay in place of Eventarc, and a timer in place of Cloud Scheduler.

What runs and how it is wired comes from `cachebash.deploy` (`HTTP_FUNCTIONS`,
`PUBSUB_FUNCTIONS`, `FIRESTORE_FUNCTIONS`, the scheduler job of `plan()`), never from names
kept here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cachebash import deploy
from cachebash.cloud_local import emulators
from cachebash.cloud_local.firestore_relay import FirestoreRelay, Retry, Trigger
from cachebash.cloud_local.functions import Function, function_env, start_function
from cachebash.cloud_local.processes import Child
from cachebash.cloud_local.pubsub_push import Scheduler, create_push_subscriptions

log = logging.getLogger(__name__)

MCP = "mcp"


@dataclass(frozen=True)
class Options:
    #: Emulators accept any project; a `demo-` one can never reach a real Google project.
    project: str = "demo-cachebash"
    #: Seconds between scheduler ticks; the deployed job runs every minute.
    sweep_seconds: float = 60.0
    mcp_instances: int = 2
    #: First mcp instance's port (the next ones follow it); None: free ports.
    mcp_port: int | None = None
    #: Where each process's log goes; None: a new temporary directory (kept after the run).
    log_dir: Path | None = None
    #: Set for every function, on top of this process's environment (which they inherit).
    env: Mapping[str, str] = field(default_factory=dict)
    relay_retry: Retry = field(default_factory=Retry)


@dataclass(frozen=True)
class Topology:
    """What is running: the emulators' hosts, the project, every function, the log directory."""

    project: str
    firestore_host: str
    pubsub_host: str
    functions: Mapping[str, list[Function]]
    log_dir: Path
    scheduler: Scheduler
    relay: FirestoreRelay

    @property
    def mcp_urls(self) -> list[str]:
        return [f"{f.url}/v1/mcp" for f in self.functions[MCP]]


def function_names() -> list[str]:
    """Every function the deploy plan deploys, in its order."""
    return [*deploy.HTTP_FUNCTIONS, *deploy.PUBSUB_FUNCTIONS, *deploy.FIRESTORE_FUNCTIONS]


def _emulator(stack: ExitStack, variable: str, start: emulators.Starter, log_dir: Path,
              starting: list[emulators.Emulator]) -> str:
    """The emulator `variable` names if set (already running), else a fresh one (added to
    `starting`, stopped with the stack)."""
    if host := os.environ.get(variable):
        log.info("using the running emulator at %s=%s", variable, host)
        return host
    started = start(log_dir)
    stack.callback(started.child.stop)
    starting.append(started)
    return started.host


def _stop_all(children: list[Child]) -> None:
    """SIGTERM them all first, so they stop side by side, then wait for each."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
    for child in children:
        child.stop()


def _start_functions(options: Options, env: dict[str, str], log_dir: Path) -> dict[str, list[Function]]:
    started: dict[str, list[Function]] = {}
    for name in function_names():
        if name == MCP:
            started[name] = [start_function(name, env, log_dir, label=f"{name}-{i + 1}",
                                            port=options.mcp_port + i if options.mcp_port else None)
                             for i in range(options.mcp_instances)]
        else:
            started[name] = [start_function(name, env, log_dir)]
    return started


@contextmanager
def run(options: Options | None = None) -> Iterator[Topology]:
    """Start everything, yield once every process answers, stop everything on exit."""
    options = options or Options()
    if not options.project.startswith("demo-"):
        raise ValueError(f"project {options.project!r}: use a 'demo-' project id (the emulators' convention), "
                         "so nothing here can reach a real Google Cloud project")
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="cachebash-cloud-local-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        # Everything starts side by side (the functions connect to the emulators lazily), then is waited for.
        starting: list[emulators.Emulator] = []
        firestore_host = _emulator(stack, "FIRESTORE_EMULATOR_HOST", emulators.start_firestore, log_dir, starting)
        pubsub_host = _emulator(stack, "PUBSUB_EMULATOR_HOST", emulators.start_pubsub, log_dir, starting)
        # This process's own clients (push setup, scheduler, relay) find the emulators as the functions do.
        os.environ.update(FIRESTORE_EMULATOR_HOST=firestore_host, PUBSUB_EMULATOR_HOST=pubsub_host,
                          GOOGLE_CLOUD_PROJECT=options.project)
        env = function_env(options.project, firestore_host, pubsub_host, options.env)
        functions = _start_functions(options, env, log_dir)
        stack.callback(_stop_all, [f.child for running in functions.values() for f in running])
        for emulator in starting:
            emulator.wait_ready()
        for running in functions.values():
            for function in running:
                function.wait_ready()
        urls = {name: running[0].url for name, running in functions.items()}
        create_push_subscriptions(options.project, urls)
        relay = FirestoreRelay(options.project, [Trigger(name, t.pattern, urls[name], t.event)
                                                 for name, t in deploy.FIRESTORE_FUNCTIONS.items()],
                               retry=options.relay_retry)
        stack.callback(relay.stop)
        relay.start()
        scheduler = Scheduler(options.project, options.sweep_seconds).start()
        stack.callback(scheduler.stop)
        yield Topology(options.project, firestore_host, pubsub_host, functions, log_dir, scheduler, relay)
