"""What every DAG of the platform shares: its UTC start, its retry policy, its failure alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.config import Settings


def dag_defaults(settings: Settings) -> dict[str, Any]:
    """``start_date`` and ``default_args`` for ``@dag(...)``, from the settings.

    Every task alerts on-call when it fails after its retries (Airflow's own callback).
    """
    from pipelines.orchestration.notifier import TaskFailureNotifier

    return {
        "start_date": datetime.fromisoformat(settings.dags_start).replace(tzinfo=UTC),
        "default_args": {
            "owner": "personalize",
            "retries": settings.task_retries,
            "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
            "on_failure_callback": [TaskFailureNotifier()],
        },
    }
