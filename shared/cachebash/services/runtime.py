"""What every service needs, and who is asking."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cachebash.domain.errors import Forbidden
from cachebash.domain.plans import EMBEDDED_DEFAULT
from cachebash.domain.programs import ALL_GROUP, AWAY_SECONDS, ProgramMarks
from cachebash.domain.retry import RetryPolicy
from cachebash.ports.bus import Bus
from cachebash.ports.clock import Clock
from cachebash.ports.notifier import Notifier
from cachebash.ports.signals import Signals
from cachebash.ports.store import Store
from cachebash.services.expiring import Expiring
from cachebash.services.inbox_counts import FRESH_SECONDS as INBOX_COUNT_TTL_SECONDS
from cachebash.services.inbox_counts import InboxCount
from cachebash.services.key_cache import TTL_SECONDS as KEY_TTL_SECONDS
from cachebash.services.key_cache import KeyCache

if TYPE_CHECKING:
    from cachebash.services.outbox import Dispatcher


#: Entries each of the runtime's short caches keeps at most.
CACHE_ENTRIES = 10_000


@dataclass
class Runtime:
    store: Store
    bus: Bus
    clock: Clock
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    signals: Signals | None = None  # wake-ups for waiting callers; None: no waiting
    notifier: Notifier | None = None  # pushes to the human's phone; None: pushes are dropped
    #: A program unseen for this long is unavailable (presence, fallback).
    away_seconds: float = AWAY_SECONDS
    #: The plan (domain.plans preset) of a tenant that has none stored: self-hosted embedded, free in the cloud.
    default_plan: str = EMBEDDED_DEFAULT
    #: Whether the owner API may change the tenant's own plan: embedded the owner is the operator;
    #: in the cloud a plan is billing, changed by the operator (`cachebash plan set` on Firestore).
    owner_sets_plan: bool = True
    #: services/plans' short cache of tenants' plans: kept on the runtime, so two runtimes (tests,
    #: a CLI beside a server) never see each other's entries, as they could under an id() key.
    plan_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: What authentication read, per key, for `key_cache.TTL_SECONDS` (on the runtime for the same reason).
    key_cache: KeyCache = field(default_factory=KeyCache, repr=False, compare=False)
    #: (tenant, name) of send targets found to be programs and no group (services.directory).
    direct_targets: Expiring[tuple[str, str], bool] = field(
        default_factory=lambda: Expiring(KEY_TTL_SECONDS, CACHE_ENTRIES), repr=False, compare=False)
    #: Per (tenant, inbox): its undelivered count as last counted, and sends since (services.limits).
    inbox_counts: Expiring[tuple[str, str], InboxCount] = field(
        default_factory=lambda: Expiring(INBOX_COUNT_TTL_SECONDS, CACHE_ENTRIES), repr=False, compare=False)
    #: Counter documents per day and program for usage (services.usage); None: 16 on a remote store, else 1.
    usage_shards: int | None = None
    #: Tests: a failing handler fails the call whose change emitted the event (its entry still stays).
    strict: bool = False
    #: Set once when the server begins to stop: waiting calls stop waiting and give their empty answer.
    closing: threading.Event = field(default_factory=threading.Event)
    dispatcher: Dispatcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from cachebash.services.outbox import Dispatcher  # the outbox needs Runtime: imported here

        self.dispatcher = Dispatcher(self)


@dataclass(frozen=True)
class Caller:
    """The identity an API key fixes. Services trust nothing else about who is asking."""

    tenant_id: str
    program_id: str
    admin: bool = False
    groups: tuple[str, ...] = field(default_factory=tuple)
    key_id: str | None = None
    #: Presence and pending interrupts, as read from the program's document at authentication.
    marks: ProgramMarks = field(default_factory=ProgramMarks)
    #: The key's document (`keys/{sha256}`), read again by a waiting call before it acts.
    key_path: str | None = field(default=None, repr=False)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every target name that reaches this program: itself, its groups and `all`."""
        return (self.program_id, *self.groups, ALL_GROUP)

    def check_source(self, source: str | None) -> None:
        if source is not None and source != self.program_id:
            raise Forbidden(
                f"source is taken from your API key: you are '{self.program_id}', not '{source}'; "
                "leave source out",
                field="source",
            )


def new_id() -> str:
    """80 random bits: unguessable, and never monotonic (Firestore hot-spots sequential ids)."""
    return secrets.token_hex(10)


def tenant_path(tenant_id: str, collection: str, doc_id: str | None = None) -> str:
    base = f"tenants/{tenant_id}/{collection}"
    return base if doc_id is None else f"{base}/{doc_id}"
