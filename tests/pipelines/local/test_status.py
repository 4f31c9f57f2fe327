"""What `personalize status` calls open: unresolved conditions, not informational events."""

from __future__ import annotations

from datetime import date

from pipelines.alerts.records import Alert, write_alert
from pipelines.config import Settings
from pipelines.local.status import open_alerts


def test_open_alerts_leave_out_info_events(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    day = date(2026, 3, 2)
    write_alert(
        settings.alerts_file,
        Alert(type="drift", severity="warning", summary="drift", day=day, model="propensity"),
    )
    write_alert(
        settings.alerts_file,
        Alert(type="retrain", severity="info", summary="retraining", day=day, model="propensity"),
    )
    assert [a["type"] for a in open_alerts(settings)] == ["drift"]
