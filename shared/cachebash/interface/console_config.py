"""What the console page needs to know about its deployment, apart from the console's routes so
that a Cloud Function can say it without importing them (they are built on first use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConsoleConfig:
    """What the page needs to know about its deployment (served as /console/config.json)."""

    firebase: dict[str, Any] | None = None
    auth_emulator: str | None = None
    vapid_key: str | None = None
