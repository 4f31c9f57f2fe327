"""The features DAG's task bodies: the day comes from the run, the work from the modules beside.

compute the day's features (offline partition, atomically; numpy in process or Spark, as
``settings.feature_engine`` says) -> apply the Feast repo (idempotent) -> materialize only the
interval, with a small overlap for late data -> announce the day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.config import Settings, get_settings
from pipelines.days import day_from_context, end_of_day

MATERIALIZE_OVERLAP_DAYS = 1


def materialize_window(
    day: date, overlap_days: int = MATERIALIZE_OVERLAP_DAYS
) -> tuple[datetime, datetime]:
    """[start, end) covering the stamp of day D (its end) and the ``overlap_days`` before it."""
    stamp = end_of_day(day)
    return stamp - timedelta(days=overlap_days), stamp + timedelta(microseconds=1)


def compute_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    settings, day = get_settings(), day_from_context(context)
    paths = compute_day(settings, day)
    return {
        "day": day.isoformat(),
        "engine": settings.feature_engine,
        "partitions": {k: str(v) for k, v in paths.items()},
    }


def compute_day(settings: Settings, day: date) -> dict[str, Path]:
    """The day's feature partitions, computed by the engine the settings name (same output)."""
    if settings.feature_engine == "spark":
        from pipelines.features.spark import compute_features_for_day
    else:
        from pipelines.features.offline import compute_features_for_day
    return compute_features_for_day(settings, day)


def apply_for_run() -> None:
    from pipelines.features.store import apply_repo

    apply_repo(get_settings())


def materialize_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    settings, day = get_settings(), day_from_context(context)
    return materialize_day(settings, day)


def materialize_day(settings: Settings, day: date) -> dict[str, Any]:
    from pipelines.features.online import materialize_interval

    start, end = materialize_window(day)
    written = materialize_interval(settings, start, end)
    return {
        "day": day.isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": written,
    }


def features_event_extra(context: Mapping[str, Any]) -> dict[str, Any]:
    return {"day": day_from_context(context).isoformat()}


def day_report(settings: Settings, day: date) -> list[str]:
    """What the features run of ``day`` left behind, for ``personalize run/backfill``."""
    import pyarrow.parquet as pq

    from pipelines.data.partitions import partition_dir
    from pipelines.features.schema import FEATURE_TABLES

    lines = []
    for table in FEATURE_TABLES:
        path = partition_dir(settings.feast_offline_dir, table, day) / "part-0.parquet"
        if path.exists():
            rows = pq.ParquetFile(path).metadata.num_rows
            lines.append(f"features {day}: {table} {rows:,} rows offline — {path}")
    return lines or [f"features {day}: no offline partition (run ingest for {day} first)"]
