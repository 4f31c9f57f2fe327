"""The features DAG on real Airflow and a real Feast store, set off by ingest's asset event.

Shares the session's Airflow and state dir with the ingest tests, on days of its own.
"""

from __future__ import annotations

import hashlib
import math
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
    # features follows ingest, and monitor follows features (nothing to watch: no champions)
    assert [(r.dag_id, r.day, r.state) for r in records] == [
        (dag_id, START + timedelta(days=i), "success")
        for i in range(DAYS)
        for dag_id in ("ingest", "features", "monitor")
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


HAND_DAY = date(2026, 8, 3)


def write_curated(settings: Settings, table: str, day: date, rows: list[dict]) -> None:
    import pandas as pd

    from pipelines.data import contract
    from pipelines.data.partitions import write_partition

    frame = pd.DataFrame(rows)
    spec = contract.table(table)
    for column in spec.columns:
        if column.kind == "timestamp":
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True).astype(
                "datetime64[us, UTC]"
            )
    write_partition(contract.to_arrow(frame, spec), settings.curated_dir, table, day)


def test_hand_made_events_give_hand_computed_online_features(airflow_settings: Settings) -> None:
    from pipelines.features.online import online_features

    settings = airflow_settings
    write_curated(
        settings,
        "users",
        HAND_DAY - timedelta(days=4),
        [
            {
                "user_id": "h-1",
                "signup_ts": "2026-07-01T08:00Z",
                "country": "DE",
                "age_band": "25-34",
                "consent_personalization": True,
            },
            {
                "user_id": "h-2",
                "signup_ts": "2026-07-02T08:00Z",
                "country": "FR",
                "age_band": None,
                "consent_personalization": False,
            },
        ],
    )
    write_curated(
        settings,
        "items",
        HAND_DAY - timedelta(days=4),
        [
            {
                "item_id": "hi-1",
                "category": "toys",
                "brand": "b",
                "price": 10.0,
                "launched_ts": "2026-07-01T00:00Z",
            },
            {
                "item_id": "hi-2",
                "category": "books",
                "brand": "b",
                "price": 20.0,
                "launched_ts": "2026-07-01T00:00Z",
            },
        ],
    )

    def event(n: int, kind: str, ts: str, item: str, price: float | None, qty: int = 1) -> dict:
        return {
            "event_id": f"h-e{n}",
            "user_id": "h-1",
            "item_id": item,
            "event_type": kind,
            "event_ts": ts,
            "session_id": f"h-s-{ts[:10]}",
            "price": price,
            "quantity": qty,
            "device": "ios",
        }

    write_curated(
        settings,
        "events",
        HAND_DAY - timedelta(days=4),
        [
            event(1, "view", "2026-07-30T12:00Z", "hi-2", 20.0),
        ],
    )
    write_curated(
        settings,
        "events",
        HAND_DAY,
        [
            event(2, "view", "2026-08-03T10:00Z", "hi-1", 10.0),
            event(3, "add_to_cart", "2026-08-03T10:01Z", "hi-1", 10.0, 2),
            event(4, "purchase", "2026-08-03T10:05Z", "hi-1", 10.0, 2),
        ],
    )

    [record] = run_dag(settings, "features", HAND_DAY)
    assert record.state == "success", record

    online = online_features(settings, ["h-1", "h-2"], "propensity_v1").set_index("user_id")
    active, quiet = online.loc["h-1"], online.loc["h-2"]
    assert (active.views_1d, active.views_7d, active.views_30d) == (1, 2, 2)
    assert (active.carts_1d, active.purchases_1d, active.purchases_30d) == (1, 1, 1)
    assert active.spend_1d == pytest.approx(20.0)  # price x quantity
    assert active.avg_order_value_30d == pytest.approx(20.0)
    assert active.view_to_cart_rate_30d == pytest.approx(0.5)
    assert active.cart_to_purchase_rate_30d == pytest.approx(1.0)
    assert active.days_since_last_purchase == pytest.approx((24 - 10 - 5 / 60) / 24)
    assert active.sessions_30d == 2 and active.distinct_categories_30d == 2
    assert (active.top_category_1, active.top_category_1_share) == ("toys", pytest.approx(0.75))
    assert active.device_share_ios_30d == pytest.approx(1.0)
    assert quiet.views_30d == 0 and quiet.purchases_30d == 0
    assert quiet.days_since_last_event is None or math.isnan(quiet.days_since_last_event)
