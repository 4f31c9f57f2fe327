"""A task that fails after its retries alerts on-call through Airflow's failure callback."""

from __future__ import annotations

from datetime import date

from pipelines.alerts.failures import task_failure_alert
from pipelines.config import Settings


class BatchQuarantined(Exception):  # the name is what the decision reads
    pass


class BatchMissing(Exception):
    pass


def test_a_failed_task_is_a_critical_alert_naming_what_to_open() -> None:
    alert = task_failure_alert(
        dag_id="features",
        task_id="materialize",
        day=date(2026, 3, 2),
        try_number=3,
        error=RuntimeError("disk full\nwhile writing user_activity"),
        log_url="http://localhost:8080/dags/features/runs/r1/tasks/materialize?try_number=3",
    )
    assert alert is not None and (alert.type, alert.severity) == ("task_failed", "critical")
    assert alert.summary == (
        "features.materialize failed for 2026-03-02 (try 3): "
        "RuntimeError: while writing user_activity"
    )
    assert alert.details["log_url"].endswith("tasks/materialize?try_number=3")
    assert alert.key == "task_failed:features:materialize:2026-03-02", "one key per task and day"
    assert "personalize run features --date 2026-03-02" in alert.runbook


def test_a_quarantine_is_not_paged_twice_and_a_missing_batch_is_missing_data() -> None:
    common = {"dag_id": "ingest", "task_id": "validate_events", "day": date(2026, 3, 2)}
    common |= {"try_number": 1, "log_url": None}
    assert (
        task_failure_alert(error=BatchQuarantined("events 2026-03-02: 1 check"), **common) is None
    )
    missing = task_failure_alert(error=BatchMissing("no events batch for 2026-03-02"), **common)
    assert missing is not None and missing.type == "missing_data"


def test_a_dag_task_that_raises_sends_one_alert_with_its_fields(airflow_settings: Settings) -> None:
    from pipelines.alerts.records import read_alerts
    from pipelines.orchestration import run_dag

    day = date(2026, 11, 2)
    conf = {"day": day.isoformat(), "models": ["nonsense"]}  # every fit task raises
    records = run_dag(airflow_settings, "train", day, conf=conf)
    assert records[0].state == "failed"
    failed = [
        a
        for a in read_alerts(airflow_settings.alerts_file)
        if a["type"] == "task_failed" and a["day"] == day.isoformat()
    ]
    tasks = sorted(a["details"]["task_id"] for a in failed)
    assert tasks == ["train_propensity", "train_recommender", "train_segmentation"], failed
    for alert in failed:
        details = alert["details"]
        assert alert["severity"] == "critical" and details["dag_id"] == "train"
        assert details["try_number"] >= 1
        assert details["exception"].startswith("TrainingError: unknown model(s) ['nonsense']")
        assert "/dags/train/runs/" in details["log_url"]
        assert details["log_url"].endswith(f"try_number={details['try_number']}")
