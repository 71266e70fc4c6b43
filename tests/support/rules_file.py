"""Reading firestore.rules without an emulator: which document paths its `match` blocks name.

Enough of a parser for this file's shape (nested `match PATH { ... }` blocks, functions with
braces, `//` comments); the emulator-backed tests in tests/rules check what the rules allow.
"""

from __future__ import annotations

import re
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "firestore.rules"
_DOCUMENTS = "/databases/{database}/documents"
_TOKENS = re.compile(r"match\s+(\S+)\s*\{|\{|\}")


def match_paths(text: str | None = None) -> list[str]:
    """Every `match` block's full path below the documents root, e.g.
    `/tenants/{tenantId}/sprints/{sprintId}/stories/{storyId}`."""
    source = re.sub(r"//[^\n]*", "", RULES.read_text() if text is None else text)
    stack: list[str | None] = []
    found: list[str] = []
    for token in _TOKENS.finditer(source):
        if token.group(0) == "}":
            stack.pop()
            continue
        prefix = next((p for p in reversed(stack) if p is not None), "")
        if token.group(1) is None:
            stack.append(None)
            continue
        path = prefix + token.group(1)
        stack.append(path)
        found.append(path)
    if stack:
        raise ValueError("unbalanced braces in firestore.rules")
    return [p.removeprefix(_DOCUMENTS) for p in found if p.startswith(_DOCUMENTS) and p != _DOCUMENTS]


def rule_for_collection(collection: str, paths: list[str] | None = None) -> str | None:
    """The `match` path naming the documents of `collection` (e.g. `tenants/t1/tasks`),
    ignoring the deny-all `{document=**}` catch-all; None when no block names them."""
    wanted = collection.strip("/").split("/")
    for path in match_paths() if paths is None else paths:
        segments = path.strip("/").split("/")
        if "=**}" in path or len(segments) != len(wanted) + 1 or not _is_wildcard(segments[-1]):
            continue
        # Collection ids (even positions) must be spelled out; document ids may be wildcards.
        if all(rule == actual or (i % 2 == 1 and _is_wildcard(rule))
               for i, (rule, actual) in enumerate(zip(segments, wanted, strict=False))):
            return path
    return None


def _is_wildcard(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def collection_ids(paths: list[str] | None = None) -> set[str]:
    """The collection ids the rules name anywhere (`tasks`, `stories`, `keys`...)."""
    return {seg for path in (match_paths() if paths is None else paths)
            for i, seg in enumerate(path.strip("/").split("/")) if i % 2 == 0 and not _is_wildcard(seg)}
