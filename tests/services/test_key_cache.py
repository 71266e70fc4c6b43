"""The key cache (services/key_cache): a key seen lately costs no store read; a change made in
this process takes effect at once; one made by another runtime on the same store within the
TTL, on the runtime's clock (no sleeps); a waiting call's re-check never trusts the cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from cachebash.adapters.local_signals import LocalSignals
from cachebash.bootstrap import embedded_runtime
from cachebash.domain.errors import Unauthenticated
from cachebash.domain.inputs import parse
from cachebash.domain.programs import CreateKey
from cachebash.domain.tasks import CreateTask
from cachebash.ports.clock import ManualClock
from cachebash.ports.signals import revocation_key
from cachebash.ports.store import Store
from cachebash.services import keys, presence, revocation, tasks
from cachebash.services.key_cache import TTL_SECONDS, KeyCache
from cachebash.services.runtime import Runtime
from support.callers import make_caller


class Reads:
    """Counts the store's document reads outside transactions (what authentication does), the
    real store underneath."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = store.get

        def get(path: str) -> dict[str, object] | None:
            self.paths.append(path)
            return real(path)

        monkeypatch.setattr(store, "get", get)

    def taken(self) -> list[str]:
        paths, self.paths = self.paths, []
        return paths


@pytest.fixture
def reads(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Reads:
    return Reads(runtime.store, monkeypatch)


@pytest.fixture
def other(store_factory: Callable[[], Store]) -> Iterator[Runtime]:
    """Another process on the same store: its own connection, clock and cache."""
    rt = embedded_runtime(store_factory(), ManualClock(), strict=True)
    yield rt
    rt.store.close()


def new_key(rt: Runtime, program: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    return keys.issue_key(rt, "default", CreateKey(programId=program, groups=list(groups)), "test")


def warm(rt: Runtime, api_key: str) -> None:
    """Authenticate until the entry is cached."""
    keys.authenticate(rt, api_key)


def test_the_presence_write_of_authentication_keeps_the_entry(runtime: Runtime, clock: ManualClock,
                                                              reads: Reads) -> None:
    created = new_key(runtime, "builder")
    keys.authenticate(runtime, created["apiKey"])  # reads both documents, writes lastUsedAt and lastSeenAt
    reads.taken()
    caller = keys.authenticate(runtime, created["apiKey"])
    assert reads.taken() == [], "the entry was updated with what presence wrote, not dropped"
    assert caller.marks.last_seen == clock.iso(), "the program's lastSeenAt as written"
    clock.advance(20)
    keys.authenticate(runtime, created["apiKey"])
    stored = runtime.store.get(keys.key_path(keys.hash_key(created["apiKey"])))
    assert stored is not None and stored["lastUsedAt"] == clock.iso(-20), "not due again: nothing written"


def test_a_cached_key_reads_nothing_until_its_ttl_ends(runtime: Runtime, clock: ManualClock, reads: Reads) -> None:
    created = new_key(runtime, "builder", ("builders",))
    warm(runtime, created["apiKey"])
    reads.taken()
    rpcs = getattr(runtime.store, "rpc_count", None)
    for _ in range(5):
        caller = keys.authenticate(runtime, created["apiKey"])
        assert caller.program_id == "builder" and caller.groups == ("builders",)
    assert reads.taken() == []
    if rpcs is not None:  # Firestore: no RPC at all
        assert runtime.store.rpc_count == rpcs  # type: ignore[attr-defined]
    clock.advance(TTL_SECONDS)
    keys.authenticate(runtime, created["apiKey"])
    assert reads.taken() == [keys.key_path(keys.hash_key(created["apiKey"])), "tenants/default/programs/builder"]


def test_an_unknown_key_is_refused_from_the_cache_too(runtime: Runtime, reads: Reads) -> None:
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="unknown API key"):
            keys.authenticate(runtime, "cb_not-a-key")
    assert len(reads.taken()) == 1


def test_a_revocation_in_this_process_is_immediate(runtime: Runtime) -> None:
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    keys.revoke_tenant_key(runtime, "default", created["keyId"])
    with pytest.raises(Unauthenticated, match="was revoked"):
        keys.authenticate(runtime, created["apiKey"])


def test_a_rotation_in_this_process_is_immediate(runtime: Runtime) -> None:
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    rotated = keys.rotate_tenant_key(runtime, "default", created["keyId"])
    with pytest.raises(Unauthenticated, match="was revoked"):
        keys.authenticate(runtime, created["apiKey"])
    assert keys.authenticate(runtime, rotated["apiKey"]).program_id == "builder"


def test_a_revocation_by_another_process_is_seen_within_the_ttl(runtime: Runtime, clock: ManualClock,
                                                                 other: Runtime) -> None:
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    keys.revoke_tenant_key(other, "default", created["keyId"])
    with pytest.raises(Unauthenticated, match="was revoked"):
        keys.authenticate(other, created["apiKey"])  # at once where it was revoked
    clock.advance(TTL_SECONDS - 1)
    assert keys.authenticate(runtime, created["apiKey"]).program_id == "builder"  # the documented bound
    clock.advance(1)
    with pytest.raises(Unauthenticated, match="was revoked"):
        keys.authenticate(runtime, created["apiKey"])


@pytest.mark.anyio
async def test_a_revocation_elsewhere_is_seen_at_once_while_this_process_listens_to_the_tenant(
        backend: str, runtime: Runtime, other: Runtime) -> None:
    """A process with calls waiting in the tenant listens to its keys; the feed drops a key seen
    revoked from the cache, so the next call is refused without waiting out the TTL."""
    if backend == "sqlite":
        pytest.skip("SQLite cannot listen: only the TTL bounds another process's revocation")
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    key_hash = keys.hash_key(created["apiKey"])
    signals = runtime.signals
    assert isinstance(signals, LocalSignals)
    try:
        with signals.subscribe("default", [revocation_key(created["keyId"])]):
            await _until(lambda: signals.stats()["feedsLive"] == 1)
            keys.revoke_tenant_key(other, "default", created["keyId"])
            await _until(lambda: runtime.key_cache.get(key_hash, runtime.clock.now()) is None)
    finally:
        signals.close()  # the feed's listeners, before the store closes under them
    with pytest.raises(Unauthenticated, match="was revoked"):
        keys.authenticate(runtime, created["apiKey"])  # the runtime's clock has not moved


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """The listener's delay (tens of milliseconds): a bound against a hang, not a speed test."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


def test_a_waiting_call_rechecks_its_key_in_the_store_not_the_cache(runtime: Runtime, other: Runtime) -> None:
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    caller = keys.authenticate(runtime, created["apiKey"])
    revocation.check(runtime, caller)  # still active
    keys.revoke_tenant_key(other, "default", created["keyId"])
    with pytest.raises(Unauthenticated, match="this call was waiting and ended"):
        revocation.check(runtime, caller)


def test_new_groups_apply_at_once_in_this_process(runtime: Runtime) -> None:
    first = new_key(runtime, "builder")
    warm(runtime, first["apiKey"])
    new_key(runtime, "builder", ("reviewers",))  # a second key adds the program to a group
    assert keys.authenticate(runtime, first["apiKey"]).groups == ("reviewers",)


def test_an_interrupt_mark_shows_on_the_next_call_in_this_process(runtime: Runtime) -> None:
    lead = make_caller(runtime, "lead")
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    task = tasks.create_task(runtime, lead, parse(CreateTask, {"title": "stop", "target": "builder",
                                                               "action": "interrupt"}))
    assert keys.authenticate(runtime, created["apiKey"]).marks.interrupts == (task["taskId"],)


def test_a_session_noted_once_is_not_noted_again_on_the_next_call(runtime: Runtime, reads: Reads,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    created = new_key(runtime, "builder")
    warm(runtime, created["apiKey"])
    presence.note_session(runtime, keys.authenticate(runtime, created["apiKey"]), "s1")
    caller = keys.authenticate(runtime, created["apiKey"])
    assert dict(caller.marks.sessions)["s1"] == runtime.clock.iso()
    reads.taken()
    written: list[object] = []
    real = runtime.store.run_transaction
    monkeypatch.setattr(runtime.store, "run_transaction", lambda fn: written.append(fn) or real(fn))
    presence.note_session(runtime, keys.authenticate(runtime, created["apiKey"]), "s1")
    assert written == [] and reads.taken() == [], "not due again: the cache holds the session just written"


# ---------------------------------------------------------------------------- the cache alone

T0 = datetime(2026, 1, 1)


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = KeyCache(max_entries=2)
    for name in ("a", "b"):
        cache.put(name, None, {}, T0, cache.generation)
    assert cache.get("a", T0) is not None  # a is now the most recent
    cache.put("c", None, {}, T0, cache.generation)
    assert len(cache) == 2 and cache.get("b", T0) is None and cache.get("a", T0) is not None


def test_an_entry_read_while_something_was_dropped_is_not_kept() -> None:
    cache = KeyCache()
    record = {"tenantId": "t", "programId": "p", "keyId": "k", "active": True}
    started = cache.generation
    cache.forget_key("h")  # a revocation committed while the documents were being read
    cache.put("h", record, {}, T0, started)
    assert cache.get("h", T0) is None
    cache.put("h", record, {}, T0, cache.generation)
    assert cache.get("h", T0) is not None
    cache.forget_program("t", "p")
    assert cache.get("h", T0) is None


def test_an_entry_lives_for_the_ttl_exactly() -> None:
    cache = KeyCache(ttl_seconds=30)
    cache.put("h", None, {}, T0, cache.generation)
    assert cache.get("h", T0 + timedelta(seconds=29.999)) is not None
    assert cache.get("h", T0 + timedelta(seconds=30)) is None


def test_an_entry_is_not_trusted_when_the_clock_went_back() -> None:
    cache = KeyCache(ttl_seconds=30)
    cache.put("h", None, {}, T0, cache.generation)
    assert cache.get("h", T0 - timedelta(seconds=1)) is None
