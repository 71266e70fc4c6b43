"""Imports point one way: domain <- ports <- services <- adapters / interface <- bootstrap, CLI.
The interface may also read `config` (the settings, a leaf over domain) to build its app."""

from __future__ import annotations

import ast
from pathlib import Path

import cachebash

PACKAGE = Path(cachebash.__file__).parent

# What each layer may import from inside the package.
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain"},
    "ports": {"domain", "ports"},
    "services": {"domain", "ports", "services"},
    "adapters": {"domain", "ports", "adapters"},
    "interface": {"domain", "ports", "services", "interface", "config", "__init__"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_imports_point_downward() -> None:
    offences = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0]
        if layer not in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cachebash"):
                target = layer_of(node.module)
                if target not in ALLOWED[layer]:
                    offences.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert offences == []
