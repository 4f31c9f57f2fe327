"""The recommender's monitor on a real MLflow champion: the day's interactions against its history.

A launch of new items (planted on ONSET) leaves the customers' features alike but sends them to
items the champion never saw: the monitor pages once, naming ``item_age``, and retrains; the
clean days before it page no one. The Evidently report and the recommended-category comparison
are written beside it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from pipelines.alerts.records import read_alerts
from pipelines.config import Settings
from pipelines.data.generator import PlantedChange, ShopSpec
from pipelines.flows.monitor import monitor_model
from pipelines.flows.train import carry_out_gate, gate_version, train_model
from pipelines.models.testing import curated_shop
from pipelines.monitoring.interactions import PROFILE_COLUMNS

START = date(2026, 1, 5)
TRAIN_END = START + timedelta(days=36)
ONSET = START + timedelta(days=40)


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("recommender-drift") / "home")
    spec = ShopSpec(
        users=1000, items=200, days=42, seed=4, start=START,
        drifts=(PlantedChange("new-items", ONSET),),
    )  # fmt: skip
    curated_shop(settings, spec)
    trained = train_model(settings, "recommender", TRAIN_END)
    carry_out_gate(settings, gate_version(settings, "recommender", trained.version))
    return settings


def test_new_items_page_once_naming_item_age_and_clean_days_page_no_one(
    champion_home: Settings,
) -> None:
    settings = champion_home
    for day in (ONSET - timedelta(days=2), ONSET - timedelta(days=1)):
        outcome = monitor_model(settings, "recommender", day)
        assert outcome["retrain"] is False, outcome
        summary = json.loads(
            (settings.reports_dir / "recommender" / day.isoformat() / "summary.json").read_text()
        )
        assert [c["column"] for c in summary["drift"]["columns"]] == list(PROFILE_COLUMNS)
        assert summary["drift"]["drifted_columns"] == [], summary["drift"]["summary"]
        assert "prediction_drift" in summary
    assert not [a for a in read_alerts(settings.alerts_file) if a["type"] == "drift"]

    outcome = monitor_model(settings, "recommender", ONSET)
    assert outcome["retrain"] is True, outcome
    pages = [a for a in read_alerts(settings.alerts_file) if a["type"] == "drift"]
    assert len(pages) == 1 and pages[0]["severity"] == "critical"
    drifted = [f["column"] for f in pages[0]["details"]["drifted_features"]]
    assert "item_age" in drifted, drifted
    report = settings.reports_dir / "recommender" / ONSET.isoformat()
    assert (report / "drift.html").exists() and (report / "prediction_drift.json").exists()


def test_a_day_before_the_reference_week_is_compared_with_it(champion_home: Settings) -> None:
    """Backfilling an older day under a newer champion reads the reference week ahead of it."""
    day = TRAIN_END - timedelta(days=7)  # the day before the reference week, history full
    outcome = monitor_model(champion_home, "recommender", day)
    assert outcome["retrain"] is False, outcome
    summary = json.loads(
        (champion_home.reports_dir / "recommender" / day.isoformat() / "summary.json").read_text()
    )
    assert [c["column"] for c in summary["drift"]["columns"]] == list(PROFILE_COLUMNS)
