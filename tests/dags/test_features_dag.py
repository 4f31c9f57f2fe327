"""The features DAG on real Airflow and a real Feast store, set off by ingest's asset event.

Shares the session's Airflow and state dir with the ingest tests, on days of its own.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data.generator import ShopSpec, generate
from pipelines.data.partitions import partition_dir
from pipelines.orchestration import backfill, run_dag

START = date(2026, 6, 1)
DAYS = 6
LAST = START + timedelta(days=DAYS - 1)


def land_shop_with_own_ids(settings: Settings, scratch: Path, prefix: str) -> None:
    """Generate a shop and land it with ids of its own: the session's state dir is shared with
    the ingest tests, whose users must not look like ours ("already loaded on another day")."""
    import pyarrow.compute as pc

    generate(ShopSpec(users=400, items=80, days=DAYS, seed=33, start=START), Settings(home=scratch))
    for source in sorted((scratch / "landing").rglob("*.parquet")):
        table = pq.read_table(source)
        for column in ("user_id", "item_id"):
            if column in table.column_names:
                position = table.schema.get_field_index(column)
                prefixed = pc.binary_join_element_wise(prefix, table[column], "")
                table = table.set_column(position, column, prefixed)
        target = settings.landing_dir / source.relative_to(scratch / "landing")
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)


@pytest.fixture(scope="module")
def featured(
    airflow_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, list]:
    land_shop_with_own_ids(airflow_settings, tmp_path_factory.mktemp("features-shop"), "f-")
    records = backfill(airflow_settings, "ingest", START, LAST, follow=True)
    return airflow_settings, records


def offline_partition(settings: Settings, table: str, day: date) -> Path:
    return partition_dir(settings.feast_offline_dir, table, day) / "part-0.parquet"


def test_ingest_sets_off_features_for_the_same_day(featured: tuple[Settings, list]) -> None:
    settings, records = featured
    assert [(r.dag_id, r.day, r.state) for r in records] == [
        (dag_id, START + timedelta(days=i), "success")
        for i in range(DAYS)
        for dag_id in ("ingest", "features")
    ]
    features_runs = [r for r in records if r.dag_id == "features"]
    assert all(r.asset_events[0][0] == "personalize://features" for r in features_runs)
    assert [r.asset_events[0][1]["day"] for r in features_runs] == [
        (START + timedelta(days=i)).isoformat() for i in range(DAYS)
    ]
    for day in (START, LAST):
        assert offline_partition(settings, "user_activity", day).is_file()
        assert offline_partition(settings, "item_popularity", day).is_file()


def test_online_store_holds_the_last_days_offline_features_for_every_user(
    featured: tuple[Settings, list],
) -> None:
    from pipelines.features.online import online_features

    settings, _ = featured
    offline = pq.read_table(offline_partition(settings, "user_activity", LAST)).to_pandas()
    online = online_features(settings, offline.user_id.tolist(), "propensity_v1")
    merged = offline.merge(online, on="user_id", suffixes=("", "_online"))
    assert len(merged) == len(offline) > 0
    for column in ("views_30d", "purchases_7d", "spend_30d", "days_since_last_event"):
        both = merged[[column, f"{column}_online"]].dropna()
        assert (both[column] == both[f"{column}_online"]).all(), column


def test_rerunning_an_older_day_changes_nothing_and_keeps_newer_online_values(
    featured: tuple[Settings, list],
) -> None:
    from pipelines.features.online import online_features

    settings, _ = featured
    older = LAST - timedelta(days=2)
    path = offline_partition(settings, "user_activity", older)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    sample = pq.read_table(offline_partition(settings, "user_activity", LAST)).to_pandas()
    ids = sample.user_id.head(50).tolist()
    online_before = online_features(settings, ids, "propensity_v1")

    [record] = run_dag(settings, "features", older)
    assert record.state == "success"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    online_after = online_features(settings, ids, "propensity_v1")
    assert online_after.equals(online_before), "an older day never overwrites newer values"
