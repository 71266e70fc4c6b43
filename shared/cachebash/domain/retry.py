"""The retry policy: how long a claim lasts, when a lost attempt is retried, and how long
a retried task waits before it is offered again.

Agents crash, lose their context or time out mid-call; a claim is therefore a lease that
runs out unless renewed, and a task whose attempts keep failing ends in a dead-letter state
instead of looping for ever.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachebash.domain.task_states import TaskEvent


@dataclass(frozen=True)
class RetryPolicy:
    lease_seconds: int = 15 * 60
    max_lease_seconds: int = 2 * 3600
    max_attempts: int = 3
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 300.0

    def lease_for(self, requested: int | None) -> int:
        """A claimer may ask for a shorter (or, up to the maximum, longer) lease than the default."""
        return min(requested or self.lease_seconds, self.max_lease_seconds)

    def after_lost_attempt(self, attempt: int, max_attempts: int) -> TaskEvent:
        return TaskEvent.RETRY if attempt < max_attempts else TaskEvent.DEAD_LETTER

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt `attempt + 1` is offered: doubling from the base, capped."""
        return float(min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** max(0, attempt - 1)))
