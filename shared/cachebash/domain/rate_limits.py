"""Rate limits as token buckets: which buckets a call spends from, and the arithmetic of one.

A bucket holds at most `capacity` tokens and refills at `per_minute / 60` a second; a call
spends one token from each of its buckets, and is refused (RATE_LIMITED) when one is empty.
An agent's call spends from its key's bucket (the plan's `calls_per_minute`, `burst`) and from
its tenant's (`tenant_calls_per_minute`, holding `TENANT_BUCKET_SECONDS` of it, so a tenant may
also burst a little); a call of the owner API spends from the tenant's `owner` bucket (the
per-key figures) and not from the tenant's ceiling, so a runaway fleet can never lock the
owner out of the console that stops it.

A bucket document (`tenants/{t}/rates/{bucketId}`, `BucketDoc`) stores the level and the time
it was measured; the level now is computed from them, so nothing is written while time passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

from cachebash.domain.errors import RateLimited
from cachebash.domain.plans import Plan

#: The tenant's bucket holds this many seconds of its ceiling (1200/min: 200 calls at once).
TENANT_BUCKET_SECONDS = 10
#: A process leases at most this share of a bucket at a time (services.rate_limits).
SLICE_SHARE = 8


@dataclass(frozen=True)
class Bucket:
    id: str  # the document id under tenants/{t}/rates
    limit: str  # what RATE_LIMITED names: key, tenant or owner
    per_minute: int
    capacity: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60

    @property
    def max_slice(self) -> int:
        return max(1, self.capacity // SLICE_SHARE)

    def refusal(self, retry_after: int) -> RateLimited:
        scope = {"key": "this API key", "tenant": "all keys of this tenant together",
                 "owner": "the owner API of this tenant"}[self.limit]
        return RateLimited(f"rate limit: {scope} may make {self.per_minute} calls a minute (bursts of "
                           f"{self.capacity}); nothing was done. Call again in {retry_after} s, and space "
                           "calls out (use wait_seconds instead of polling)", retry_after_seconds=retry_after,
                           limit=self.limit, perMinute=self.per_minute, burst=self.capacity)


def _bucket(bucket_id: str, limit: str, per_minute: int | None, capacity: int | None) -> list[Bucket]:
    if per_minute is None:
        return []
    size = per_minute if capacity is None else capacity
    return [Bucket(bucket_id, limit, per_minute, max(1, size) if per_minute > 0 else 0)]


def agent_buckets(plan: Plan, key_id: str) -> list[Bucket]:
    """The buckets an agent's call spends from: its key's, then its tenant's (unlimited ones left out)."""
    tenant = plan.tenant_calls_per_minute
    return [*_bucket(f"key-{key_id}", "key", plan.calls_per_minute, plan.burst),
            *_bucket("tenant", "tenant", tenant,
                     None if tenant is None else math.ceil(tenant * TENANT_BUCKET_SECONDS / 60))]


def owner_buckets(plan: Plan) -> list[Bucket]:
    return _bucket("owner", "owner", plan.calls_per_minute, plan.burst)


class BucketDoc(TypedDict):
    level: float  # tokens in the bucket at `at`
    at: float  # seconds since the epoch, by the clock of the process that wrote it
    perMinute: int
    capacity: int


def level_at(doc: BucketDoc | None, bucket: Bucket, now: float) -> float:
    """The tokens in the bucket at `now`: a missing bucket is full. A writer whose clock ran ahead
    (`at` after `now`) gains nothing: time never runs backwards into tokens."""
    if doc is None:
        return float(bucket.capacity)
    return min(float(bucket.capacity), doc["level"] + max(0.0, now - doc["at"]) * bucket.per_second)


def bucket_doc(bucket: Bucket, level: float, now: float) -> BucketDoc:
    return {"level": level, "at": now, "perMinute": bucket.per_minute, "capacity": bucket.capacity}


def refill_seconds(level: float, bucket: Bucket, tokens: int = 1) -> float:
    """Seconds until the bucket holds `tokens` (a minute for a bucket that never refills)."""
    return max(0.0, (tokens - level) / bucket.per_second) if bucket.per_minute > 0 else 60.0


def whole_seconds(seconds: float) -> int:
    """As HTTP's Retry-After takes them: rounded up, at least 1."""
    return max(1, math.ceil(seconds))


def waiting_refusal(cap: int, retry: int) -> RateLimited:
    return RateLimited(f"rate limit: this API key already has {cap} calls waiting (wait_seconds), its plan's "
                       f"most; nothing was done. Let one of them end, or call without wait_seconds; retry in "
                       f"{retry} s", retry_after_seconds=retry, limit="waiting", maxWaiting=cap)
