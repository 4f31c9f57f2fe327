"""The watchdog's task bodies, and the ``record_success`` task every daily DAG ends with."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipelines.monitoring.missing_runs import check_missing_runs, record_success


def record_success_for_run(context: Mapping[str, Any]) -> dict[str, str]:
    """The ``record_success`` task of a daily DAG: its day and DAG from the task context."""
    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    ti = context.get("ti") or context.get("task_instance")
    dag_id = str(getattr(ti, "dag_id", "?"))
    day = day_from_context(context)
    run = context.get("run_id")
    path = record_success(get_settings(), dag_id, day, str(run) if run else None)
    return {"dag_id": dag_id, "day": day.isoformat(), "ledger": str(path)}


def check_missing_runs_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """The watchdog task: the clock is the run's own time, so a re-run decides the same."""
    from pipelines.config import get_settings

    moment = context.get("data_interval_end") or context.get("run_after")
    now = moment if isinstance(moment, datetime) else None
    return check_missing_runs(get_settings(), now)
