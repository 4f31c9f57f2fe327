"""The ``ingest`` DAG's task bodies: wait for the day's events, then validate each table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.data.partitions import partition_dir
from pipelines.validation.ingest import batch_landed, ingest_table


def ingest_for_run(table: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The task body of ``dags/ingest.py``: the day comes from the run."""
    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    return ingest_table(get_settings(), table, day_from_context(context)).to_xcom()


def events_landed_for_run(context: Mapping[str, Any]) -> bool:
    """The sensor's poke: logs where it looks, so a timeout in the log says what was missing."""
    import logging

    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    settings, day = get_settings(), day_from_context(context)
    landed = batch_landed(settings, "events", day)
    if not landed:
        logging.getLogger(__name__).info(
            "waiting for %s/*.parquet", partition_dir(settings.landing_dir, "events", day)
        )
    return landed
