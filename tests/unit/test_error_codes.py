"""Every error code the server can answer with is a `Code`, and the README's error table lists
exactly those: a code raised as a bare string, or one the table lacks (or keeps after it is
gone), fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cachebash.domain.errors import Code

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SOURCES = sorted((ROOT / "shared" / "cachebash").rglob("*.py"))


def readme_codes() -> list[str]:
    text = README.read_text()
    table = text[text.index("| Code | Meaning |"):].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", table, re.M)]


def literal_codes(path: Path) -> list[str]:
    """Where a code is written as a string literal: `code="X"`, `code = "X"`, `{"code": "X"}`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "code" and isinstance(node.value, ast.Constant):
            found.append(f"{path.name}:{node.value.lineno} code={node.value.value!r}")
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                found.append(f"{path.name}:{node.lineno} code = {node.value.value!r}")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant):
                    found.append(f"{path.name}:{node.lineno} {{'code': {value.value!r}}}")
    return found


def test_codes_are_raised_only_through_the_constants() -> None:
    assert [hit for path in SOURCES for hit in literal_codes(path)] == []


def test_the_readme_lists_every_code_and_only_those() -> None:
    listed = readme_codes()
    assert len(listed) == len(set(listed)), "a code is listed twice"
    assert sorted(set(Code) - set(listed)) == [], "codes missing from the README's error table"
    assert sorted(set(listed) - set(Code)) == [], "codes in the README's error table that the server never answers"


def test_every_constant_is_used() -> None:
    """A constant nobody raises would be listed in the README for nothing."""
    text = "\n".join(p.read_text() for p in SOURCES if p.name != "errors.py")
    errors = (ROOT / "shared" / "cachebash" / "domain" / "errors.py").read_text()
    unused = [c for c in Code if f"Code.{c.name}" not in text and f"Code.{c.name}" not in errors]
    assert unused == []
