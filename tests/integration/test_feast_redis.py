"""The prod profile's Feast store for real: registry on PostgreSQL, online store on Redis.

Skips locally when the services are down; fails in CI (PERSONALIZE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.features import store as feast_store
from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP
from tests.conftest import require_redis_server

pytestmark = pytest.mark.services

REDIS_TEST_DB = 15  # a database of its own: flushed before and after


@pytest.fixture
def prod_settings(tmp_path, require_service):
    import psycopg
    import redis

    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    settings = Settings(
        profile="prod",
        home=tmp_path / "home",
        feast_registry_database=f"personalize_feast_test_{uuid.uuid4().hex[:8]}",
        redis_url=f"redis://127.0.0.1:6379/{REDIS_TEST_DB}",
    )
    admin = settings.postgres_dsn + "/postgres"
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{settings.feast_registry_database}"')
    feast_store.clear_store_cache()
    yield settings
    feast_store.clear_store_cache()
    client.flushdb()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{settings.feast_registry_database}" WITH (FORCE)')


def activity(ids: list[str], stamp: datetime, base: int) -> pd.DataFrame:
    spec = FEATURE_TABLES["user_activity"]
    frame = {
        spec.join_key: ids,
        TIMESTAMP: pd.Series([stamp] * len(ids), dtype="datetime64[us, UTC]"),
    }
    for column in spec.columns:
        values = [base + i for i in range(len(ids))]
        frame[column.name] = (
            [f"{column.name}-{v}" for v in values] if column.dtype == "string" else values
        )
    return pd.DataFrame(frame).astype(
        {c.name: c.dtype.replace("string", "object") for c in spec.columns}
    )


def test_prod_store_applies_materializes_guards_and_serves(prod_settings: Settings) -> None:
    from pipelines.features.offline import write_offline_partition
    from pipelines.features.online import materialize_interval, online_features, push_realtime

    day1, day2 = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    offline = prod_settings.feast_offline_dir
    write_offline_partition(
        offline, "user_activity", day1.date() - timedelta(days=1), activity(["u1", "u2"], day1, 100)
    )
    write_offline_partition(
        offline, "user_activity", day2.date() - timedelta(days=1), activity(["u1"], day2, 200)
    )

    assert feast_store.apply_repo(prod_settings) is True
    assert feast_store.apply_repo(prod_settings) is False
    assert prod_settings.feast_registry_uri.startswith("postgresql+psycopg://")

    tick = timedelta(microseconds=1)
    assert materialize_interval(prod_settings, day2, day2 + tick, ["user_activity"]) == {
        "user_activity": 1
    }
    # the older day: u1 has day 2 online already, only u2 is written
    assert materialize_interval(prod_settings, day1, day1 + tick, ["user_activity"]) == {
        "user_activity": 1
    }
    # the same day again (late data) goes through: equal stamps are replaced
    write_offline_partition(
        offline, "user_activity", day2.date() - timedelta(days=1), activity(["u1"], day2, 300)
    )
    assert materialize_interval(prod_settings, day2, day2 + tick, ["user_activity"]) == {
        "user_activity": 1
    }
    pushed = pd.DataFrame(
        {"user_id": ["u1"], TIMESTAMP: [day2], "rt_views_1h": [4], "rt_carts_1h": [1]}
    )
    assert push_realtime(prod_settings, pushed) == 1

    served = online_features(prod_settings, ["u1", "u2", "ghost"], "propensity_v1").set_index(
        "user_id"
    )
    assert served.loc["u1", "views_1d"] == 300
    assert served.loc["u2", "views_1d"] == 101
    assert served.loc["u1", "top_category_1"] == "top_category_1-300"
    assert served.loc["u1", "rt_views_1h"] == 4
    assert pd.isna(served.loc["ghost", "views_1d"])


@pytest.fixture
def own_redis_settings(prod_settings: Settings, tmp_path):
    """``prod_settings`` with the online store on a ``redis-server`` of the test's own."""
    from pipelines.local.cluster import start_redis, stop_process
    from pipelines.local.supervisor import free_port

    require_redis_server()
    port = free_port()
    server = start_redis(port, tmp_path)
    feast_store.clear_store_cache()
    try:
        yield prod_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    finally:
        feast_store.clear_store_cache()
        stop_process(server)


def test_service_reader_on_redis_reads_by_name_again_and_again(own_redis_settings) -> None:
    """The serving reader on Redis, read after read: features matched by name, a view never
    written for a user and null features give None, and every read equals Feast's own
    ``get_online_features`` (Feast's Redis store appends a field to the list of names it is
    given; a reader that passes its own list breaks on the second read)."""
    from pipelines.features.offline import write_offline_partition
    from pipelines.features.online import (
        OnlineServiceReader,
        materialize_interval,
        online_feature_values,
        push_realtime,
    )

    settings = own_redis_settings
    day = datetime(2026, 1, 2, tzinfo=UTC)
    rows = activity(["u1", "u2"], day, 100)
    spec = FEATURE_TABLES["user_activity"]
    number = next(c.name for c in spec.columns if c.dtype != "string")
    text = next(c.name for c in spec.columns if c.dtype == "string")
    rows.loc[1, number] = None  # u2: a null count and a null category
    rows.loc[1, text] = None
    write_offline_partition(settings.feast_offline_dir, "user_activity", day.date(), rows)
    assert feast_store.apply_repo(settings) is True
    tick = timedelta(microseconds=1)
    assert materialize_interval(settings, day, day + tick, ["user_activity"]) == {
        "user_activity": 2
    }
    # real-time counters for u1 only: u2's user_realtime (and everyone's segment) never written
    pushed = pd.DataFrame(
        {"user_id": ["u1"], TIMESTAMP: [day], "rt_views_1h": [4], "rt_carts_1h": [1]}
    )
    assert push_realtime(settings, pushed) == 1

    reader = OnlineServiceReader(settings, "propensity_v1")
    assert not reader.direct
    ids = ["u1", "u2", "ghost"]
    expected = online_feature_values(settings, ids, "propensity_v1")
    for _ in range(3):
        for position, user in enumerate(ids):
            assert reader.read(user) == {k: v[position] for k, v in expected.items()}, user
        assert reader.read_many(ids) == expected
    first, second = reader.read("u1"), reader.read("u2")
    assert first[number] == 100 and first[text] == f"{text}-100"
    assert first["rt_views_1h"] == 4 and first["rt_carts_1h"] == 1
    assert second[number] is None and second[text] is None
    assert second["rt_views_1h"] is None and second["segment_id"] is None
    assert list(reader.read("ghost")) == reader.columns
