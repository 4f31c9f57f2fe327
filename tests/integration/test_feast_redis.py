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
