"""Alerts: what on-call reads first, one condition one alert per cool-down, resolved once."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.alerts.records import (
    ALERT_TYPES,
    Alert,
    active_conditions,
    condition_key,
    read_alerts,
    render_text,
    resolve,
    runbook_link,
    should_send,
    write_alert,
)
from pipelines.monitoring.drift import ColumnDrift, DriftResult
from pipelines.monitoring.drift_alerts import drift_alert

RUNBOOK = Path(__file__).resolve().parents[3] / "docs" / "runbook.md"
NOW = datetime(2026, 2, 14, 6, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def drift_result() -> DriftResult:
    wasserstein = "wasserstein"  # the stattest id, as monitoring records it
    columns = [
        ColumnDrift("device_share_web_30d", wasserstein, 0.31, 0.1, True),
        ColumnDrift("avg_order_value_30d", wasserstein, 0.18, 0.1, True),
        ColumnDrift("top_category_1", "jensenshannon", 0.12, 0.1, True),
        ColumnDrift("views_7d", wasserstein, 0.04, 0.1, False),
    ]
    return DriftResult(
        drift_share=0.75,
        dataset_drifted=True,
        drift_share_threshold=0.5,
        columns=columns,
        reference_rows=10_000,
        current_rows=10_000,
        sampled=True,
        skipped={"views_30d": "30-day window filled 12/30 days in the reference"},
    )


def test_a_drift_alert_says_what_how_bad_and_what_next_in_order() -> None:
    alert = drift_alert(
        drift_result(),
        model="propensity",
        version=7,
        day=date(2026, 2, 13),
        report="/srv/personalize/reports/propensity/2026-02-13/drift.html",
        actions=["retrain triggered (train 2026-02-13)", "rolled back from v7 to v6"],
        metrics=[
            {"name": "auc", "value": 0.64, "baseline": 0.78, "threshold": 0.7, "passed": False}
        ],
    )
    lines = render_text(alert).splitlines()

    assert lines[0] == (
        "[CRITICAL] Data drift on propensity v7: 3/4 features drifted (share 0.75, alert at 0.50)"
    )
    assert lines[1] == "Model: propensity, version 7 | Day: 2026-02-13"
    features = [line for line in lines if line.startswith("  - ") and "threshold 0.1," in line]
    assert [f.split(":")[0].strip(" -") for f in features] == [
        "device_share_web_30d",
        "avg_order_value_30d",
        "top_category_1",
    ]
    assert "  - device_share_web_30d: 0.31 (threshold 0.1, Wasserstein distance (normed))" in lines
    assert "  - auc: 0.64 (baseline 0.78, threshold 0.7) FAILED" in lines
    assert "Already done: retrain triggered (train 2026-02-13); rolled back from v7 to v6" in lines
    assert "Report: /srv/personalize/reports/propensity/2026-02-13/drift.html" in lines
    assert "Runbook: docs/runbook.md#drift" in lines
    assert any(line.startswith("Not compared (1): views_30d") for line in lines)
    # the record keeps the drifted features with score and threshold for machines
    assert alert.details["drifted_features"][0] == {
        "column": "device_share_web_30d",
        "score": 0.31,
        "threshold": 0.1,
        "method": "wasserstein",
    }


def test_some_drifted_features_are_a_warning_and_nothing_done_is_said() -> None:
    result = drift_result()
    result.dataset_drifted, result.drift_share = False, 0.25
    alert = drift_alert(result, model="recommender", version="3")
    text = render_text(alert)
    assert text.startswith("[WARNING] Feature drift on recommender v3: 3/4 features drifted")
    assert "Already done: nothing automatic — needs a human" in text


def test_the_quarantine_record_of_ingest_keeps_its_fields(tmp_path: Path) -> None:
    alerts_file = tmp_path / "alerts.jsonl"
    alert = Alert(
        type="quarantine",
        severity="critical",
        summary="Batch quarantined: events 2026-01-05 failed 1 of 12 checks",
        day=date(2026, 1, 5),
        table="events",
        details={"failures": [{"column": "price", "rule": "min 0", "observed": -3.0}]},
        runbook="personalize release-quarantine events 2026-01-05",
    )
    write_alert(alerts_file, alert)
    record = read_alerts(alerts_file)[0]
    for name in (
        "type",
        "severity",
        "summary",
        "day",
        "table",
        "model",
        "details",
        "runbook",
        "ts",
    ):
        assert name in record
    assert record["day"] == "2026-01-05"
    assert record["key"] == "quarantine:events:2026-01-05"
    assert record["runbook_link"] == "docs/runbook.md#quarantine"
    text = render_text(record)
    assert text.startswith("[CRITICAL] Batch quarantined: events 2026-01-05")
    assert "  - price: min 0 — observed -3.0" in text
    assert "Next step: personalize release-quarantine events 2026-01-05" in text


def test_types_and_severities_are_checked() -> None:
    with pytest.raises(ValueError, match="alert type 'drfit' is not one of"):
        Alert(type="drfit", severity="warning", summary="x")
    with pytest.raises(ValueError, match="severity 'urgent'"):
        Alert(type="drift", severity="urgent", summary="x")  # type: ignore[arg-type]
    assert Alert(type="missing-data", severity="warning", summary="x").type == "missing_data"
    with pytest.raises(ValueError, match="needs the key"):
        Alert(type="resolved", severity="info", summary="x")


def test_condition_keys_group_what_is_the_same_trouble() -> None:
    def key(**fields) -> str:
        return condition_key(Alert(severity="warning", summary="x", **fields))

    # drift is per model whatever the version; a batch per table and day
    assert key(type="drift", model="propensity", version="7") == "drift:propensity"
    assert key(type="drift", model="propensity", version="8") == "drift:propensity"
    assert key(type="quarantine", table="items", day=date(2026, 1, 5)) != key(
        type="quarantine", table="items", day=date(2026, 1, 6)
    )
    # rollbacks are events: each version its own
    assert key(type="rollback", model="propensity", version="7") == "rollback:propensity:7"
    assert key(type="drift", model="x", key="custom") == "custom"


def test_the_same_condition_waits_for_the_cool_down(tmp_path: Path) -> None:
    alerts_file = tmp_path / "alerts.jsonl"
    alert = drift_alert(drift_result(), model="propensity", version=7)
    alert.ts = NOW
    key = condition_key(alert)
    assert should_send(alerts_file, key, NOW, DAY)
    write_alert(alerts_file, alert)

    assert not should_send(alerts_file, key, NOW + timedelta(hours=23), DAY)
    assert should_send(alerts_file, key, NOW + timedelta(hours=24), DAY)
    assert should_send(alerts_file, "drift:recommender", NOW, DAY)  # another model
    assert should_send(alerts_file, key, (NOW + DAY).replace(tzinfo=None), DAY)  # naive = UTC


def test_a_condition_that_went_away_is_resolved_once(tmp_path: Path) -> None:
    alerts_file = tmp_path / "alerts.jsonl"
    assert resolve(alerts_file, "drift:propensity", now=NOW) is None  # never alerted

    alert = drift_alert(drift_result(), model="propensity", version=7, day=date(2026, 2, 13))
    alert.ts = NOW
    write_alert(alerts_file, alert)
    assert set(active_conditions(alerts_file)) == {"drift:propensity"}

    later = NOW + timedelta(hours=30)
    resolved = resolve(alerts_file, "drift:propensity", now=later, note="retrained: v8")
    assert resolved is not None
    assert resolved.type == "resolved" and resolved.severity == "info"
    assert resolved.summary.startswith("Resolved: Data drift on propensity v7")
    assert resolved.details["resolves"] == "drift"
    assert resolved.details["open_for_hours"] == 30.0
    assert render_text(resolved).splitlines()[0].startswith("[INFO] Resolved: Data drift")
    assert "Runbook: docs/runbook.md#resolved" in render_text(resolved)

    write_alert(alerts_file, resolved)
    assert resolve(alerts_file, "drift:propensity", now=later) is None  # said once
    assert active_conditions(alerts_file) == {}
    # the condition coming back is news again, cool-down or not
    assert should_send(alerts_file, "drift:propensity", later + timedelta(hours=1), DAY)


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_type_has_a_runbook_section_with_commands() -> None:
    text = RUNBOOK.read_text()
    sections = dict(
        (_slug(match.group(1)), match.group(2))
        for match in re.finditer(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    )
    for alert_type in ALERT_TYPES:
        link = runbook_link(alert_type)
        path, _, anchor = link.partition("#")
        assert path == "docs/runbook.md"
        assert anchor in sections, f"docs/runbook.md has no section for {alert_type!r}"
        body = sections[anchor]
        assert "**What it means.**" in body and "**What to check.**" in body
        assert re.search(r"```bash\n(?:.*\n)*?personalize \w", body), f"no command for {anchor}"
