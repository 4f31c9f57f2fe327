"""What every daily DAG of the platform shares: its UTC start and its retry policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.config import Settings


def dag_defaults(settings: Settings) -> dict[str, Any]:
    """``start_date`` and ``default_args`` for ``@dag(...)``, from the settings."""
    return {
        "start_date": datetime.fromisoformat(settings.dags_start).replace(tzinfo=UTC),
        "default_args": {
            "owner": "personalize",
            "retries": settings.task_retries,
            "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        },
    }
