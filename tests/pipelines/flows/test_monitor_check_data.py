"""Missing feature days: alerted once per gap, and a day without features cannot be judged."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipelines.alerts.records import read_alerts
from pipelines.config import Settings
from pipelines.flows.monitor import MonitoringError, check_data

FIRST = date(2026, 3, 1)
GAP = date(2026, 3, 4)


def feature_days(settings: Settings, days: list[date]) -> None:
    for day in days:
        (settings.feast_offline_dir / "user_activity" / f"date={day}").mkdir(parents=True)


def test_a_gap_is_alerted_once_not_on_every_day_that_still_sees_it(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    days = [FIRST + timedelta(days=i) for i in range(10) if FIRST + timedelta(days=i) != GAP]
    feature_days(settings, days)

    for day in days[3:]:
        result = check_data(settings, day)
        assert result["missing_days"] == ([str(GAP)] if day - GAP <= timedelta(days=7) else [])

    alerts = [a for a in read_alerts(settings.alerts_file) if a["type"] == "missing_data"]
    assert len(alerts) == 1, [a["details"]["noticed_on"] for a in alerts]
    assert alerts[0]["day"] == str(GAP)
    assert "no batch was loaded" in alerts[0]["summary"]


def test_the_monitored_day_itself_missing_fails_the_check(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    feature_days(settings, [FIRST, FIRST + timedelta(days=1)])
    with pytest.raises(MonitoringError, match="no features for 2026-03-03"):
        check_data(settings, FIRST + timedelta(days=2))
