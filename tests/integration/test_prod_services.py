"""The prod profile's services answer where the settings say they are."""

from __future__ import annotations

import pytest

from pipelines.config import Settings

pytestmark = pytest.mark.services


def test_postgres_from_prod_settings_accepts_queries(require_service) -> None:
    import psycopg

    settings = Settings(profile="prod")
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with psycopg.connect(settings.postgres_dsn + "/postgres", connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    # in prod MLflow's database sits behind the tracking server every process talks to
    assert settings.mlflow_backend_store_uri.startswith("postgresql+psycopg://")
    assert settings.mlflow_backend_store_uri.endswith("/personalize_mlflow")
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"


def test_redis_online_store_from_prod_settings_answers(require_service) -> None:
    import redis

    settings = Settings(profile="prod")
    require_service("Redis", "127.0.0.1", 6379)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    assert client.ping()
    assert settings.feast_online_store == {
        "type": "redis",
        "connection_string": "127.0.0.1:6379,db=0",
    }
