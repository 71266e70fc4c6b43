"""Plans: what a tenant may do, as one table of named presets plus the tenant's own overrides.

A plan is data, so every limit is read from one place: the quota (tasks a month), the tier
limits (open tasks, undelivered messages per inbox, message and instruction size) and the rate
limits (calls a minute per key with a burst, a ceiling for the whole tenant, waiting calls per
key). `None` means unlimited. A self-hosted server has no tier, so its default (`self-hosted`)
has no monthly quota and generous limits; the cloud's default is `free`, as the seeds say
(500 tasks a month). A tenant's stored plan names a preset and may override any field
(`cachebash plan set`, the owner API).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from cachebash.domain.errors import InvalidInput


@dataclass(frozen=True)
class Plan:
    name: str
    #: Tasks created per UTC calendar month (create_task, sprint stories as they unlock; not
    #: questions to the human, not retries). None: no quota.
    monthly_tasks: int | None
    #: Tasks not yet finished (queued or active) in the tenant at once.
    max_open_tasks: int | None
    #: Messages waiting undelivered in one inbox (a program's or the human's).
    max_inbox_undelivered: int | None
    #: A message's text, in UTF-8 bytes.
    max_message_bytes: int | None
    #: A task's instructions, in UTF-8 bytes.
    max_instruction_bytes: int | None
    #: Per key: calls a minute, sustained (a token bucket refilled at this rate) ...
    calls_per_minute: int | None
    #: ... and how many may come at once after a quiet spell (the bucket's size).
    burst: int | None
    #: All keys of the tenant together: calls a minute.
    tenant_calls_per_minute: int | None
    #: Calls of one key waiting (`wait_seconds`) at the same time.
    max_waiting_per_key: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Plan) if f.name != "name")

PRESETS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan("free", monthly_tasks=500, max_open_tasks=500, max_inbox_undelivered=1_000,
             max_message_bytes=16 * 1024, max_instruction_bytes=16 * 1024, calls_per_minute=120, burst=60,
             tenant_calls_per_minute=1_200, max_waiting_per_key=4),
        Plan("pro", monthly_tasks=20_000, max_open_tasks=5_000, max_inbox_undelivered=10_000,
             max_message_bytes=20_000 * 4, max_instruction_bytes=20_000 * 4, calls_per_minute=600, burst=300,
             tenant_calls_per_minute=12_000, max_waiting_per_key=16),
        Plan("self-hosted", monthly_tasks=None, max_open_tasks=100_000, max_inbox_undelivered=10_000,
             max_message_bytes=20_000 * 4, max_instruction_bytes=20_000 * 4, calls_per_minute=60_000,
             burst=6_000, tenant_calls_per_minute=600_000, max_waiting_per_key=64),
        Plan("unlimited", monthly_tasks=None, max_open_tasks=None, max_inbox_undelivered=None,
             max_message_bytes=None, max_instruction_bytes=None, calls_per_minute=None, burst=None,
             tenant_calls_per_minute=None, max_waiting_per_key=None),
    )
}
EMBEDDED_DEFAULT = "self-hosted"
CLOUD_DEFAULT = "free"


def preset(name: str) -> Plan:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(f"plan: '{name}' is not a plan; use one of {', '.join(PRESETS)}", field="plan",
                           allowed=list(PRESETS)) from None


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, int | None]:
    """Overrides as a plan document holds them: known fields only, each a whole number ≥ 0 or None."""
    checked: dict[str, int | None] = {}
    for name, value in overrides.items():
        if name not in LIMIT_FIELDS:
            raise InvalidInput(f"{name}: not a plan limit; the limits are {', '.join(LIMIT_FIELDS)}", field=name,
                               allowed=list(LIMIT_FIELDS))
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidInput(f"{name}: must be a whole number of at least 0, or null for unlimited, "
                               f"not {value!r}", field=name)
        checked[name] = value
    return checked


def resolve(stored: Mapping[str, Any] | None, default: str) -> Plan:
    """The plan a tenant's stored plan document (`{"name": ..., "overrides": {...}}`) means; a
    tenant with none has the runtime's default. A stored preset name no longer known falls back
    to the default rather than failing every call of the tenant."""
    if not stored:
        return preset(default)
    base = PRESETS.get(str(stored.get("name")), PRESETS[default])
    overrides = {k: v for k, v in dict(stored.get("overrides") or {}).items() if k in LIMIT_FIELDS}
    return replace(base, **overrides)
