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
    [({"history_days": 17}, "at least 18"), ({"live_days": 5}, "need 6 live days")],
)
def test_a_scenario_too_short_for_its_turns_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario(**changes)


def test_the_prod_story_turns_auto_promotion_on_and_says_so() -> None:
    """Prod promotes nobody by itself: the story's runs would never get a champion."""
    from pipelines.config import Settings
    from pipelines.gates import load_gate_config_for
    from pipelines.local.story import story_settings

    prod = Settings(profile="prod")
    assert not any(c.auto_promote for c in load_gate_config_for(prod).values())
    story, note = story_settings(prod)
    assert story.auto_promote is True and story.profile == "prod"
    assert all(c.auto_promote for c in load_gate_config_for(story).values())
    assert note is not None and "auto-promotion is off" in note and "personalize promote" in note
    assert story.as_environment()["PERSONALIZE_AUTO_PROMOTE"] == "true"  # what the tasks read

    local = Settings(profile="local")
    assert story_settings(local) == (local, None)
    # an explicit choice is kept, with a warning when it leaves the story without champions
    kept, warning = story_settings(Settings(profile="prod", auto_promote=False))
    assert kept.auto_promote is False and warning is not None and "will be missed" in warning
