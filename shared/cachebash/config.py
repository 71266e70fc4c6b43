"""Settings from the environment, read once at start-up (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cachebash.domain.retry import RetryPolicy


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".cachebash")
    store: str = "sqlite"
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sweep_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            host=env.get("CACHEBASH_HOST", cls.host),
            port=int(env.get("CACHEBASH_PORT", cls.port)),
            data_dir=Path(env.get("CACHEBASH_DATA_DIR", str(cls.data_dir))),
            store=env.get("CACHEBASH_STORE", cls.store),
            policy=retry_policy_from_env(),
            sweep_seconds=float(env.get("CACHEBASH_SWEEP_SECONDS", cls.sweep_seconds)),
        )

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "cachebash.db"


def retry_policy_from_env() -> RetryPolicy:
    env, default = os.environ, RetryPolicy()
    return RetryPolicy(
        lease_seconds=int(env.get("CACHEBASH_LEASE_SECONDS", default.lease_seconds)),
        max_lease_seconds=int(env.get("CACHEBASH_MAX_LEASE_SECONDS", default.max_lease_seconds)),
        max_attempts=int(env.get("CACHEBASH_MAX_ATTEMPTS", default.max_attempts)),
        backoff_base_seconds=float(env.get("CACHEBASH_RETRY_BACKOFF_SECONDS", default.backoff_base_seconds)),
        backoff_cap_seconds=float(env.get("CACHEBASH_RETRY_BACKOFF_CAP_SECONDS", default.backoff_cap_seconds)),
    )
