"""Benchmark: the Feast store — training sets, materialization, online reads.

* ``measure_training_set``: a point-in-time training set of 100k entity rows x propensity_v1
  (target <= 3 s);
* ``measure_materialization``: entity rows/s of user_activity (35 features) into the SQLite
  online store, Feast's own ``materialize`` vs ``online.materialize_interval`` (target >= 20k/s);
* ``measure_online_reads``: p50/p99 ms of propensity_v1 for 1 user (target p99 <= 5 ms) and for
  100 users.

Synthetic offline partitions are written in a temporary state dir (nothing else is touched).

    .venv/bin/python bench/features_store.py [--users 50000 --entity-rows 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record

START = date(2026, 1, 1)
TICK = timedelta(microseconds=1)


def day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def synthetic_table(table: str, ids: list[str], day: date, seed: int) -> Any:
    """A feature table's partition for ``day``: schema columns, plausible values, some nulls."""
    import numpy as np
    import pandas as pd

    from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP

    spec = FEATURE_TABLES[table]
    rng = np.random.default_rng(seed)
    n = len(ids)
    frame: dict[str, Any] = {
        spec.join_key: np.asarray(ids, dtype=object),
        TIMESTAMP: pd.Series([day_end(day)] * n, dtype="datetime64[us, UTC]"),
    }
    categories = np.array([f"category_{k:02d}" for k in range(25)], dtype=object)
    for column in spec.columns:
        if column.dtype == "int64":
            frame[column.name] = rng.poisson(3, n)
        elif column.dtype == "float64":
            values = np.round(rng.gamma(2.0, 20.0, n), 4)
            values[rng.random(n) < 0.1] = np.nan
            frame[column.name] = values
        else:
            values = categories[rng.integers(0, len(categories), n)]
            values[rng.random(n) < 0.05] = None
            frame[column.name] = values
    return pd.DataFrame(frame)


def build_home(home: Path, users: int, days: int, items: int = 2_000, **overrides: Any) -> Any:
    """Offline user_activity and item_popularity for ``days`` days, applied; the settings
    (``overrides``: further settings, e.g. the prod profile's online store on Redis)."""
    from pipelines.config import Settings
    from pipelines.features.offline import write_offline_partition
    from pipelines.features.store import apply_repo

    settings = Settings(home=home, **overrides)
    user_ids = [f"user_{i:07d}" for i in range(users)]
    item_ids = [f"item_{i:05d}" for i in range(items)]
    for k in range(days):
        day = START + timedelta(days=k)
        frame = synthetic_table("user_activity", user_ids, day, seed=k)
        write_offline_partition(settings.feast_offline_dir, "user_activity", day, frame)
        frame = synthetic_table("item_popularity", item_ids, day, seed=1000 + k)
        write_offline_partition(settings.feast_offline_dir, "item_popularity", day, frame)
    apply_repo(settings)
    return settings


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def measure_training_set(
    entity_rows: int = 100_000, users: int = 50_000, days: int = 14
) -> dict[str, Any]:
    """Seconds for a propensity_v1 training set of ``entity_rows`` rows (target <= 3 s)."""
    import numpy as np
    import pandas as pd

    from pipelines.features.store import import_feast
    from pipelines.features.training import training_set

    import_feast()
    with tempfile.TemporaryDirectory() as tmp:
        settings = build_home(Path(tmp) / "home", users, days)
        rng = np.random.default_rng(7)
        span = days * 86_400
        entity_df = pd.DataFrame(
            {
                "user_id": [
                    f"user_{i:07d}" for i in rng.integers(0, int(users * 1.05), entity_rows)
                ],
                "event_timestamp": pd.Timestamp(day_end(START))
                + pd.to_timedelta(rng.integers(0, span, entity_rows), unit="s"),
                "label": rng.integers(0, 2, entity_rows),
            }
        )
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            result = training_set(entity_df, "propensity_v1", settings=settings)
            runs.append(time.perf_counter() - started)
        assert len(result) == entity_rows
    return {
        "entity_rows": entity_rows,
        "offline_rows": users * days,
        "first_s": round(runs[0], 2),
        "warm_s": round(min(runs[1:]), 2),
        "features": result.shape[1] - entity_df.shape[1],
        "target": "<= 3 s",
        "meets_target": min(runs) <= 3.0,
    }


def measure_materialization(users: int = 50_000) -> dict[str, Any]:
    """Entity rows/s of one day of user_activity into SQLite: Feast's path and ours."""
    import sqlite3

    from pipelines.features.online import materialize_interval
    from pipelines.features.schema import FEATURE_TABLES
    from pipelines.features.store import feature_store, import_feast

    import_feast()
    table = "personalize_user_activity"
    with tempfile.TemporaryDirectory() as tmp:
        settings = build_home(Path(tmp) / "home", users, days=2)
        store = feature_store(settings)
        start = day_end(START + timedelta(days=1))
        online_db = settings.feast_online_store["path"]

        def clear() -> None:
            with sqlite3.connect(online_db) as conn:
                conn.execute(f"DELETE FROM {table}")
            with sqlite3.connect(online_db) as conn:
                conn.execute("VACUUM")

        started = time.perf_counter()
        store.materialize(start_date=start, end_date=start, feature_views=["user_activity"])
        feast_s = time.perf_counter() - started
        clear()
        started = time.perf_counter()
        written = materialize_interval(settings, start, start + TICK, ["user_activity"])
        ours_fresh_s = time.perf_counter() - started
        started = time.perf_counter()
        materialize_interval(settings, start, start + TICK, ["user_activity"])
        ours_again_s = time.perf_counter() - started
        # the guard's no-op: an older day over newer values writes nothing
        started = time.perf_counter()
        older = materialize_interval(
            settings, day_end(START), day_end(START) + TICK, ["user_activity"]
        )
        ours_older_s = time.perf_counter() - started
    assert written["user_activity"] == users
    assert older["user_activity"] == 0
    return {
        "users": users,
        "features": len(FEATURE_TABLES["user_activity"].columns),
        "feast_materialize_s": round(feast_s, 2),
        "feast_rows_per_s": round(users / feast_s),
        "ours_fresh_s": round(ours_fresh_s, 2),
        "ours_fresh_rows_per_s": round(users / ours_fresh_s),
        "ours_upsert_s": round(ours_again_s, 2),
        "ours_upsert_rows_per_s": round(users / ours_again_s),
        "ours_older_day_skipped_s": round(ours_older_s, 2),
        "speedup_vs_feast": round(feast_s / min(ours_fresh_s, ours_again_s), 1),
        "target": ">= 20000 rows/s",
        "meets_target": users / min(ours_fresh_s, ours_again_s) >= 20_000,
    }


def measure_online_reads(users: int = 20_000, repeat: int = 1_000) -> dict[str, Any]:
    """p50/p99 of propensity_v1 online reads: 1 user, and 100 users per request."""
    import numpy as np

    from pipelines.features.online import (
        materialize_interval,
        online_feature_values,
        online_features,
    )
    from pipelines.features.store import feature_store, import_feast

    import_feast()
    with tempfile.TemporaryDirectory() as tmp:
        settings = build_home(Path(tmp) / "home", users, days=1)
        materialize_interval(settings, day_end(START), day_end(START) + TICK)
        store = feature_store(settings)
        service = store.get_feature_service("propensity_v1", allow_cache=True)
        rng = np.random.default_rng(11)
        ids = [f"user_{i:07d}" for i in range(users)]

        def one() -> list[str]:
            return [ids[rng.integers(0, users)]]

        def hundred() -> list[str]:
            return [ids[i] for i in rng.integers(0, users, 100)]

        result = {
            "one_user_dict": timed(
                lambda: online_feature_values(settings, one(), "propensity_v1"), repeat
            ),
            "one_user_frame": timed(
                lambda: online_features(settings, one(), "propensity_v1"), repeat
            ),
            "one_user_feast_to_dict": timed(
                lambda: store.get_online_features(
                    features=service, entity_rows={"user_id": one()}
                ).to_dict(),
                repeat,
            ),
            "hundred_users_dict": timed(
                lambda: online_feature_values(settings, hundred(), "propensity_v1"), repeat // 5
            ),
            "hundred_users_frame": timed(
                lambda: online_features(settings, hundred(), "propensity_v1"), repeat // 5
            ),
        }
    p99 = result["one_user_dict"]["p99_ms"]
    return {
        "users_online": users,
        **result,
        "target": "p99 <= 5 ms for 1 user x propensity_v1",
        "meets_target": p99 <= 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    args = parser.parse_args()

    started = time.perf_counter()
    result = {
        "training_set": measure_training_set(entity_rows=args.entity_rows, users=args.users),
        "materialization": measure_materialization(users=args.users),
        "online_reads": measure_online_reads(),
    }
    record("features_store", {**result, "wall_s": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
