"""What every DAG of the platform shares: its UTC start, its retry policy, its failure alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.config import Settings
from pipelines.orchestration.airflow_env import DEFAULT_QUEUE, HEAVY_QUEUE

__all__ = ["HEAVY_QUEUE", "dag_defaults"]


def dag_defaults(settings: Settings) -> dict[str, Any]:
    """``start_date`` and ``default_args`` for ``@dag(...)``, from the settings.

    Every task alerts on-call when it fails after its retries (Airflow's own callback). Tasks go
    to the Celery queue ``default``; the heavy ones (training, drift) say ``queue=HEAVY_QUEUE``
    (the LocalExecutor ignores queues).
    """
    from pipelines.orchestration.notifier import TaskFailureNotifier

    return {
        "start_date": datetime.fromisoformat(settings.dags_start).replace(tzinfo=UTC),
        "default_args": {
            "owner": "personalize",
            "queue": DEFAULT_QUEUE,
            "retries": settings.task_retries,
            "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
            "on_failure_callback": [TaskFailureNotifier()],
        },
    }
