"""Monitoring's pages on small shops: none on clean days, a planted drift caught within 2 days.

The drift decision of the monitor DAG (gates.toml's statistics, thresholds, key features and
cool-down), run over each day's features; bench/monitor_quality.py runs the same at full size.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.data.generator import PlantedChange, ShopSpec
from pipelines.gates import load_monitoring_config
from pipelines.models.testing import synthetic_shop
from pipelines.monitoring.quality import MODEL_COLUMNS, alarm_figures, daily_inputs, judge_days
from pipelines.monitoring.reference import REFERENCE_WEEK_DAYS

START = date(2026, 1, 5)  # a Monday
WATCH_FROM = START + timedelta(days=37)  # 30-day windows full in the reference week before it
DAYS = 45
ONSET = START + timedelta(days=40)


def judged(tmp_path: Path, seed: int, *drifts: PlantedChange, models=("propensity",)) -> dict:
    """Each model's drift decision per watched day of a small generated shop."""
    spec = ShopSpec(users=1000, items=200, days=DAYS, seed=seed, start=START, drifts=drifts)
    shop = synthetic_shop(tmp_path / f"shop{seed}", spec)
    reference = [WATCH_FROM - timedelta(days=i) for i in range(REFERENCE_WEEK_DAYS, 0, -1)]
    watched = [d for d in shop.days if d >= WATCH_FROM]
    return {
        model: judge_days(
            daily_inputs(model, shop.user_activity, shop.events, shop.items, shop.days),
            first_day=START,
            reference_days=reference,
            days=watched,
            config=load_monitoring_config(),
            model=model,
            columns=MODEL_COLUMNS[model],
        )
        for model in models
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_shop_pages_no_one(tmp_path: Path, seed: int) -> None:
    for model, days in judged(tmp_path, seed, models=tuple(MODEL_COLUMNS)).items():
        figures = alarm_figures(days)
        assert figures.clean_days == DAYS - 37
        assert figures.false_alarm_days == [], f"{model}: a critical drift page on a clean day"


# the model whose monitoring must see each kind: what moves is the customers (their devices,
# the prices they see, how much they buy), or what the recommender learned (their categories,
# the items that exist)
WATCHED_BY = {
    "covariate": "propensity",
    "promo": "propensity",
    "concept": "recommender",
    "new-items": "recommender",
}


@pytest.mark.parametrize("kind", sorted(WATCHED_BY))
def test_a_planted_drift_pages_within_two_days_naming_what_moved(tmp_path: Path, kind: str) -> None:
    model = WATCHED_BY[kind]
    days = judged(tmp_path, 4, PlantedChange(kind, ONSET), models=(model,))[model]
    figures = alarm_figures(days, ONSET, kind)
    assert figures.false_alarm_days == []
    assert figures.detection_delay_days is not None and figures.detection_delay_days <= 2, [
        (d.day.isoformat(), d.action, round(d.drift_share, 2)) for d in days
    ]
    assert figures.planted_feature_named, figures.named
    first = next(d for d in days if d.day >= ONSET and d.action != "none")
    assert first.severity == "critical" and first.action == "alert_and_retrain"
