"""The watchdog DAG on real Airflow: a day whose daily DAG has not succeeded by its deadline."""

from __future__ import annotations

from datetime import date, timedelta

from pipelines.alerts.records import read_alerts
from pipelines.config import Settings
from pipelines.monitoring.missing_runs import DAILY_DAGS, LOOKBACK_DAYS, record_success
from pipelines.orchestration import run_dag

RUN_DAY = date(2029, 3, 10)  # days of its own: no other DAG test writes a ledger this late
GAP = RUN_DAY - timedelta(days=3)


def missing_run_alerts(settings: Settings) -> list[dict]:
    return [
        a
        for a in read_alerts(settings.alerts_file)
        if a.get("key", "").startswith("missing_run:") and a["day"] >= "2029-"
    ]


def test_a_day_without_its_features_run_pages_once_and_resolves_when_it_succeeds(
    airflow_settings: Settings,
) -> None:
    settings = airflow_settings
    week = [RUN_DAY - timedelta(days=i) for i in range(LOOKBACK_DAYS + 3)]
    for day in week:
        for dag_id in DAILY_DAGS:
            if (dag_id, day) != ("features", GAP):
                record_success(settings, dag_id, day)

    [record] = run_dag(settings, "watchdog", RUN_DAY)
    assert record.state == "success", record.failed_tasks
    alerts = missing_run_alerts(settings)
    assert [(a["details"]["dag_id"], a["day"], a["type"]) for a in alerts] == [
        ("features", GAP.isoformat(), "missing_run")
    ]
    alert = alerts[0]
    assert alert["severity"] == "critical"
    assert f"features has not succeeded for {GAP}" in alert["summary"]
    assert f"personalize run features --date {GAP}" in alert["runbook"]

    # the next hour's check: the same condition, cooling down, no second page
    [again] = run_dag(settings, "watchdog", RUN_DAY)
    assert again.state == "success"
    assert len(missing_run_alerts(settings)) == 1

    record_success(settings, "features", GAP)
    run_dag(settings, "watchdog", RUN_DAY)
    closing = missing_run_alerts(settings)[-1]
    assert (closing["type"], closing["key"]) == ("resolved", f"missing_run:features:{GAP}")
