"""Plans as data: the presets say what the seeds and the README say, overrides are checked
field by field, and a stored plan resolves to exactly one Plan whatever it holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cachebash.domain import plans
from cachebash.domain.errors import InvalidInput
from cachebash.services.quota import counts_monthly, month_of, next_month_start


def test_the_presets_are_the_documented_tiers() -> None:
    assert list(plans.PRESETS) == ["free", "pro", "self-hosted", "unlimited"]
    assert plans.preset("free").monthly_tasks == 500  # the seeds: "Free tier caps at 500 tasks/month"
    assert plans.preset("self-hosted").monthly_tasks is None  # a self-hosted server has no tier
    hosted = plans.preset("self-hosted")
    assert all(getattr(hosted, f) is not None for f in plans.LIMIT_FIELDS if f != "monthly_tasks")
    assert all(v is None for k, v in plans.preset("unlimited").to_dict().items() if k != "name")
    assert (plans.EMBEDDED_DEFAULT, plans.CLOUD_DEFAULT) == ("self-hosted", "free")


def test_every_valid_text_fits_the_paid_and_self_hosted_size_limits() -> None:
    """Texts are at most 20,000 characters (domain/inputs), each at most 4 bytes in UTF-8."""
    for name in ("pro", "self-hosted"):
        plan = plans.preset(name)
        assert plan.max_message_bytes == plan.max_instruction_bytes == 80_000


def test_an_unknown_preset_is_refused_naming_the_choices() -> None:
    with pytest.raises(InvalidInput) as refused:
        plans.preset("gold")
    assert refused.value.field == "plan" and refused.value.details["allowed"] == list(plans.PRESETS)


@pytest.mark.parametrize("overrides, field", [
    ({"monthly_task": 5}, "monthly_task"),
    ({"monthly_tasks": -1}, "monthly_tasks"),
    ({"monthly_tasks": 1.5}, "monthly_tasks"),
    ({"monthly_tasks": True}, "monthly_tasks"),
    ({"max_open_tasks": "10"}, "max_open_tasks"),
])
def test_bad_overrides_are_refused_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        plans.check_overrides(overrides)
    assert refused.value.field == field and field in refused.value.message


def test_overrides_may_be_zero_or_unlimited() -> None:
    assert plans.check_overrides({"monthly_tasks": 0, "max_open_tasks": None}) == {"monthly_tasks": 0,
                                                                                   "max_open_tasks": None}


def test_a_stored_plan_resolves_to_its_preset_with_its_overrides() -> None:
    assert plans.resolve(None, "free") == plans.preset("free")
    assert plans.resolve({}, "self-hosted") == plans.preset("self-hosted")
    mine = plans.resolve({"name": "pro", "overrides": {"monthly_tasks": 7, "bogus": 1}}, "free")
    assert (mine.name, mine.monthly_tasks, mine.max_open_tasks) == ("pro", 7, plans.preset("pro").max_open_tasks)
    unlimited = plans.resolve({"name": "free", "overrides": {"monthly_tasks": None}}, "free")
    assert unlimited.monthly_tasks is None and unlimited.max_open_tasks == 500
    # A preset since removed falls back to the default instead of failing every call of the tenant.
    assert plans.resolve({"name": "legacy", "overrides": {}}, "free") == plans.preset("free")


def test_the_quota_month_is_the_utc_calendar_month() -> None:
    late = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert month_of(late) == "2026-12"
    assert next_month_start(late) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month_start(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize("task, counts", [
    ({"type": "task", "target": "builders"}, True),
    ({"type": "question", "target": "human"}, False),
    ({"type": "question", "target": "builders"}, True),  # only the human's questions are free: no bypass by type
    ({"type": "task", "target": "b1", "retryOf": "t1"}, False),
    ({"type": "sprint-story", "target": "b1", "storyRun": 1}, True),
    ({"type": "sprint-story", "target": "b1", "storyRun": 2}, False),
])
def test_what_counts_against_the_monthly_quota(task: dict[str, object], counts: bool) -> None:
    assert counts_monthly(task) is counts
