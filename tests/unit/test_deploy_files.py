"""The deployment files at the repo root agree with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cachebash.ports.indexes import INDEXES, firestore_indexes_json

ROOT = Path(__file__).resolve().parents[2]


def test_indexes_file_is_rendered_from_the_declared_indexes() -> None:
    on_disk = (ROOT / "firestore.indexes.json").read_text()
    assert on_disk == firestore_indexes_json(), "regenerate: cachebash indexes > firestore.indexes.json"
    assert len(json.loads(on_disk)["indexes"]) == len(INDEXES)


def test_rules_deny_by_default_and_never_expose_keys() -> None:
    rules = (ROOT / "firestore.rules").read_text()
    assert re.search(r"match /\{document=\*\*\}\s*\{\s*allow read, write: if false;", rules)
    opening = "match /keys/{keyHash} {"
    keys_block = rules[rules.index(opening) + len(opening):].split("}")[0]
    assert keys_block.strip() == "allow read, write: if false;"


def test_firebase_json_points_at_rules_and_indexes() -> None:
    config = json.loads((ROOT / "firebase.json").read_text())
    assert config["firestore"] == {"rules": "firestore.rules", "indexes": "firestore.indexes.json"}
    assert {"firestore", "pubsub", "functions"} <= set(config["emulators"])
