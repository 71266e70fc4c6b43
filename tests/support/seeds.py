"""The seeds' two-wave sprint example (multi-agent-workflows.md), shared by the sprint tests."""

from __future__ import annotations

from typing import Any

SEED_STORIES: list[dict[str, Any]] = [
    {"id": "story-1", "title": "Add database schema", "wave": 1},
    {"id": "story-2", "title": "Add API endpoints", "wave": 1},
    {"id": "story-3", "title": "Add tests", "wave": 1},
    {"id": "story-4", "title": "Add UI", "wave": 2, "dependencies": ["story-2"]},
    {"id": "story-5", "title": "Add error handling", "wave": 2},
    {"id": "story-6", "title": "Add docs", "wave": 2},
]

SEED_SPRINT: dict[str, Any] = {
    "projectName": "Add user management",
    "branch": "feature/user-management",
    "stories": SEED_STORIES,
}
