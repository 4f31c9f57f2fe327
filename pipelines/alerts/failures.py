"""A DAG task that fails after its retries alerts on-call, through Airflow's own callbacks.

:class:`pipelines.orchestration.notifier.TaskFailureNotifier` (every DAG's
``on_failure_callback``, set in ``dag_defaults``) calls :func:`notify_task_failure` with the task's
context. The decision is :func:`task_failure_alert`, a pure function of what failed: a quarantined
batch already raised its own alert (with the failed checks), so it is not paged twice; a missing
batch is ``missing_data``; anything else is ``task_failed``. Each names the DAG, the task, the
day, the try, the exception's last line and the task log's URL in the Airflow UI, and goes
through the same channels and cool-down as every alert (one key per DAG, task and day).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

from pipelines.alerts.records import Alert

log = logging.getLogger(__name__)

# a batch that failed validation, monitoring without features: their alert is already out
ALREADY_ALERTED = ("BatchQuarantined", "AlertedFailure")
MISSING = ("BatchMissing", "MissingBatchFailure")


def last_line(error: BaseException | str | None) -> str:
    """``"TrainingError: unknown model(s) ..."``: the line a traceback ends with."""
    if error is None:
        return "unknown error (no exception in the task's context)"
    if isinstance(error, str):
        return error.strip().splitlines()[-1] if error.strip() else "unknown error"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1]}" if text else type(error).__name__


def task_failure_alert(
    *,
    dag_id: str,
    task_id: str,
    day: date | None,
    try_number: int | None,
    error: BaseException | str | None,
    log_url: str | None,
) -> Alert | None:
    """The alert for a task that failed for good, or None when it has alerted already."""
    kind = type(error).__name__ if isinstance(error, BaseException) else ""
    if kind in ALREADY_ALERTED:
        return None
    reason = last_line(error)
    on = f" for {day}" if day else ""
    missing = kind in MISSING
    return Alert(
        type="missing_data" if missing else "task_failed",
        severity="critical",
        summary=f"{dag_id}.{task_id} failed{on} (try {try_number}): {reason}",
        day=day,
        table="events" if missing else None,
        details={
            "dag_id": dag_id,
            "task_id": task_id,
            "day": day.isoformat() if day else None,
            "try_number": try_number,
            "exception": reason,
            "log_url": log_url,
        },
        runbook=(
            f"open the task log ({log_url}); fix the cause, then "
            f"`personalize run {dag_id} --date {day}`"
            if day
            else f"open the task log ({log_url})"
        ),
        report=log_url,
        key=f"task_failed:{dag_id}:{task_id}:{day}",
    )


def notify_task_failure(context: Mapping[str, Any]) -> Alert | None:
    """Deliver the alert for the failed task in ``context`` (an Airflow task context)."""
    from pipelines.alerts.delivery import deliver
    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    ti = context.get("ti") or context.get("task_instance")
    try:
        day = day_from_context(context)
    except Exception:  # a run without a day (e.g. a bad conf) still alerts
        day = None
    alert = task_failure_alert(
        dag_id=str(getattr(ti, "dag_id", "?")),
        task_id=str(getattr(ti, "task_id", "?")),
        day=day,
        try_number=getattr(ti, "try_number", None),
        error=context.get("exception"),
        log_url=getattr(ti, "log_url", None),
    )
    if alert is not None:
        report = deliver(alert, get_settings())
        log.info("task failure alert %s: %s", alert.key, report.reason or "sent")
    return alert
