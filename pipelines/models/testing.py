"""A generated shop held in memory, with its daily feature tables: data for model tests.

``synthetic_shop(home, spec)`` writes a shop with :func:`pipelines.data.generator.generate`, reads
its (clean) landing batches back as if curated, and computes ``user_activity`` and
``item_popularity`` for every day with the same pure functions the features DAG uses — without
Airflow or Feast, so model tests and benchmarks get realistic frames in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.data import contract
from pipelines.data.generator import ShopSpec, generate
from pipelines.data.partitions import parquet_files, partition_dir

if TYPE_CHECKING:
    from pipelines.config import Settings


@dataclass(frozen=True)
class ShopData:
    spec: ShopSpec
    truth_dir: Path
    days: list[date]
    events: pd.DataFrame  # every day's events, in day order
    users: pd.DataFrame  # one row per user (latest batch wins)
    items: pd.DataFrame  # one row per item (latest batch wins)
    user_activity: pd.DataFrame  # one row per known user per day, stamped event_timestamp
    item_popularity: pd.DataFrame  # one row per known item per day


def landing_frames(
    settings: Settings, days: list[date]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(events, users, items)`` of a generated shop's landing batches, typed as the contract
    says (one row per user and item, the latest batch winning)."""
    from pipelines.features.offline import _read_files

    def read(spec_table: contract.Table) -> pd.DataFrame:
        files = [
            f
            for d in days
            for f in parquet_files(partition_dir(settings.landing_dir, spec_table.name, d))
        ]
        return _read_files(files, spec_table, tuple(spec_table.column_names))

    events = read(contract.EVENTS)
    users = read(contract.USERS).drop_duplicates("user_id", keep="last").reset_index(drop=True)
    items = read(contract.ITEMS).drop_duplicates("item_id", keep="last").reset_index(drop=True)
    return events, users, items


def synthetic_shop(home: Path, spec: ShopSpec) -> ShopData:
    from pipelines.config import Settings

    settings = Settings(home=home)
    settings.ensure_dirs()
    generate(spec, settings)
    days = [spec.start + timedelta(days=i) for i in range(spec.days)]

    events, users, items = landing_frames(settings, days)
    activity, popularity = daily_features(events, users, items, days)
    return ShopData(
        spec=spec,
        truth_dir=settings.truth_dir,
        days=days,
        events=events,
        users=users,
        items=items,
        user_activity=activity,
        item_popularity=popularity,
    )


def daily_features(
    events: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, days: Sequence[date]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``user_activity`` and ``item_popularity`` of every one of ``days`` (consecutive), computed
    as the features DAG does day after day (recency carried over)."""
    from pipelines.features.compute import HISTORY_DAYS, item_popularity, user_activity

    activity, popularity, previous = [], [], None
    stamps = events["event_ts"]
    for day in days:
        start = pd.Timestamp(day - timedelta(days=HISTORY_DAYS - 1), tz="UTC")
        end = pd.Timestamp(day + timedelta(days=1), tz="UTC")
        window = events[(stamps >= start) & (stamps < end)]
        previous = user_activity(window, users, items, day, previous=previous)
        activity.append(previous)
        popularity.append(item_popularity(window, items, day))
    return pd.concat(activity, ignore_index=True), pd.concat(popularity, ignore_index=True)


def curated_shop(settings: Settings, spec: ShopSpec, upto: date | None = None) -> list[date]:
    """Generate ``spec`` into ``settings``' state dir as if ingest and features had run.

    The landing batches are copied to curated partitions (with a ``_validation.json`` naming a
    stand-in GX run) and the day's features are computed into the offline store, in day order;
    the Feast repo is applied. For tests of training and monitoring that need a filled state dir
    but not the ingest DAG runs that would fill it (those have their own tests). With ``upto``,
    only the days up to it are curated; the later ones stay in landing for the DAGs.
    """
    import json

    from pipelines.data.partitions import write_partition
    from pipelines.features.offline import compute_features_for_day
    from pipelines.features.store import apply_repo
    from pipelines.validation.ingest import VALIDATION_FILE

    settings.ensure_dirs()
    generate(spec, settings)
    days = [spec.start + timedelta(days=i) for i in range(spec.days)]
    days = [day for day in days if upto is None or day <= upto]
    for day in days:
        for table in (contract.EVENTS, contract.USERS, contract.ITEMS):
            files = parquet_files(partition_dir(settings.landing_dir, table.name, day))
            if not files:
                continue
            from pipelines.features.offline import _read_files

            frame = _read_files(files, table, tuple(table.column_names))
            target = write_partition(
                contract.to_arrow(frame, table),
                settings.curated_dir,
                table.name,
                day,
                "part-0.parquet",
            )
            (target.parent / VALIDATION_FILE).write_text(
                json.dumps({"gx_run_id": f"test-{table.name}-{day}", "success": True})
            )
        compute_features_for_day(settings, day)
    apply_repo(settings)
    return days
