"""`cachebash deploy`: the exact gcloud and firebase commands that put CacheBash on Google
Cloud, printed (--dry-run) or run in order.

The function source is staged in a temporary directory: `functions/main.py`, the
`cachebash` package beside it, and `functions/requirements.txt`, so Cloud Build installs the
same code the tests ran.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cachebash.adapters.pubsub_bus import encode, topic_id
from cachebash.services.events import DocumentTrigger, SweepDue, document_functions, pubsub_functions

REPO = Path(__file__).resolve().parents[2]
RUNTIME = "python311"
SWEEP_TOPIC = SweepDue.topic

#: Pub/Sub-triggered functions and the event topics each consumes (from the catalogue).
PUBSUB_FUNCTIONS: dict[str, tuple[str, ...]] = {
    name: tuple(kind.topic for kind in kinds) for name, kinds in pubsub_functions().items()
}
HTTP_FUNCTIONS: tuple[str, ...] = ("mcp", "keys", "replies")
#: Firestore-triggered functions and the document trigger (event type and path pattern) of each.
FIRESTORE_FUNCTIONS: dict[str, DocumentTrigger] = document_functions()
#: Functions earlier versions deployed that this one does not: an upgraded deployment deletes them
#: (README, "Upgrading a deployment"), or they keep running on the writes they fired on before.
RETIRED_FUNCTIONS: tuple[str, ...] = ("answered_question", "answered_message")


def functions() -> tuple[str, ...]:
    """Every Cloud Function, by target name; `functions/main.py` defines exactly these."""
    return (*HTTP_FUNCTIONS, *PUBSUB_FUNCTIONS, *FIRESTORE_FUNCTIONS)


@dataclass(frozen=True)
class Target:
    project: str
    region: str
    source: str = "<staged source>"
    #: The Firebase web app config (JSON) the console signs in with; see README, "The console in the cloud".
    web_config: str | None = None
    #: The project's web-push VAPID key (Firebase console, Cloud Messaging); enables console push.
    vapid_key: str | None = None


def _env(target: Target) -> str:
    values = ["CACHEBASH_STORE=firestore", "CACHEBASH_BUS=pubsub", "CACHEBASH_NOTIFIER=fcm",
              f"GOOGLE_CLOUD_PROJECT={target.project}"]
    if target.web_config:
        values.append(f"CACHEBASH_FIREBASE_CONFIG={json.dumps(json.loads(target.web_config), separators=(',', ':'))}")
    if target.vapid_key:
        values.append(f"CACHEBASH_VAPID_KEY={target.vapid_key}")
    if any("," in v for v in values):  # gcloud's alternate delimiter syntax, since the JSON has commas
        return "^|^" + "|".join(values)
    return ",".join(values)


def _function(name: str, target: Target, *trigger: str) -> list[str]:
    return [
        "gcloud", "functions", "deploy", name, "--gen2", f"--runtime={RUNTIME}", f"--region={target.region}",
        f"--project={target.project}", f"--source={target.source}", f"--entry-point={name}",
        f"--set-env-vars={_env(target)}", "--memory=512Mi", *trigger,
    ]


def topics() -> list[str]:
    return sorted({topic_id(t) for consumed in PUBSUB_FUNCTIONS.values() for t in consumed})


def plan(target: Target) -> list[list[str]]:
    commands: list[list[str]] = [
        ["firebase", "deploy", "--only", "firestore:rules,firestore:indexes", f"--project={target.project}"],
        *(["gcloud", "pubsub", "topics", "create", topic, f"--project={target.project}"] for topic in topics()),
    ]
    for name in HTTP_FUNCTIONS:
        commands.append(_function(name, target, "--trigger-http", "--allow-unauthenticated",
                                  *(["--concurrency=80", "--cpu=1"] if name == "mcp" else [])))
    for name, consumed in PUBSUB_FUNCTIONS.items():
        (topic,) = consumed  # a function has one trigger: the catalogue gives each Pub/Sub function one topic
        commands.append(_function(name, target, f"--trigger-topic={topic_id(topic)}", "--retry"))
    for name, trigger in FIRESTORE_FUNCTIONS.items():
        commands.append(_function(
            name, target, f"--trigger-event-filters=type={trigger.event_type}",
            "--trigger-event-filters=database=(default)",
            f"--trigger-event-filters-path-pattern=document={trigger.pattern}",
            f"--trigger-location={target.region}",
            "--retry",
        ))
    commands.append([
        "gcloud", "scheduler", "jobs", "create", "pubsub", "cachebash-sweeper", "--schedule=* * * * *",
        f"--topic={topic_id(SWEEP_TOPIC)}", f"--message-body={scheduler_body()}",
        f"--location={target.region}", f"--project={target.project}",
    ])
    return commands


def scheduler_body() -> str:
    """What Cloud Scheduler publishes each minute: a `SweepDue` event, as `PubSubBus` encodes one."""
    return encode(SweepDue("-")).decode()


def stage(into: Path) -> Path:
    shutil.copy(REPO / "functions" / "main.py", into / "main.py")
    shutil.copy(REPO / "functions" / "requirements.txt", into / "requirements.txt")
    shutil.copytree(REPO / "shared" / "cachebash", into / "cachebash",
                    ignore=shutil.ignore_patterns("__pycache__", "bench", "cloud_local"))
    return into


def deploy(project: str, region: str, *, dry_run: bool, run: bool = True, web_config: str | None = None,
           vapid_key: str | None = None) -> Sequence[list[str]]:
    with tempfile.TemporaryDirectory(prefix="cachebash-deploy-") as tmp:
        source = str(stage(Path(tmp))) if not dry_run else "<staged source>"
        commands = plan(Target(project, region, source, web_config, vapid_key))
        for command in commands:
            print(shlex.join(command), flush=True)
            if run and not dry_run:
                subprocess.run(command, check=True, cwd=REPO)
    return commands
