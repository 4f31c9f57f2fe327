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
from pipelines.models.pipeline import REFERENCE_WEEK_DAYS
from pipelines.models.testing import synthetic_shop
from pipelines.monitoring.quality import alarm_figures, judge_days

START = date(2026, 1, 5)  # a Monday
WATCH_FROM = START + timedelta(days=37)  # 30-day windows full in the reference week before it
DAYS = 45
ONSET = START + timedelta(days=40)


def judged(tmp_path: Path, seed: int, *drifts: PlantedChange) -> list:
    spec = ShopSpec(users=1000, items=200, days=DAYS, seed=seed, start=START, drifts=drifts)
    shop = synthetic_shop(tmp_path / f"shop{seed}", spec)
    return judge_days(
        shop.user_activity,
        first_day=START,
        reference_days=[WATCH_FROM - timedelta(days=i) for i in range(REFERENCE_WEEK_DAYS, 0, -1)],
        days=[d for d in shop.days if d >= WATCH_FROM],
        config=load_monitoring_config(),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_shop_pages_no_one(tmp_path: Path, seed: int) -> None:
    figures = alarm_figures(judged(tmp_path, seed))
    assert figures.clean_days == DAYS - 37
    assert figures.false_alarm_days == [], "a critical drift page on a clean day"


@pytest.mark.parametrize("kind", ["covariate", "promo"])
def test_a_planted_drift_pages_within_two_days_naming_what_moved(tmp_path: Path, kind: str) -> None:
    days = judged(tmp_path, 4, PlantedChange(kind, ONSET))
    figures = alarm_figures(days, ONSET, kind)
    assert figures.false_alarm_days == []
    assert figures.detection_delay_days is not None and figures.detection_delay_days <= 2, [
        (d.day.isoformat(), d.action, round(d.drift_share, 2)) for d in days
    ]
    assert figures.planted_feature_named, figures.named
    first = next(d for d in days if d.day >= ONSET and d.action != "none")
    assert first.severity == "critical" and first.action == "alert_and_retrain"
