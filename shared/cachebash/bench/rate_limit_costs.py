"""What rate limits cost the store: transactions per admitted call for one key's traffic, on
SQLite with a manual clock (so no time is spent waiting), counted by `services.rate_limits.stats`
(leases and renewals; on Firestore each transaction is 2 RPCs). The README's "What a check costs"
table is this module's output:

    python -m cachebash.bench.rate_limit_costs
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import RateLimited
from cachebash.domain.programs import CreateKey
from cachebash.ports.clock import ManualClock
from cachebash.services import keys, rate_limits


@dataclass(frozen=True)
class Traffic:
    label: str
    plan: str
    calls_per_second: float
    instances: int = 1

    @property
    def seconds(self) -> float:
        return 600.0 if self.calls_per_second < 1 else 120.0


TRAFFIC = (
    Traffic("free, 1 call every 25 s", "free", 1 / 25), Traffic("free, 1 call every 5 s", "free", 0.2),
    Traffic("free, 1 a second", "free", 1), Traffic("free, 2 a second", "free", 2),
    Traffic("free, 20 a second", "free", 20), Traffic("free, 20 a second over 2 instances", "free", 20, 2),
    Traffic("self-hosted, 1 call every 25 s", "self-hosted", 1 / 25),
    Traffic("self-hosted, 10 a second", "self-hosted", 10), Traffic("self-hosted, 500 a second", "self-hosted", 500),
)


def measure(traffic: Traffic) -> dict[str, float]:
    """Transactions per admitted call and per second, and calls admitted per second, for calls
    spread evenly over the instances (runtimes on one SQLite file)."""
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as folder:
        stores = [SqliteStore(Path(folder) / "store.db") for _ in range(traffic.instances)]
        runtimes = [embedded_runtime(store, clock, strict=True) for store in stores]
        try:
            for rt in runtimes:
                rt.default_plan = traffic.plan
            issued = keys.issue_key(runtimes[0], "default", CreateKey(programId="k", label=None, admin=False), "bench")
            caller = keys.authenticate(runtimes[0], issued["apiKey"])
            calls, admitted = round(traffic.seconds * traffic.calls_per_second), 0
            for i in range(calls):
                try:
                    rate_limits.admit(runtimes[i % traffic.instances], caller)
                    admitted += 1
                except RateLimited:
                    pass
                clock.advance(1 / traffic.calls_per_second)
            counted = [rate_limits.stats(rt) for rt in runtimes]
        finally:
            for store in stores:
                store.close()
    transactions = sum(c["leases"] + c["renewals"] for c in counted)
    return {"perCall": transactions / admitted, "perSecond": transactions / traffic.seconds,
            "admittedPerSecond": admitted / traffic.seconds}


def main() -> None:
    print("| Traffic of one key | Transactions per call | Per second | Admitted per second |")
    print("|---|---|---|---|")
    for traffic in TRAFFIC:
        m = measure(traffic)
        print(f"| {traffic.label} | {m['perCall']:.2g} | {m['perSecond']:.2g} | {m['admittedPerSecond']:.3g} |")


if __name__ == "__main__":
    main()
