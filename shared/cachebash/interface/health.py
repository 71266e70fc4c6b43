"""GET /health: the answer a probe gets, the same from `cachebash serve` and a Cloud Function.
Imports almost nothing, so a cold instance answers its probe before it has built anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cachebash import __version__

if TYPE_CHECKING:
    from cachebash.services.runtime import Runtime

PATH = "/health"


def health_body(runtime: Runtime | None) -> dict[str, Any]:
    """`waitingCalls` where the runtime's signals count their waiters (LocalSignals do); an
    instance that has not built its runtime yet has none waiting."""
    waiting = getattr(runtime.signals, "waiting", None) if runtime is not None else (lambda: 0)
    return {"status": "ok", "version": __version__, **({"waitingCalls": waiting()} if callable(waiting) else {})}
