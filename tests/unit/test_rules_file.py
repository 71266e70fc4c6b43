"""firestore.rules names every collection the code writes (no emulator needed).

Two nets: this file reads the services' source for the collections they address; the
`_every_collection_is_named_in_the_rules` guard in tests/conftest.py checks, after every
service test on SQLite, each collection that test really wrote. What the rules allow is
tested against Google's emulator in tests/rules.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import cachebash.services
from support.rules_file import collection_ids, match_paths, rule_for_collection

SERVICES = Path(cachebash.services.__file__).parent
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _constant(module: str, node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        value = getattr(importlib.import_module(module), node.id, None)
        return value if isinstance(value, str) else None
    return None


def _fstring_collections(node: ast.JoinedStr) -> set[str]:
    """Collection ids in a path built by an f-string: `f"tenants/{t}/programs/{p}"` or
    `f"{document_path}/stories"` (a placeholder at the start stands for a document path)."""
    template = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if "/" not in template or not (template.startswith(("tenants/", "keys/", "{}/"))):
        return set()
    segments = template.split("/")
    first = 1 if segments[0] == "{}" else 0
    return {s for s in segments[first::2] if _SEGMENT.match(s)}


def collections_in_source() -> dict[str, str]:
    """Collection id -> a module that addresses it."""
    found: dict[str, str] = {}
    for path in sorted(SERVICES.glob("*.py")):
        module = f"cachebash.services.{path.stem}"
        for node in ast.walk(ast.parse(path.read_text())):
            names: set[str] = set()
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tenant_path" and len(node.args) > 1:
                name = _constant(module, node.args[1])
                names = {name} if name else set()
            elif isinstance(node, ast.JoinedStr):
                names = _fstring_collections(node)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Query" and node.args:
                name = _constant(module, node.args[0])
                names = {name} if name and "/" not in name else set()
            for name in names:
                found.setdefault(name, path.name)
    return found


def test_the_scan_finds_the_collections_we_know_about() -> None:
    assert {"tasks", "messages", "multicasts", "programs", "program_state", "keys", "tenants"} <= set(
        collections_in_source())


def test_rules_name_every_collection_the_services_address() -> None:
    named = collection_ids()
    missing = {name: where for name, where in collections_in_source().items() if name not in named}
    assert not missing, f"collections written by the services but not named in firestore.rules: {missing}"


def test_rules_structure() -> None:
    paths = match_paths()
    assert paths[0] == "/{document=**}", "deny-all comes first"
    assert rule_for_collection("keys") == "/keys/{keyHash}"
    assert rule_for_collection("tenants/u1/sprints/s1/stories") is not None
    assert rule_for_collection("tenants/u1/unheard_of") is None
    assert len(paths) == len(set(paths)), "no path is matched twice (rules would OR them)"
