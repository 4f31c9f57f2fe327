"""The missing-run decision: which (DAG, day) is past its deadline without a success."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.monitoring.missing_runs import (
    DAILY_DAGS,
    MissingRun,
    missing_run_alert,
    missing_runs,
)

DAY = date(2026, 3, 10)
FIRST = date(2026, 1, 1)


def ledger(days: set[date], **overrides: set[date]) -> dict[str, set[date]]:
    return {dag_id: overrides.get(dag_id, days) for dag_id in DAILY_DAGS}


def at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def test_a_day_is_due_at_its_end_plus_the_deadline_and_not_a_moment_before() -> None:
    week = {DAY - timedelta(days=i) for i in range(1, 8)}
    done = ledger(week)
    # DAY ends at DAY+1 00:00; with 6 hours of grace it is due at DAY+1 06:00 exactly
    before = missing_runs(done, at(DAY, 24 + 6) - timedelta(seconds=1), first_day=FIRST,
                          deadline_hours=6)  # fmt: skip
    assert before == []
    due = missing_runs(done, at(DAY, 24 + 6), first_day=FIRST, deadline_hours=6)
    assert [(m.dag_id, m.day) for m in due] == [(dag_id, DAY) for dag_id in DAILY_DAGS]
    assert due[0].deadline == at(DAY, 30)


def test_only_the_dag_without_a_success_is_missing_within_the_last_week() -> None:
    week = {DAY - timedelta(days=i) for i in range(7)}
    done = ledger(week, features=week - {DAY - timedelta(days=3)}, monitor=set())
    found = missing_runs(done, at(DAY, 30), first_day=FIRST, deadline_hours=6)
    assert [m for m in found if m.dag_id == "features"] == [
        MissingRun("features", DAY - timedelta(days=3), at(DAY - timedelta(days=3), 30))
    ]
    # monitor never ran: each of the last 7 days, not every day since the start
    assert sorted(m.day for m in found if m.dag_id == "monitor") == sorted(week)
    assert not [m for m in found if m.dag_id == "ingest"]


def test_days_before_the_dags_start_are_never_expected() -> None:
    found = missing_runs(ledger(set()), at(DAY, 30), first_day=DAY - timedelta(days=1),
                         deadline_hours=6)  # fmt: skip
    assert sorted({m.day for m in found}) == [DAY - timedelta(days=1), DAY]
    with pytest.raises(ValueError, match="deadline_hours"):
        missing_runs(ledger(set()), at(DAY, 30), first_day=FIRST, deadline_hours=-1)


def test_the_alert_is_critical_and_names_the_dag_the_day_and_what_to_run() -> None:
    alert = missing_run_alert(MissingRun("features", DAY, at(DAY, 30)), at(DAY, 32.5))
    assert (alert.type, alert.severity, alert.day) == ("missing_run", "critical", DAY)
    assert alert.summary == (
        "features has not succeeded for 2026-03-10: deadline 2026-03-11 06:00 UTC passed 2.5 h ago"
    )
    assert "personalize run features --date 2026-03-10" in alert.runbook
    assert alert.key == "missing_run:features:2026-03-10"
    assert alert.runbook_link.endswith("#missing_run")
