"""Airflow's notifier interface for the platform's alerts (``on_failure_callback``)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier


class TaskFailureNotifier(BaseNotifier):
    """Alerts on-call when a task fails after its retries (pipelines/monitoring/failures.py)."""

    template_fields = ()

    def notify(self, context: Any) -> None:
        from pipelines.monitoring.failures import notify_task_failure

        notify_task_failure(context)
