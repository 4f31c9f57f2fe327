"""The online store through the real Feast store: materialize, guard, read, push."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.features import store as feast_store
from pipelines.features.offline import write_offline_partition
from pipelines.features.online import (
    OnlineServiceReader,
    OnlineStoreError,
    materialize_interval,
    online_feature_values,
    online_features,
    push_realtime,
)
from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP, USER_ACTIVITY
from pipelines.features.testing import feature_frame

DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)
STAMP1 = datetime(2026, 1, 2, tzinfo=UTC)  # end of DAY1
STAMP2 = datetime(2026, 1, 3, tzinfo=UTC)  # end of DAY2
TICK = timedelta(microseconds=1)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """u1, u2 have days 1 and 2; u3 only day 1; items i1, i2 day 1."""
    return build_settings(tmp_path)


@pytest.fixture
def stock_sqlite_settings(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """``settings`` with Feast's own SQLite online store (one row per entity and feature)."""
    feast_store.clear_store_cache()
    monkeypatch.setattr(
        Settings,
        "feast_online_store",
        property(lambda self: {"type": "sqlite", "path": str(self.feast_dir / "online.db")}),
    )
    yield build_settings(tmp_path)
    feast_store.clear_store_cache()


SERVICE = "propensity_v1"


def build_settings(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    offline = settings.feast_offline_dir
    write_offline_partition(
        offline,
        "user_activity",
        DAY1,
        feature_frame("user_activity", ["u1", "u2", "u3"], DAY1, 100),
    )
    write_offline_partition(
        offline, "user_activity", DAY2, feature_frame("user_activity", ["u1", "u2"], DAY2, 200)
    )
    write_offline_partition(
        offline, "item_popularity", DAY1, feature_frame("item_popularity", ["i1", "i2"], DAY1, 500)
    )
    feast_store.apply_repo(settings)
    return settings


def offline_row(table: str, ids: list[str], day: date, base: int, entity: str) -> dict:
    frame = feature_frame(table, ids, day, base)
    return frame.set_index(FEATURE_TABLES[table].join_key).loc[entity].to_dict()


def assert_served(served: pd.Series, expected: dict) -> None:
    for column in USER_ACTIVITY:
        got, want = served[column.name], expected[column.name]
        if want is None or (isinstance(want, float) and math.isnan(want)):
            assert got is None or (isinstance(got, float) and math.isnan(got)), column.name
        else:
            assert got == want, column.name


def test_online_store_serves_the_latest_offline_row_of_the_interval(settings: Settings) -> None:
    written = materialize_interval(settings, STAMP1, STAMP2 + TICK)

    assert written == {
        "user_activity": 3,
        "item_popularity": 2,
        "user_segment": 0,
        "user_recommendations": 0,
    }
    served = online_features(settings, ["u1", "u2", "u3", "ghost"], SERVICE).set_index("user_id")
    assert_served(served.loc["u1"], offline_row("user_activity", ["u1", "u2"], DAY2, 200, "u1"))
    assert_served(served.loc["u2"], offline_row("user_activity", ["u1", "u2"], DAY2, 200, "u2"))
    assert_served(
        served.loc["u3"], offline_row("user_activity", ["u1", "u2", "u3"], DAY1, 100, "u3")
    )
    assert served.loc["ghost", [c.name for c in USER_ACTIVITY]].isna().all()


def test_rows_stamped_outside_the_interval_are_not_written(settings: Settings) -> None:
    written = materialize_interval(settings, STAMP1, STAMP2, tables=["user_activity"])

    assert written == {"user_activity": 3}
    assert online_features(settings, ["u1"], SERVICE)["views_1d"].tolist() == [100]


def test_an_older_interval_never_overwrites_newer_online_values(settings: Settings) -> None:
    materialize_interval(settings, STAMP2, STAMP2 + TICK, tables=["user_activity"])

    written = materialize_interval(settings, STAMP1, STAMP1 + TICK, tables=["user_activity"])

    assert written == {"user_activity": 1}  # only u3, who has nothing newer online
    served = online_features(settings, ["u1", "u2", "u3"], SERVICE).set_index("user_id")
    assert served["views_1d"].to_dict() == {"u1": 200, "u2": 201, "u3": 102}
    assert served.loc["u1", "top_category_1"] == "top_category_1-200"


def test_the_same_day_materialized_again_replaces_its_values(settings: Settings) -> None:
    """Late data: the day is recomputed (same stamp) and materialized again."""
    materialize_interval(settings, STAMP2, STAMP2 + TICK, tables=["user_activity"])
    recomputed = feature_frame("user_activity", ["u1", "u2"], DAY2, 300)
    write_offline_partition(settings.feast_offline_dir, "user_activity", DAY2, recomputed)

    materialize_interval(settings, STAMP2, STAMP2 + TICK, tables=["user_activity"])

    assert online_features(settings, ["u1", "u2"], SERVICE)["views_1d"].tolist() == [
        300,
        301,
    ]


def test_our_rows_are_the_rows_feasts_own_materialize_writes(settings: Settings) -> None:
    """Feast's generic path (``materialize`` -> ``online_write_batch``) of the entity-row store
    and our bulk writer store the same bytes, and Feast serves them back."""
    store = feast_store.feature_store(settings)
    online_db = settings.feast_online_store["path"]
    query = (
        "SELECT entity_key, event_ts, created_ts, features "
        "FROM personalize_user_activity ORDER BY entity_key"
    )
    store.materialize(start_date=STAMP1, end_date=STAMP2, feature_views=["user_activity"])
    feasts_served = online_features(settings, ["u1", "u2", "u3"], SERVICE)
    with sqlite3.connect(online_db) as conn:
        feasts = conn.execute(query).fetchall()
        conn.execute("DELETE FROM personalize_user_activity")

    materialize_interval(settings, STAMP1, STAMP2 + TICK, tables=["user_activity"])

    with sqlite3.connect(online_db) as conn:
        ours = conn.execute(query).fetchall()
    assert len(ours) == 3
    assert [row[:2] for row in ours] == [row[:2] for row in feasts]
    assert [row[3] for row in ours] == [row[3] for row in feasts]
    micros = {int(stamp.timestamp()) * 1_000_000 for stamp in (STAMP1, STAMP2)}
    assert {row[1] for row in ours} == micros  # UTC microseconds
    served = online_features(settings, ["u1", "u2", "u3"], SERVICE).set_index("user_id")
    pd.testing.assert_frame_equal(served, feasts_served.set_index("user_id"))
    for i, user in enumerate(["u1", "u2", "u3"]):
        expected = (
            offline_row("user_activity", ["u1", "u2"], DAY2, 200, user)
            if i < 2
            else (offline_row("user_activity", ["u1", "u2", "u3"], DAY1, 100, user))
        )
        assert_served(served.loc[user], expected)


def test_on_feasts_own_sqlite_store_our_rows_are_byte_identical_to_its_materialize(
    stock_sqlite_settings: Settings,
) -> None:
    settings = stock_sqlite_settings
    store = feast_store.feature_store(settings)
    online_db = settings.feast_online_store["path"]
    query = (
        "SELECT entity_key, feature_name, value, value_text, event_ts, created_ts "
        "FROM personalize_user_activity ORDER BY entity_key, feature_name"
    )
    store.materialize(start_date=STAMP1, end_date=STAMP2, feature_views=["user_activity"])
    with sqlite3.connect(online_db) as conn:
        feasts = conn.execute(query).fetchall()
        conn.execute("DELETE FROM personalize_user_activity")

    materialize_interval(settings, STAMP1, STAMP2 + TICK, tables=["user_activity"])

    with sqlite3.connect(online_db) as conn:
        ours = conn.execute(query).fetchall()
    assert len(ours) == 3 * len(USER_ACTIVITY)
    assert ours == feasts


def test_pushed_counters_are_served_and_an_older_push_changes_nothing(settings: Settings) -> None:
    now = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    pushed = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            TIMESTAMP: [now, now],
            "rt_views_1h": [7, 0],
            "rt_carts_1h": [1, 0],
        }
    )

    assert push_realtime(settings, pushed) == 2
    late = pushed.assign(**{TIMESTAMP: [now - timedelta(minutes=5)] * 2, "rt_views_1h": [99, 99]})
    assert push_realtime(settings, late) == 0

    served = online_feature_values(settings, ["u1", "u2", "u3"], SERVICE)
    assert served["rt_views_1h"] == [7, 0, None]
    assert served["rt_carts_1h"] == [1, 0, None]


def _reader_matches_feast(settings: Settings) -> OnlineServiceReader:
    materialize_interval(settings, STAMP1, STAMP2 + TICK)
    now = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    pushed = pd.DataFrame(
        {"user_id": ["u1"], TIMESTAMP: [now], "rt_views_1h": [3], "rt_carts_1h": [0]}
    )
    push_realtime(settings, pushed)
    ids = ["u1", "u2", "u3", "nobody"]
    reader = OnlineServiceReader(settings, SERVICE)
    feasts = online_feature_values(settings, ids, SERVICE)
    assert reader.columns == list(feasts)
    assert reader.read_many(ids) == feasts
    for n, user in enumerate(ids):
        assert reader.read(user) == {name: column[n] for name, column in feasts.items()}
    # a push after the reader was prepared is in its next read
    later = pushed.assign(**{TIMESTAMP: [now + timedelta(minutes=1)], "rt_views_1h": [4]})
    push_realtime(settings, later)
    assert reader.read("u1")["rt_views_1h"] == 4
    return reader


def test_the_prepared_service_reader_reads_what_get_online_features_gives(
    settings: Settings,
) -> None:
    assert _reader_matches_feast(settings).direct


def test_on_feasts_own_sqlite_store_the_reader_reads_through_the_provider(
    stock_sqlite_settings: Settings,
) -> None:
    assert not _reader_matches_feast(stock_sqlite_settings).direct


def test_served_columns_are_the_join_key_then_the_service_in_order(settings: Settings) -> None:
    materialize_interval(settings, STAMP1, STAMP2 + TICK)

    served = online_feature_values(settings, ["u1"], SERVICE)

    store = feast_store.feature_store(settings)
    service = store.get_feature_service(SERVICE)
    expected = [f.name for p in service.feature_view_projections for f in p.features]
    assert list(served) == ["user_id", *expected]


def test_recommender_features_are_served_per_user_and_item(settings: Settings) -> None:
    materialize_interval(settings, STAMP1, STAMP2 + TICK)

    served = online_features(settings, ["u1"], "recommender_v1", item_ids=["i1", "i2", "i9"])

    assert served["user_id"].tolist() == ["u1"] * 3
    assert served["item_id"].tolist() == ["i1", "i2", "i9"]
    assert served["top_category_1"].tolist() == ["top_category_1-200"] * 3
    assert served["item_views_1d"].tolist()[:2] == [500, 501]
    with pytest.raises(OnlineStoreError, match="item_ids"):
        online_features(settings, ["u1"], "recommender_v1")
    with pytest.raises(OnlineStoreError, match="unknown feature service"):
        online_features(settings, ["u1"], "nope_v1")


def test_bad_requests_are_refused_with_the_reason(settings: Settings) -> None:
    with pytest.raises(OnlineStoreError, match="unknown feature table"):
        materialize_interval(settings, STAMP1, STAMP2, tables=["nope"])
    with pytest.raises(OnlineStoreError, match="empty interval"):
        materialize_interval(settings, STAMP2, STAMP1)


def test_an_unchanged_row_is_decoded_once_and_a_pushed_one_anew(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.features import feast_compat
    from pipelines.features import online as online_module

    materialize_interval(settings, STAMP1, STAMP2 + TICK)
    now = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    pushed = pd.DataFrame(
        {"user_id": ["u1"], TIMESTAMP: [now], "rt_views_1h": [3], "rt_carts_1h": [0]}
    )
    push_realtime(settings, pushed)
    reader = OnlineServiceReader(settings, SERVICE)
    first = reader.read("u1")
    parses = []
    parse = feast_compat.parse_repeated_value
    monkeypatch.setattr(
        feast_compat, "parse_repeated_value", lambda blob: parses.append(blob) or parse(blob)
    )

    first["rt_views_1h"] = -1  # a caller changing its answer changes no later one
    assert [reader.read("u1") for _ in range(3)] == [{**first, "rt_views_1h": 3}] * 3
    assert reader.read_many(["u1"])["rt_views_1h"] == [3]
    assert parses == []  # unchanged rows: from the memo

    push_realtime(settings, pushed.assign(**{TIMESTAMP: [now + TICK], "rt_views_1h": [4]}))
    assert reader.read("u1") == {**first, "rt_views_1h": 4}
    assert len(parses) == 1  # only the pushed view's row is other bytes now

    monkeypatch.setattr(online_module, "DECODE_MEMO_ROWS", 2)
    reader.read_many(["u1", "u2", "u3"])
    assert all(len(view._memo) <= 2 for view in reader._current().views)
