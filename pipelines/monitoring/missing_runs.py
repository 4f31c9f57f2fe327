"""A day whose daily DAG has not succeeded by its deadline raises ``missing_run``.

A failed task alerts through Airflow's failure callback, but a run that never happens alerts
nobody: the scheduler was down, an upstream batch never landed so no asset event set off
``features`` and ``monitor``, a run is stuck queued. This is the sentinel for those. Each daily
DAG ends with a ``record_success`` task that writes ``<home>/runs/<dag>/<day>.json``; the hourly
``watchdog`` DAG reads that ledger and alerts, for every day of the last week whose deadline
(the end of the day plus ``Settings.run_deadline_hours``) has passed, each daily DAG that has no
success for it. The decision, :func:`missing_runs`, is a pure function of the ledger and the
clock; a day that later succeeds resolves its alert once.

Airflow 3.3's deadline alerts fire only for runs that exist, so they would miss the run that was
never created: a sentinel over the platform's own ledger covers both.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.alerts.records import Alert
from pipelines.days import day_range, end_of_day, parse_day

if TYPE_CHECKING:
    from pipelines.config import Settings

log = logging.getLogger(__name__)

DAILY_DAGS = ("ingest", "features", "monitor")
LOOKBACK_DAYS = 7  # older gaps were alerted already (or predate the sentinel): backfill them


@dataclass(frozen=True)
class MissingRun:
    dag_id: str
    day: date
    deadline: datetime


def ledger_dir(settings: Settings) -> Path:
    return settings.state_dir / "runs"


def record_success(settings: Settings, dag_id: str, day: date, run_id: str | None = None) -> Path:
    """Write the ledger entry of ``dag_id``'s successful run for ``day`` (idempotent)."""
    path = ledger_dir(settings) / dag_id / f"{day.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"dag_id": dag_id, "day": day.isoformat(), "run_id": run_id}
    record["recorded_at"] = datetime.now(UTC).isoformat()
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record))
    os.replace(temporary, path)  # a reader never sees half a file
    return path


def succeeded_days(settings: Settings, dag_ids: Iterable[str] = DAILY_DAGS) -> dict[str, set[date]]:
    """The ledger: every day each DAG has succeeded for."""
    done: dict[str, set[date]] = {}
    for dag_id in dag_ids:
        folder = ledger_dir(settings) / dag_id
        files = folder.glob("*.json") if folder.is_dir() else ()
        done[dag_id] = {parse_day(f.stem) for f in files}
    return done


def missing_runs(
    succeeded: Mapping[str, set[date]],
    now: datetime,
    *,
    first_day: date,
    deadline_hours: float,
    lookback_days: int = LOOKBACK_DAYS,
) -> list[MissingRun]:
    """Each (DAG, day) of the last ``lookback_days`` whose deadline is past without a success.

    A day's deadline is the end of that day (UTC) plus ``deadline_hours``; days before
    ``first_day`` (the DAGs' start) are never expected.
    """
    if deadline_hours < 0:
        raise ValueError(f"deadline_hours must be >= 0, got {deadline_hours}")
    grace = timedelta(hours=deadline_hours)
    # the last day due: its end (the next midnight, UTC) plus the grace is at or before now
    last_due = (now.astimezone(UTC) - grace).date() - timedelta(days=1)
    start = max(first_day, last_due - timedelta(days=lookback_days - 1))
    return [
        MissingRun(dag_id, day, end_of_day(day) + grace)
        for day in (day_range(start, last_due) if start <= last_due else ())
        for dag_id, days in succeeded.items()
        if day not in days
    ]


def missing_run_alert(missing: MissingRun, now: datetime) -> Alert:
    late = now - missing.deadline
    hours = round(late.total_seconds() / 3600, 1)
    day = missing.day.isoformat()
    return Alert(
        type="missing_run",
        severity="critical",
        summary=(
            f"{missing.dag_id} has not succeeded for {day}: deadline "
            f"{missing.deadline:%Y-%m-%d %H:%M} UTC passed {hours} h ago"
        ),
        day=missing.day,
        details={
            "dag_id": missing.dag_id,
            "day": day,
            "deadline": missing.deadline.isoformat(),
            "hours_late": hours,
        },
        runbook=(
            f"`personalize status` says what ran last; then `personalize run {missing.dag_id} "
            f"--date {day}` (or the upstream DAG first if its day is missing too)"
        ),
        ts=now,
        key=missing_run_key(missing.dag_id, missing.day),
    )


def missing_run_key(dag_id: str, day: date) -> str:
    return f"missing_run:{dag_id}:{day.isoformat()}"


def check_missing_runs(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Alert every missing run of the last week, resolve those that have succeeded since."""
    from pipelines.alerts.delivery import deliver
    from pipelines.alerts.records import active_conditions, resolve

    now = now or datetime.now(UTC)
    succeeded = succeeded_days(settings)
    missing = missing_runs(
        succeeded,
        now,
        first_day=parse_day(settings.dags_start),
        deadline_hours=settings.run_deadline_hours,
    )
    alerted = []
    for item in missing:
        report = deliver(missing_run_alert(item, now), settings)
        alerted.append({"dag_id": item.dag_id, "day": item.day.isoformat(), "sent": report.sent})
    resolved = []
    for key in active_conditions(settings.alerts_file):
        if not key.startswith("missing_run:"):
            continue
        _, dag_id, day = key.split(":", 2)
        if parse_day(day) in succeeded.get(dag_id, set()):
            closing = resolve(settings.alerts_file, key, now=now, note="the run has succeeded")
            if closing is not None:
                deliver(closing, settings)
                resolved.append(key)
    log.info("missing runs: %d (resolved %d)", len(missing), len(resolved))
    return {"now": now.isoformat(), "missing": alerted, "resolved": resolved}
