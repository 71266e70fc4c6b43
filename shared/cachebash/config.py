"""Settings from the environment, read once at start-up (never at import)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cachebash.domain.plans import PRESETS
from cachebash.domain.programs import AWAY_SECONDS
from cachebash.domain.retry import RetryPolicy

STORES = ("sqlite", "firestore")
LOG_LEVELS = ("activity", "warning", "debug")
BUSES = ("inprocess", "pubsub")
DURABILITIES = ("normal", "full")
NOTIFIERS = ("log", "fcm")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".cachebash")
    store: str = "sqlite"
    #: SQLite: what a commit waits for before the call is answered (CACHEBASH_DURABILITY):
    #: "normal", the WAL write (survives a process crash); "full", an fsync as well (survives a power cut).
    durability: str = "normal"
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sweep_seconds: float = 5.0
    #: A program none of whose sessions was seen for this long is unavailable (fallback, list_programs).
    away_seconds: float = AWAY_SECONDS
    #: Firestore project; None lets the client library find it (ADC, metadata server).
    firestore_project: str | None = None
    #: Firestore database id; None is the project's "(default)" database.
    firestore_database: str | None = None
    #: Append the shape of every query to this file (JSON lines), to check indexes against real traffic.
    query_log: Path | None = None
    #: The Firebase web app config the console signs in with (cloud): JSON from CACHEBASH_FIREBASE_CONFIG.
    firebase_web: dict[str, str] | None = None
    #: The web-push VAPID key of the Firebase project; without it the console offers no push.
    vapid_key: str | None = None
    #: The Firebase Auth emulator the console's page connects to (tests, local runs).
    auth_emulator: str | None = None
    #: Where events go: "inprocess" (handlers run in this process) or "pubsub"; None: the
    #: runtime's own default (embedded in-process, Cloud Functions Pub/Sub).
    bus: str | None = None
    #: Where pushes go: "log" or "fcm"; None: the runtime's default (embedded log, cloud FCM).
    notifier: str | None = None
    #: Serve simple tool calls without the MCP SDK's stack (CACHEBASH_MCP_FAST_PATH=0 turns it off).
    fast_path: bool = True
    #: The benchmark's own routes (memory, reset); only `cachebash bench` turns them on.
    bench_routes: bool = False
    #: Host headers allowed on a non-loopback bind (CACHEBASH_ALLOWED_HOSTS, comma-separated).
    allowed_hosts: tuple[str, ...] = ()
    #: `cachebash serve`: an open connection with no request in progress is closed after this long
    #: (keep-alive, and a new connection that sends nothing).
    http_idle_seconds: float = 15.0
    #: `cachebash serve`: a request's line and headers must arrive within this long of its first byte.
    http_head_seconds: float = 10.0
    #: `cachebash serve`: a request's body must arrive within this long of its headers, and a client
    #: that stops reading an answer is cut off after this long.
    http_body_seconds: float = 30.0
    #: `cachebash serve`: open connections beyond this many are answered 503 (Retry-After) and closed.
    http_max_connections: int = 512
    #: What the server logs: "activity" (one line per state change that matters, and warnings),
    #: "warning" (problems only) or "debug" (everything, the SDK's too).
    log_level: str = "activity"
    #: JSON lines for Cloud Logging (CACHEBASH_LOG_FORMAT=json; the default on Cloud Run and Functions,
    #: which set K_SERVICE), or human lines ("text").
    log_json: bool = False
    #: `cachebash serve`: a Prometheus `/metrics` route (CACHEBASH_METRICS=1); off by default.
    metrics: bool = False
    #: The plan of a tenant that has none stored (CACHEBASH_PLAN, a domain.plans preset); None: the
    #: runtime's own default (embedded `self-hosted`, Cloud Functions `free`).
    default_plan: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        query_log = env.get("CACHEBASH_QUERY_LOG")
        return cls(
            host=env.get("CACHEBASH_HOST", cls.host),
            port=_int("CACHEBASH_PORT", cls.port, 1, 65535),
            data_dir=Path(env.get("CACHEBASH_DATA_DIR", str(cls.data_dir))),
            store=env.get("CACHEBASH_STORE", cls.store),
            durability=_choice("CACHEBASH_DURABILITY", DURABILITIES) or cls.durability,
            policy=retry_policy_from_env(),
            sweep_seconds=_float("CACHEBASH_SWEEP_SECONDS", cls.sweep_seconds),
            away_seconds=_float("CACHEBASH_AWAY_SECONDS", cls.away_seconds),
            firestore_project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or None,
            firestore_database=env.get("CACHEBASH_FIRESTORE_DATABASE") or None,
            query_log=Path(query_log) if query_log else None,
            firebase_web=_json_setting("CACHEBASH_FIREBASE_CONFIG"),
            vapid_key=env.get("CACHEBASH_VAPID_KEY") or None,
            auth_emulator=f"http://{env['FIREBASE_AUTH_EMULATOR_HOST']}" if env.get("FIREBASE_AUTH_EMULATOR_HOST")
            else None,
            bus=_choice("CACHEBASH_BUS", BUSES),
            notifier=_choice("CACHEBASH_NOTIFIER", NOTIFIERS),
            fast_path=env.get("CACHEBASH_MCP_FAST_PATH", "1") != "0",
            bench_routes=env.get("CACHEBASH_BENCH_ROUTES", "") == "1",
            allowed_hosts=tuple(h.strip() for h in env.get("CACHEBASH_ALLOWED_HOSTS", "").split(",") if h.strip()),
            http_idle_seconds=_float("CACHEBASH_HTTP_IDLE_SECONDS", cls.http_idle_seconds),
            http_head_seconds=_float("CACHEBASH_HTTP_HEAD_SECONDS", cls.http_head_seconds),
            http_body_seconds=_float("CACHEBASH_HTTP_BODY_SECONDS", cls.http_body_seconds),
            http_max_connections=_int("CACHEBASH_HTTP_MAX_CONNECTIONS", cls.http_max_connections, 1),
            log_level=_choice("CACHEBASH_LOG", LOG_LEVELS) or cls.log_level,
            log_json=(_choice("CACHEBASH_LOG_FORMAT", ("text", "json")) or
                      ("json" if env.get("K_SERVICE") else "text")) == "json",
            metrics=env.get("CACHEBASH_METRICS", "") == "1",
            default_plan=_choice("CACHEBASH_PLAN", tuple(PRESETS)),
        )

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "cachebash.db"

    def describe_store(self) -> str:
        """Where the data lives, for the start-up line a person reads."""
        if self.store != "firestore":
            return f"data: {self.data_dir}"
        emulator = os.environ.get("FIRESTORE_EMULATOR_HOST")
        where = f"emulator {emulator}" if emulator else "Google Cloud"
        return f"Firestore project {self.firestore_project or '(from credentials)'} on {where}"


class SettingsError(ValueError):
    """A setting a person can fix: the message names the variable, its value and the rule."""


def check_port(port: int, name: str = "CACHEBASH_PORT") -> int:
    if not 1 <= port <= 65535:
        raise SettingsError(f"{name}={port} is not a port: use a number from 1 to 65535")
    return port


def _int(name: str, default: int, low: int | None = None, high: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SettingsError(f"{name}={value} is out of range: use a number {span}")
    return value


def _float(name: str, default: float, zero: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        raise SettingsError(f"{name}={raw} must be a {'' if zero else 'positive '}number of seconds"
                            f"{' (0 or more)' if zero else ''}")
    return value


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = os.environ.get(name) or None
    if value is not None and value not in allowed:
        raise SettingsError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _json_setting(name: str) -> dict[str, str] | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a JSON object (the Firebase web app config)") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must be a JSON object (the Firebase web app config)")
    return {str(k): str(v) for k, v in value.items()}


def retry_policy_from_env() -> RetryPolicy:
    default = RetryPolicy()
    return RetryPolicy(
        lease_seconds=_int("CACHEBASH_LEASE_SECONDS", default.lease_seconds, 1),
        max_lease_seconds=_int("CACHEBASH_MAX_LEASE_SECONDS", default.max_lease_seconds, 1),
        max_attempts=_int("CACHEBASH_MAX_ATTEMPTS", default.max_attempts, 1),
        backoff_base_seconds=_float("CACHEBASH_RETRY_BACKOFF_SECONDS", default.backoff_base_seconds, zero=True),
        backoff_cap_seconds=_float("CACHEBASH_RETRY_BACKOFF_CAP_SECONDS", default.backoff_cap_seconds, zero=True),
    )
