"""Rate limits counted where every instance sees them (the store), at a small fraction of a
transaction per call.

Calls: each process leases a slice of a bucket (domain.rate_limits) from the bucket's document
in one transaction and spends it locally, returning to the store only when the slice is used up
or `LEASE_SECONDS` old. A slice doubles while the process uses it up in time (up to the
bucket's `max_slice`) and halves when it goes stale, so a busy key costs one transaction per
`max_slice` calls, and a process holds about `LEASE_SECONDS` of what it spends. What a stale
slice still holds goes back to the bucket with the process's next lease (capped at the bucket's
capacity), so a slow key is not starved by its own leftovers.

A slice of at most `SLOW_SLICE` tokens lasts `SLOW_LEASE_SECONDS` instead: a slow key (an agent
calling every few seconds, or waiting 25 s at a time in a loop) would otherwise find its slice
stale at every call and pay a transaction per call; holding a few tokens for two minutes lets its
slice grow to 2, 4 and 8 and serve several calls a lease, and costs the bucket nothing worth counting.

A slice in use (one the process's calls share, such as the tenant's) is renewed ahead of time:
the call that finds it will be spent within `RENEW_AHEAD_SECONDS` at its pace leases
more while the other calls go on spending what is left, so they never all stop for one lease (on
Firestore, 22 of 40 worker threads once stood queued behind one). What is left is kept, and the
renewal asks only for what the slice's pace spends in a lease less what it holds, so a process
never holds more than `max_slice` of a bucket.

The bound, over every instance together: every call spends a token the store granted, the store
grants no more than it holds, and a process holds at most `max_slice`, so in any window of T
seconds a bucket admits at most `capacity + rate × T + P × max_slice` calls (P: processes
holding a slice of it as the window starts); an exact bucket admits `capacity + rate × T`. A
refusal is remembered until the bucket will have a token again, so a flood of refused calls
costs the store nothing.

Waiting calls: a call that is about to wait (`wait_seconds`, nothing found at its first look)
takes a slot in `tenants/{t}/rates/waiting-{keyId}` (`{"slots": {slotId: deadline}}`) in a
transaction that refuses past the plan's `max_waiting_per_key`, and gives it back when it
ends, after keeping it `WAIT_SLOT_KEPT_SECONDS` for the key's next wait (`WaitingSlot`); a slot
also lapses `WAIT_GRACE_SECONDS` after its deadline, so a crashed process cannot hold it for ever.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from cachebash.domain import rate_limits as rules
from cachebash.domain.errors import RateLimited
from cachebash.domain.rate_limits import Bucket
from cachebash.ports.store import Transaction
from cachebash.services.plans import plan_of
from cachebash.services.runtime import Caller, Runtime, new_id, tenant_path

log = logging.getLogger(__name__)

#: A leased slice is spent within this long, or dropped.
LEASE_SECONDS = 5.0
#: A slice of at most this many tokens is spent within `SLOW_LEASE_SECONDS` instead.
SLOW_SLICE = 8
SLOW_LEASE_SECONDS = 120.0
#: A slice is renewed while this much of it is left (at its pace), so that the renewal lands before
#: the calls sharing it run out, even on a store slowed to a second a transaction ...
RENEW_AHEAD_SECONDS = LEASE_SECONDS / 4
#: ... once it has held this many tokens (a small slice, such as a key calling now and then, is
#: leased when spent).
RENEW_FROM = 8
#: Slices kept in a process before the idle ones are forgotten.
PRUNE_AT = 10_000
#: A waiting slot outlives its call's deadline by this much before another call may take it.
WAIT_GRACE_SECONDS = 30.0
#: A slot given back is kept this long for the key's next wait in this process (`WaitingSlot`).
WAIT_SLOT_KEPT_SECONDS = 2.0


def rates_path(tenant_id: str, doc_id: str) -> str:
    return tenant_path(tenant_id, "rates", doc_id)


@dataclass
class _Slice:
    """The part of one bucket this process holds."""

    tokens: int = 0
    expires: float = 0.0
    size: int = 2  # what the next lease asks for (a key that calls once mostly calls again)
    refused_until: float = 0.0
    leasing: threading.Lock = field(default_factory=threading.Lock)
    #: When the last lease (or renewal) landed, and how many tokens the slice held then.
    leased_at: float = 0.0
    held: int = 0
    #: The last lease left the bucket empty: calls are being refused, and renewing ahead would
    #: only add transactions (a saturated bucket is leased when spent, about once a second).
    drained: bool = False

    def next_lease(self, bucket: Bucket, now: float) -> tuple[int, int]:
        """What to ask for, and the stale tokens to give back with it."""
        if self.tokens == 0 and now < self.expires:
            self.size = min(bucket.max_slice, self.size * 2)  # used up in time: take more
        elif self.tokens > 0:
            self.size = max(1, self.size // 2)  # went stale: take less
        returned, self.tokens = self.tokens, 0
        return min(self.size, bucket.max_slice), returned

    def _rate(self, now: float) -> float:
        """Tokens spent a second since the slice was leased (over `RENEW_AHEAD_SECONDS` at least,
        so a burst in one instant does not read as a torrent)."""
        return (self.held - self.tokens) / max(now - self.leased_at, RENEW_AHEAD_SECONDS)

    def renewal_due(self, now: float) -> bool:
        """Whether the call that just spent from this live slice should lease more now: a slice
        in use (it held `RENEW_FROM` tokens or more) that is `running_out`. (Whoever renews
        checks again holding `leasing`.)"""
        if self.held < RENEW_FROM or self.drained or self.leasing.locked():
            return False
        return self.running_out(now)

    def running_out(self, now: float) -> bool:
        """Spent within `RENEW_AHEAD_SECONDS` at this pace, with a quarter of it left at most (a
        slice capped below a lease's worth is renewed per three quarters, not per call). A slice
        that will go stale before it is spent is not renewed: at that pace few calls share it,
        and the next one leases it when it finds it stale, as it would anyway."""
        return self.tokens < min(self._rate(now) * RENEW_AHEAD_SECONDS, self.held / 4)

    def next_renewal(self, bucket: Bucket, now: float) -> int:
        """What a renewal asks for: what the slice's pace spends in a lease, less what it holds."""
        self.size = max(1, min(bucket.max_slice, math.ceil(self._rate(now) * LEASE_SECONDS)))
        return max(1, self.size - self.tokens)

    def leased(self, tokens: int, now: float) -> None:
        lasts = SLOW_LEASE_SECONDS if tokens <= SLOW_SLICE else LEASE_SECONDS
        self.tokens, self.held, self.leased_at, self.expires = tokens, tokens, now, now + lasts


class _Budgets:
    """What one process (one Runtime) holds: slices, its waiting slots, and what it counted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.slices: dict[tuple[str, str], _Slice] = {}
        self.waiting: dict[tuple[str, str], dict[str, float]] = {}
        #: Slots given back by their calls and kept for the key's next wait: id -> (stored deadline, mark).
        self.kept: dict[tuple[str, str], dict[str, tuple[float, int]]] = {}
        self._marks = 0
        self.counts: Counter[str] = Counter()

    def kept_slot(self, mine: tuple[str, str], deadline: float) -> tuple[str, float] | None:
        """Take back a kept slot of the key, the one whose stored deadline is latest (called
        holding the lock)."""
        kept = self.kept.get(mine)
        if not kept:
            return None
        slot = max(kept, key=lambda k: kept[k][0])
        stored, _ = kept.pop(slot)
        if not kept:
            del self.kept[mine]
        return slot, stored

    def keep_slot(self, mine: tuple[str, str], slot: str, stored: float) -> int:
        self._marks += 1
        self.kept.setdefault(mine, {})[slot] = (stored, self._marks)
        return self._marks

    def unkeep_slot(self, mine: tuple[str, str], slot: str, mark: int) -> bool:
        """Forget a kept slot if it is still the one kept under `mark`."""
        kept = self.kept.get(mine, {})
        if slot not in kept or kept[slot][1] != mark:
            return False
        del kept[slot]
        if not kept:
            del self.kept[mine]
        return True

    def slice(self, tenant_id: str, bucket_id: str, now: float) -> _Slice:
        with self.lock:
            found = self.slices.get((tenant_id, bucket_id))
            if found is None:
                if len(self.slices) >= PRUNE_AT:
                    self._prune(now)
                found = self.slices[(tenant_id, bucket_id)] = _Slice()
            return found

    def _prune(self, now: float) -> None:
        """Forget slices that hold nothing any more (spent or stale, no refusal pending), or only
        a slow key's few tokens (leased `LEASE_SECONDS` ago or more: lost, the bucket refills), so
        a long-lived instance serving many keys keeps only the busy ones."""
        idle = [k for k, p in self.slices.items()
                if (p.tokens == 0 or now - p.leased_at >= LEASE_SECONDS)  # (every slice lasts that long at least)
                and p.refused_until <= now and not p.leasing.locked()]
        for key in idle:
            del self.slices[key]

    def try_spend(self, piece: _Slice, bucket: Bucket, now: float) -> bool:
        """Spend a local token if the slice has one; refuse at once while a refusal holds."""
        with self.lock:
            if piece.tokens > 0 and now < piece.expires:
                piece.tokens -= 1
                return True
            if piece.refused_until > now:
                self.counts["refusedLocally"] += 1
                raise bucket.refusal(rules.whole_seconds(piece.refused_until - now))
            return False

    def keep(self, piece: _Slice, bucket: Bucket, lease: tuple[int, float], request: int,
             now: float) -> RateLimited | None:
        """Keep a lease and spend one of it, or refuse. Either way, once the slice is spent, refuse
        without asking the store until the bucket holds what this process would next take (up to
        a second of its rate), so a saturated bucket is leased about once a second per process
        (Firestore sustains about one write a second to a document)."""
        granted, level = lease
        with self.lock:
            piece.refused_until = _refused_until(bucket, level - granted, request, now)
            piece.drained = level - granted < 1
            if granted == 0:
                return bucket.refusal(rules.whole_seconds(piece.refused_until - now))
            piece.leased(granted, now)
            piece.tokens -= 1
            return None

    def renewed(self, piece: _Slice, bucket: Bucket, lease: tuple[int, float], request: int, now: float) -> None:
        """Keep what a renewal granted beside what is left, and once the slice is spent refuse as
        `keep` does."""
        granted, level = lease
        with self.lock:
            piece.refused_until = _refused_until(bucket, level - granted, request, now)
            piece.drained = level - granted < 1
            if granted > 0:
                piece.leased(piece.tokens + granted, now)
            self.counts["renewals"] += 1

    def give_back(self, tenant_id: str, buckets: list[Bucket]) -> None:
        with self.lock:
            for bucket in buckets:
                if (piece := self.slices.get((tenant_id, bucket.id))) is not None:  # pruned: the token is lost
                    piece.tokens += 1


def _refused_until(bucket: Bucket, left: float, request: int, now: float) -> float:
    """A lease that left the bucket empty: once the slice is spent, nothing more until the bucket
    holds what this process would next take (up to a second of its rate); else no refusal."""
    wanted = min(request, max(1, math.floor(bucket.per_second)))
    return now + rules.refill_seconds(left, bucket, wanted) if left < 1 else 0.0


_registry: dict[int, tuple[weakref.ref[Runtime], _Budgets]] = {}
_registry_lock = threading.Lock()


def _budgets(rt: Runtime) -> _Budgets:
    """This runtime's budgets: process-local state kept beside the runtime, never in it, and
    dropped with it (a later runtime at the same address starts afresh)."""
    key = id(rt)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None or entry[0]() is not rt:
            entry = (weakref.ref(rt, lambda _: _registry.pop(key, None)), _Budgets())
            _registry[key] = entry
        return entry[1]


def _now(rt: Runtime) -> float:
    return rt.clock.now().timestamp()


def admit(rt: Runtime, caller: Caller) -> None:
    """Spend one call of the caller's key and tenant, or raise RATE_LIMITED with nothing spent.
    A caller without a key (the owner acting through services) is not an agent's call."""
    if caller.key_id is not None:
        _spend(rt, caller.tenant_id, rules.agent_buckets(plan_of(rt, caller.tenant_id), caller.key_id))


def admit_owner(rt: Runtime, tenant_id: str) -> None:
    """Spend one owner API call of the tenant (its own bucket, outside the fleet's ceiling)."""
    _spend(rt, tenant_id, rules.owner_buckets(plan_of(rt, tenant_id)))


def _spend(rt: Runtime, tenant_id: str, buckets: list[Bucket]) -> None:
    if not buckets:
        return
    budgets, now = _budgets(rt), _now(rt)
    spent: list[Bucket] = []
    short: list[tuple[Bucket, _Slice]] = []
    ahead: list[tuple[Bucket, _Slice]] = []
    try:
        for bucket in buckets:
            piece = budgets.slice(tenant_id, bucket.id, now)
            if budgets.try_spend(piece, bucket, now):
                spent.append(bucket)
                if piece.renewal_due(now):
                    ahead.append((bucket, piece))
            else:
                short.append((bucket, piece))
        if short:
            _lease_all(rt, budgets, tenant_id, short, now, spent)
    except RateLimited:
        budgets.give_back(tenant_id, spent)  # a refused call spends nothing
        raise
    budgets.counts["admitted"] += 1
    for bucket, piece in ahead:
        _renew(rt, budgets, tenant_id, bucket, piece, now)


def _renew(rt: Runtime, budgets: _Budgets, tenant_id: str, bucket: Bucket, piece: _Slice, now: float) -> None:
    """Lease a live slice's next part while other calls still spend the rest. Only one call
    renews a slice at a time (the others spend on); this call is admitted already, so a
    renewal that fails only leaves the slice to run out and be leased the usual way."""
    if not piece.leasing.acquire(blocking=False):
        return
    try:
        with budgets.lock:
            if not piece.running_out(now) or piece.drained:
                return  # renewed meanwhile by another call
            ask = piece.next_renewal(bucket, now)
        path = rates_path(tenant_id, bucket.id)
        try:
            (lease,) = rt.store.run_transaction(lambda tx: _lease(tx, [path], [bucket], [(ask, 0)], now))
        except Exception:
            log.warning("renewing the rate-limit slice %s of tenant %s failed; it will be leased when spent",
                        bucket.id, tenant_id, exc_info=True)
            return
        budgets.renewed(piece, bucket, lease, ask, now)
    finally:
        piece.leasing.release()


def _lease_all(rt: Runtime, budgets: _Budgets, tenant_id: str, short: list[tuple[Bucket, _Slice]], now: float,
               spent: list[Bucket]) -> None:
    """Lease every bucket the call found empty in one transaction (the key's and the tenant's
    together), one lease of a bucket at a time in this process: the others wait for it and
    spend from it. Locks are taken in the buckets' fixed order (key, tenant), so never crossed."""
    with ExitStack() as held:
        for _, piece in short:
            held.enter_context(piece.leasing)
        still: list[tuple[Bucket, _Slice]] = []
        for bucket, piece in short:
            if budgets.try_spend(piece, bucket, now):
                spent.append(bucket)
            else:
                still.append((bucket, piece))
        if not still:
            return
        with budgets.lock:
            asks = [piece.next_lease(bucket, now) for bucket, piece in still]
            budgets.counts["leases"] += 1
        paths = [rates_path(tenant_id, bucket.id) for bucket, _ in still]
        leases = rt.store.run_transaction(lambda tx: _lease(tx, paths, [b for b, _ in still], asks, now))
        refusals: list[RateLimited] = []
        for (bucket, piece), lease, (request, _) in zip(still, leases, asks, strict=True):
            refusal = budgets.keep(piece, bucket, lease, request, now)
            if refusal is None:
                spent.append(bucket)
            else:
                refusals.append(refusal)
        if refusals:
            raise refusals[0]


def _lease(tx: Transaction, paths: list[str], buckets: list[Bucket], asks: list[tuple[int, int]],
           now: float) -> list[tuple[int, float]]:
    """For each bucket: give back what a stale slice held, take up to the asked whole tokens.
    A bucket that grants nothing is not written (unless something was given back)."""
    stored: list[Any] = tx.get_all(paths)
    leases = []
    for path, doc, bucket, (request, returned) in zip(paths, stored, buckets, asks, strict=True):
        level = min(float(bucket.capacity), rules.level_at(doc, bucket, now) + returned)
        granted = min(request, math.floor(level))
        if granted > 0 or returned > 0:
            tx.set(path, dict(rules.bucket_doc(bucket, level - granted, now)))
        leases.append((granted, level))
    return leases


class WaitingSlot:
    """A waiting call's place among its key's `max_waiting_per_key`, counted in the store.

    The call ends with `close()`, and gives the slot back if that says it holds one. A take
    still running in a worker thread when its call was cancelled gives the slot back itself.

    A slot given back stays with the process for `WAIT_SLOT_KEPT_SECONDS` before the store hears
    of it: an agent that waits in a loop calls again as soon as its wait ends, and its next
    wait takes the same slot without a transaction (or, when the slot's stored deadline would
    lapse during the new wait, with one that moves the deadline). So a key waiting again and
    again costs half a transaction a wait instead of two; another instance sees the slot free
    that much later."""

    def __init__(self, rt: Runtime, caller: Caller, wait_seconds: float) -> None:
        self.rt, self.caller, self.wait_seconds = rt, caller, wait_seconds
        self.id = new_id()
        self.stored = 0.0  # the deadline the store holds for this slot
        self.taken = self.closed = False
        self._lock = threading.Lock()

    def take(self) -> None:
        """Hold a slot, or raise RATE_LIMITED (`limit: waiting`) when the key has its most."""
        cap = plan_of(self.rt, self.caller.tenant_id).max_waiting_per_key
        if cap is None or self.caller.key_id is None:
            return
        budgets, now, mine = _budgets(self.rt), _now(self.rt), (self.caller.tenant_id, self.caller.key_id)
        deadline, path = now + self.wait_seconds, rates_path(mine[0], f"waiting-{mine[1]}")
        with budgets.lock:
            local = dict(budgets.waiting.get(mine, {}))
            kept = budgets.kept_slot(mine, deadline)
        if kept is not None and kept[1] + WAIT_GRACE_SECONDS >= deadline + 1.0:
            self.id, self.stored = kept  # the store holds it long enough: nothing to write
            budgets.counts["waitSlotsKept"] += 1
        else:
            if kept is None and len(local) >= cap:  # this process alone holds them all: no need to ask the store
                raise rules.waiting_refusal(cap, _retry(local, now))
            if kept is not None:
                self.id = kept[0]  # the slot this process keeps, with a later deadline
            self.rt.store.run_transaction(lambda tx: _hold(tx, path, self.id, deadline, now, cap))
            self.stored = deadline
            budgets.counts["waitSlots"] += 1
        with budgets.lock:
            budgets.waiting.setdefault(mine, {})[self.id] = deadline
        with self._lock:
            self.taken, abandoned = True, self.closed
        if abandoned:
            self.release()

    def close(self) -> bool:
        """The call is over: whether a slot is held (then `release` it)."""
        with self._lock:
            self.closed = True
            return self.taken

    def release(self) -> dict[str, Any]:
        """Keep the slot for this key's next wait; give it back to the store if none comes."""
        with self._lock:
            if not self.taken:
                return {}
            self.taken = False
        budgets, mine = _budgets(self.rt), (self.caller.tenant_id, str(self.caller.key_id))
        with budgets.lock:
            budgets.waiting.get(mine, {}).pop(self.id, None)
            mark = budgets.keep_slot(mine, self.id, self.stored)
        timer = threading.Timer(WAIT_SLOT_KEPT_SECONDS, _give_back, (self.rt, mine, self.id, mark))
        timer.daemon = True
        timer.start()
        return {}


def _give_back(rt: Runtime, mine: tuple[str, str], slot: str, mark: int) -> None:
    """A kept slot no wait took: free it in the store (a failure leaves it to lapse)."""
    budgets = _budgets(rt)
    with budgets.lock:
        if not budgets.unkeep_slot(mine, slot, mark):
            return  # taken again meanwhile
    path, now = rates_path(mine[0], f"waiting-{mine[1]}"), _now(rt)
    try:
        rt.store.run_transaction(lambda tx: _free(tx, path, slot, now))
    except Exception:
        log.warning("giving back waiting slot %s of %s failed; it lapses %g s after its deadline", slot, path,
                    WAIT_GRACE_SECONDS, exc_info=True)


def _live(stored: dict[str, Any] | None, now: float) -> dict[str, float]:
    slots = dict((stored or {}).get("slots") or {})
    return {slot: float(deadline) for slot, deadline in slots.items() if float(deadline) + WAIT_GRACE_SECONDS > now}


def _retry(slots: dict[str, float], now: float) -> int:
    return rules.whole_seconds(min(slots.values(), default=now) - now)


def _hold(tx: Transaction, path: str, slot: str, deadline: float, now: float, cap: int) -> None:
    """Take `slot`, or move its deadline if it is this process's already."""
    others = {other: at for other, at in _live(tx.get(path), now).items() if other != slot}
    if len(others) >= cap:
        raise rules.waiting_refusal(cap, _retry(others, now))
    tx.set(path, {"slots": {**others, slot: deadline}})


def _free(tx: Transaction, path: str, slot: str, now: float) -> None:
    slots = _live(tx.get(path), now)
    slots.pop(slot, None)
    tx.set(path, {"slots": slots})


def stats(rt: Runtime) -> dict[str, int]:
    """What this process counted: calls admitted, leases (transactions on a bucket) made by a
    call that found its slice spent or stale, renewals made ahead of time, refusals answered
    without the store, waiting slots taken (each one transaction, and one to free it unless a
    later wait takes it again) and kept slots taken again without one."""
    budgets = _budgets(rt)
    with budgets.lock:
        return {name: budgets.counts[name] for name in ("admitted", "leases", "renewals", "refusedLocally",
                                                        "waitSlots", "waitSlotsKept")}
