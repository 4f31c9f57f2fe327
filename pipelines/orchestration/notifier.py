"""Airflow's notifier interface for the platform's alerts (``on_failure_callback``)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException


class TaskFailureNotifier(BaseNotifier):
    """Alerts on-call when a task fails after its retries (pipelines/alerts/failures.py)."""

    template_fields = ()

    def notify(self, context: Any) -> None:
        from pipelines.alerts.failures import notify_task_failure

        notify_task_failure(context)


class AlertedFailure(AirflowFailException):
    """Fail the task now (no retry) without a second page: its alert is out already (a
    quarantined batch, monitoring that found no features)."""


class MissingBatchFailure(AirflowFailException):
    """Fail the task now: the day's batch is not there. Paged as ``missing_data``."""
