"""The quota cannot be gone around: every function of the services that creates a task document
also admits it (services/quota), and every one that finishes tasks takes them off the open count.
A structural check, so a new path that creates or finishes tasks cannot forget the rule."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "shared" / "cachebash" / "services"


def _top_functions() -> list[tuple[str, str, ast.FunctionDef]]:
    found = []
    for path in sorted(SERVICES.glob("*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                found.append((path.name, ast.get_source_segment(source, node) or "", node))
    return found


def _is_task_path(expr: str) -> bool:
    return "task_path(" in expr or "'tasks'" in expr


def _creates_a_task(node: ast.FunctionDef, source: str) -> bool:
    """A `.create(path, ...)` whose path is a task's, written out or through a local name."""
    paths = {target.id: ast.unparse(assign.value) for assign in ast.walk(node) if isinstance(assign, ast.Assign)
             for target in assign.targets if isinstance(target, ast.Name)}
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "create" \
                and call.args:
            first = call.args[0]
            target = paths.get(first.id, "") if isinstance(first, ast.Name) else ast.unparse(first)
            if _is_task_path(target):
                return True
    return False


#: Emit TaskFinished for a finish their callers (complete_task, expire_lease) take off the count.
_HELPERS = {("claims.py", "_announce")}


def test_every_function_that_creates_a_task_admits_it() -> None:
    creating = [(module, node.name) for module, source, node in _top_functions() if _creates_a_task(node, source)]
    assert {("tasks.py", "create_task"), ("sprint_flow.py", "write_release"), ("owner_tasks.py", "retry")} \
        <= set(creating)
    missing = [f"{module}:{node.name}" for module, source, node in _top_functions()
               if _creates_a_task(node, source) and "quota.admit" not in source]
    assert missing == [], "these create task documents without services.quota.admit/admit_some"


def test_every_function_that_finishes_a_task_takes_it_off_the_open_count() -> None:
    finishing = [(module, source, node) for module, source, node in _top_functions()
                 if "TaskFinished(" in source and module not in ("events.py", "sprint_flow.py")]
    assert len(finishing) >= 4
    missing = [f"{module}:{node.name}" for module, source, node in finishing
               if "quota.closing" not in source and (module, node.name) not in _HELPERS]
    assert missing == [], "these emit TaskFinished without services.quota.closing"
