"""Settings from the environment, read once at start-up (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".cachebash")
    store: str = "sqlite"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            host=env.get("CACHEBASH_HOST", cls.host),
            port=int(env.get("CACHEBASH_PORT", cls.port)),
            data_dir=Path(env.get("CACHEBASH_DATA_DIR", str(cls.data_dir))),
            store=env.get("CACHEBASH_STORE", cls.store),
        )

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "cachebash.db"
