"""The task state table: every allowed move, and a useful refusal for every other one."""

from __future__ import annotations

import pytest

from cachebash.domain.errors import Conflict
from cachebash.domain.task_states import (
    HISTORY_LIMIT,
    PHASES,
    TRANSITIONS,
    HistoryEntry,
    Phase,
    TaskEvent,
    TaskStatus,
    is_terminal,
    transition,
    with_history,
)

S, E = TaskStatus, TaskEvent


@pytest.mark.parametrize(("start", "event", "end"), [
    (S.CREATED, E.CLAIM, S.CLAIMED),
    (S.CLAIMED, E.PROGRESS, S.IN_PROGRESS),
    (S.IN_PROGRESS, E.PROGRESS, S.IN_PROGRESS),
    (S.CLAIMED, E.SUCCESS, S.COMPLETED),
    (S.IN_PROGRESS, E.SUCCESS, S.COMPLETED),
    (S.IN_PROGRESS, E.FAILED, S.FAILED),
    (S.CREATED, E.CANCELLED, S.CANCELLED),
    (S.CREATED, E.SKIPPED, S.SKIPPED),
    (S.CLAIMED, E.CANCELLED, S.CANCELLED),
])
def test_allowed_moves(start: TaskStatus, event: TaskEvent, end: TaskStatus) -> None:
    assert transition("t1", start, event) is end


@pytest.mark.parametrize("event", [E.SUCCESS, E.FAILED, E.PROGRESS])
def test_work_outcomes_need_a_claim(event: TaskEvent) -> None:
    with pytest.raises(Conflict, match="claim it with claim_task") as info:
        transition("t1", S.CREATED, event)
    assert info.value.code == "INVALID_TRANSITION"


@pytest.mark.parametrize("event", [E.CANCELLED, E.SKIPPED])
def test_cancel_and_skip_only_before_work_starts(event: TaskEvent) -> None:
    with pytest.raises(Conflict, match="work has started"):
        transition("t1", S.IN_PROGRESS, event)


@pytest.mark.parametrize("done", [s for s in S if is_terminal(s)])
@pytest.mark.parametrize("event", list(E))
def test_finished_tasks_never_change(done: TaskStatus, event: TaskEvent) -> None:
    with pytest.raises(Conflict) as info:
        transition("t1", done, event)
    assert info.value.code == "TASK_FINISHED"
    assert done.value in info.value.message


def test_every_status_has_a_phase_and_table_is_consistent() -> None:
    assert set(PHASES) == set(S)
    for (source, _), target in TRANSITIONS.items():
        assert not is_terminal(source), "no row may leave a terminal status"
        assert target in PHASES
    assert PHASES[S.CLAIMED] is PHASES[S.IN_PROGRESS] is Phase.ACTIVE


def test_history_is_bounded_and_keeps_the_newest() -> None:
    history: list[dict[str, object]] = []
    for i in range(HISTORY_LIMIT + 7):
        history = with_history(history, HistoryEntry(f"t{i:03}", "progress", "b", "claimed", "in_progress"))
    assert len(history) == HISTORY_LIMIT
    assert history[-1]["at"] == f"t{HISTORY_LIMIT + 6:03}"
    assert history[0]["at"] == "t007"
