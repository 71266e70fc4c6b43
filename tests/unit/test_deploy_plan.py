"""The deploy plan covers every function `functions/main.py` defines, with its trigger."""

from __future__ import annotations

import ast
from pathlib import Path

from cachebash import deploy

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"


def defined_functions() -> set[str]:
    tree = ast.parse(MAIN.read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.decorator_list}


def test_plan_deploys_every_function_in_main() -> None:
    commands = deploy.plan(deploy.Target("demo-project", "us-central1"))
    deployed = {c[3] for c in commands if c[:3] == ["gcloud", "functions", "deploy"]}
    assert deployed == defined_functions()


def test_every_triggered_topic_is_created_and_rules_and_indexes_deployed() -> None:
    commands = deploy.plan(deploy.Target("p", "europe-west1"))
    created = {c[4] for c in commands if c[:4] == ["gcloud", "pubsub", "topics", "create"]}
    triggers = {arg.split("=", 1)[1] for c in commands for arg in c if arg.startswith("--trigger-topic=")}
    assert triggers <= created
    assert any(c[:2] == ["firebase", "deploy"] and "firestore:rules,firestore:indexes" in c for c in commands)
    assert any(c[:3] == ["gcloud", "scheduler", "jobs"] for c in commands)
    assert all("--region=europe-west1" in c for c in commands if c[:3] == ["gcloud", "functions", "deploy"])


def test_staged_source_holds_main_requirements_and_package(tmp_path: Path) -> None:
    staged = deploy.stage(tmp_path)
    assert (staged / "main.py").read_text() == MAIN.read_text()
    assert "functions-framework" in (staged / "requirements.txt").read_text()
    assert (staged / "cachebash" / "services" / "tasks.py").is_file()
    assert not (staged / "cachebash" / "bench").exists()


def test_the_functions_main_defines_are_the_deploy_plans() -> None:
    tree = ast.parse(MAIN.read_text())
    targets = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert targets == set(deploy.functions())
    deployed = {c[3] for c in deploy.plan(deploy.Target("p", "r")) if c[:3] == ["gcloud", "functions", "deploy"]}
    assert deployed == set(deploy.functions())


def test_firestore_functions_fire_on_their_own_event_and_pattern_only() -> None:
    """`answered` on the creation of an answer, not on every write of a task or message (issue #16)."""
    commands = {c[3]: c for c in deploy.plan(deploy.Target("p", "r")) if c[:3] == ["gcloud", "functions", "deploy"]}
    filters = {name: [a for a in command if a.startswith("--trigger-event-filters")]
               for name, command in commands.items() if name in deploy.FIRESTORE_FUNCTIONS}
    assert filters == {"answered": [
        "--trigger-event-filters=type=google.cloud.firestore.document.v1.created",
        "--trigger-event-filters=database=(default)",
        "--trigger-event-filters-path-pattern=document=tenants/{tenant}/answers/{question}",
    ]}
    assert "--trigger-topic=cachebash-sprint-story_changed" in commands["sprint_waves"]
    assert not set(deploy.RETIRED_FUNCTIONS) & set(commands)
