"""Reading the curated window and writing offline-store partitions."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.generator import ShopSpec, generate
from pipelines.data.partitions import (
    parquet_files,
    partition_days,
    partition_dir,
    read_partition,
    write_partition,
)
from pipelines.features.compute import user_activity
from pipelines.features.offline import (
    FeaturesError,
    compute_features_for_day,
    read_curated_window,
    write_offline_partition,
)
from pipelines.features.schema import FEATURE_TABLES

START = date(2026, 1, 1)


def midday(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def land_event(curated: Path, day: date, user: str = "u1", item: str = "i1") -> None:
    """A curated events partition for ``day`` holding one view, plus a lineage file."""
    frame = pd.DataFrame(
        {
            "event_id": [f"e-{day.isoformat()}-{user}"],
            "user_id": [user],
            "item_id": [item],
            "event_type": ["view"],
            "event_ts": [midday(day)],
            "session_id": [f"s-{day.isoformat()}"],
            "price": [9.5],
            "quantity": [1],
            "device": ["web"],
        }
    )
    path = write_partition(contract.to_arrow(frame, contract.EVENTS), curated, "events", day)
    (path.parent / "_validation.json").write_text("{}")


def land_users(curated: Path, day: date, *rows: tuple[str, datetime, str]) -> None:
    frame = pd.DataFrame(
        {
            "user_id": [user for user, _, _ in rows],
            "signup_ts": [signup for _, signup, _ in rows],
            "country": [country for _, _, country in rows],
            "age_band": ["25-34"] * len(rows),
            "consent_personalization": [True] * len(rows),
        }
    )
    write_partition(contract.to_arrow(frame, contract.USERS), curated, "users", day)


def land_items(curated: Path, day: date, *items: str) -> None:
    frame = pd.DataFrame(
        {
            "item_id": list(items),
            "category": ["books"] * len(items),
            "brand": ["b"] * len(items),
            "price": [9.5] * len(items),
            "launched_ts": [midday(day)] * len(items),
        }
    )
    write_partition(contract.to_arrow(frame, contract.ITEMS), curated, "items", day)


def test_the_window_reads_only_its_thirty_days(tmp_path: Path) -> None:
    curated = tmp_path / "curated"
    days = [START + timedelta(days=i) for i in range(40)]
    for day in days:
        land_event(curated, day)
    day = days[34]
    events, _, _ = read_curated_window(curated, day)
    seen = sorted(events["event_ts"].dt.date.unique())
    assert seen == days[5:35]
    assert len(events) == 30
    assert str(events["event_ts"].dtype) == "datetime64[us, UTC]"


def test_users_and_items_are_the_latest_rows_up_to_the_day(tmp_path: Path) -> None:
    curated = tmp_path / "curated"
    signup = midday(START)
    land_users(curated, START, ("u1", signup, "US"), ("u2", signup, "DE"))
    land_users(curated, START + timedelta(days=2), ("u1", signup, "GB"))  # a correction
    land_users(curated, START + timedelta(days=5), ("u3", midday(START + timedelta(5)), "FR"))
    land_items(curated, START, "i1")
    land_items(curated, START + timedelta(days=5), "i2")

    _, users, items = read_curated_window(curated, START + timedelta(days=1))
    assert dict(zip(users["user_id"], users["country"], strict=True)) == {"u1": "US", "u2": "DE"}
    _, users, items = read_curated_window(curated, START + timedelta(days=4))
    assert dict(zip(users["user_id"], users["country"], strict=True)) == {"u1": "GB", "u2": "DE"}
    assert items["item_id"].tolist() == ["i1"]


def small_activity() -> pd.DataFrame:
    users = pd.DataFrame(
        {
            "user_id": ["b", "a"],
            "signup_ts": pd.to_datetime(["2025-01-01", "2025-06-01"], utc=True),
        }
    )
    items = pd.DataFrame({"item_id": ["i1"], "category": ["books"]})
    events = pd.DataFrame(
        {
            "user_id": ["a"],
            "item_id": ["i1"],
            "event_type": ["purchase"],
            "event_ts": pd.to_datetime(["2026-01-05 10:00"], utc=True),
            "session_id": ["s1"],
            "price": [5.0],
            "quantity": [2],
            "device": ["ios"],
        }
    )
    return user_activity(events, users, items, date(2026, 1, 5))


def test_writing_twice_gives_identical_bytes_and_feast_types(tmp_path: Path) -> None:
    frame = small_activity()
    day = date(2026, 1, 5)
    first = write_offline_partition(tmp_path, "user_activity", day, frame).read_bytes()
    path = write_offline_partition(tmp_path, "user_activity", day, frame.copy())
    assert path == partition_dir(tmp_path, "user_activity", day) / "part-0.parquet"
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.parent.iterdir()] == ["date=2026-01-05"]

    schema = pq.read_schema(path)
    spec = FEATURE_TABLES["user_activity"]
    assert schema.names == ["user_id", "event_timestamp", *spec.feature_names]
    assert schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("user_id").type == pa.string()
    assert schema.field("views_30d").type == pa.int64()
    assert schema.field("top_category_1").type == pa.string()
    back = read_partition(tmp_path, "user_activity", day)
    pd.testing.assert_frame_equal(back, frame)


def test_a_frame_without_the_schema_columns_is_refused(tmp_path: Path) -> None:
    frame = small_activity().drop(columns=["views_1d"])
    with pytest.raises(FeaturesError, match=r"views_1d.*schema\.py"):
        write_offline_partition(tmp_path, "user_activity", date(2026, 1, 5), frame)
    with pytest.raises(FeaturesError, match="unknown feature table"):
        write_offline_partition(tmp_path, "user_actvity", date(2026, 1, 5), small_activity())
    assert not (tmp_path / "user_activity").exists()


def test_a_missing_events_partition_is_named(settings: Settings) -> None:
    land_event(settings.curated_dir, START)
    day = START + timedelta(days=1)
    with pytest.raises(FeaturesError, match="run ingest --date 2026-01-02") as error:
        compute_features_for_day(settings, day)
    assert str(partition_dir(settings.curated_dir, "events", day)) in str(error.value)


def test_recency_carries_over_from_the_previous_offline_partition(settings: Settings) -> None:
    long_ago = datetime(2025, 1, 1, tzinfo=UTC)
    land_users(settings.curated_dir, START, ("quiet", long_ago, "US"), ("u1", long_ago, "US"))
    land_items(settings.curated_dir, START, "i1")
    day = START + timedelta(days=60)
    land_event(settings.curated_dir, day)
    yesterday = small_activity().assign(
        user_id=["quiet", "u1"],
        event_timestamp=pd.Timestamp(day, tz="UTC").as_unit("us"),
        days_since_last_event=[50.0, 1.0],
    )
    write_offline_partition(
        settings.feast_offline_dir, "user_activity", day - timedelta(days=1), yesterday
    )
    paths = compute_features_for_day(settings, day)
    out = pd.read_parquet(paths["user_activity"]).set_index("user_id")
    assert out.loc["quiet", "days_since_last_event"] == pytest.approx(51.0)
    assert out.loc["u1", "days_since_last_event"] == pytest.approx(0.5)  # today's view wins


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A generated shop whose landing batches are taken as curated as they are."""
    settings = Settings(home=tmp_path_factory.mktemp("shop"))
    generate(ShopSpec(users=300, items=60, days=10, seed=5, start=START), settings)
    shutil.copytree(settings.landing_dir, settings.curated_dir)
    return settings


def test_a_day_of_a_generated_shop(shop: Settings) -> None:
    day = START + timedelta(days=8)
    end = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    paths = compute_features_for_day(shop, day)
    assert set(paths) == {"user_activity", "item_popularity"}

    users = pd.concat(read_partition(shop.curated_dir, "users", d) for d in days_until(shop, day))
    items = pd.concat(read_partition(shop.curated_dir, "items", d) for d in days_until(shop, day))
    known_users = users.loc[users["signup_ts"] < end, "user_id"].nunique()
    launched = items["launched_ts"]
    known_items = items.loc[launched.isna() | (launched < end), "item_id"].nunique()
    activity = pd.read_parquet(paths["user_activity"])
    popularity = pd.read_parquet(paths["item_popularity"])
    assert len(activity) == known_users < len(pd.concat(read_all(shop, "users")))
    assert len(popularity) == known_items
    assert (activity["event_timestamp"] == end).all()

    events = read_partition(shop.curated_dir, "events", day)
    assert activity["views_1d"].sum() == (events["event_type"] == "view").sum()
    assert popularity["item_purchases_1d"].sum() == (events["event_type"] == "purchase").sum()

    again = compute_features_for_day(shop, day)
    assert again["user_activity"].read_bytes() == paths["user_activity"].read_bytes()


def days_until(settings: Settings, day: date) -> list[date]:
    return [d for d in partition_days(settings.curated_dir, "users") if d <= day]


def read_all(settings: Settings, table: str) -> list[pd.DataFrame]:
    return [
        pd.read_parquet(f)
        for d in partition_days(settings.curated_dir, table)
        for f in parquet_files(partition_dir(settings.curated_dir, table, d))
    ]
