"""The story's scenario: what is planted on which day (the run: tests/e2e/test_story.py)."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.local.story import Scenario, weekly_train_due


def test_the_default_scenario_plants_each_turn_on_its_live_day() -> None:
    scenario = Scenario()
    spec = scenario.spec()
    assert (scenario.history_end, scenario.live(1)) == (date(2026, 2, 1), date(2026, 2, 2))
    assert spec.days == scenario.history_days + scenario.live_days
    assert [str(c) for c in spec.bad] == ["negative-price@2026-02-03"]
    assert [str(c) for c in spec.drifts] == ["covariate@2026-02-04"]
    # the history ends on the weekly train's day; the last live day holds the next one
    assert weekly_train_due(scenario.history_end) and weekly_train_due(scenario.end)
    assert any("popularity baseline" in line for line in scenario.plan())


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"history_days": 10}, "at least 14"), ({"live_days": 5}, "need 6 live days")],
)
def test_a_scenario_too_short_for_its_turns_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario(**changes)
