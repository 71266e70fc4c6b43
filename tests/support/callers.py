"""Programs for service-level tests, registered the way the product does it."""

from __future__ import annotations

from cachebash.domain.programs import CreateKey
from cachebash.services import keys
from cachebash.services.runtime import Caller, Runtime


def make_caller(rt: Runtime, program: str, *, tenant: str = "default", groups: tuple[str, ...] = (),
                admin: bool = False) -> Caller:
    """Issue the program a key and authenticate with it, so groups come from the real registry."""
    created = keys.issue_key(rt, tenant, CreateKey(programId=program, groups=list(groups), admin=admin), "test")
    return keys.authenticate(rt, created["apiKey"])


def lead_and_builders(rt: Runtime) -> dict[str, Caller]:
    """The smallest team a dispatch test needs: a lead, and two members of the group `builders`."""
    return {"lead": make_caller(rt, "lead"), "b1": make_caller(rt, "b1", groups=("builders",)),
            "b2": make_caller(rt, "b2", groups=("builders",))}
