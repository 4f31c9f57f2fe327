"""The Feast store wrapper: feature_store.yaml per profile, and applying the repo idempotently."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from pipelines.config import Settings
from pipelines.features import store as feast_store
from pipelines.features.schema import FEATURE_TABLES, USER_REALTIME
from pipelines.features.store import apply_repo, feature_store, render_feature_store_yaml


@pytest.fixture(autouse=True)
def _fresh_stores():
    feast_store.clear_store_cache()
    yield
    feast_store.clear_store_cache()


def test_local_yaml_puts_every_part_of_the_store_in_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    path = render_feature_store_yaml(settings)

    assert path == settings.feast_dir / "feature_store.yaml"
    config = yaml.safe_load(path.read_text())
    feast_dir = settings.feast_dir
    assert config["project"] == "personalize"
    assert config["provider"] == "local"
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == f"sqlite:///{feast_dir / 'registry.db'}"
    assert config["registry"]["cache_ttl_seconds"] > 0
    assert config["online_store"] == {
        "type": "pipelines.features.sqlite_store.EntityRowSQLiteOnlineStore",
        "path": str(feast_dir / "online.db"),
    }
    assert config["offline_store"] == {"type": "duckdb"}
    assert config["entity_key_serialization_version"] == 3


def test_prod_yaml_names_postgres_registry_and_redis_and_feast_accepts_it(tmp_path: Path) -> None:
    feast_store.import_feast()
    from feast.repo_config import load_repo_config

    settings = Settings(
        profile="prod",
        home=tmp_path / "home",
        postgres_dsn="postgresql://feast@db.internal:5432",
        redis_url="redis://cache.internal:6380/2",
    )

    path = render_feature_store_yaml(settings)

    config = yaml.safe_load(path.read_text())
    assert config["registry"]["registry_type"] == "sql"
    assert (
        config["registry"]["path"]
        == "postgresql+psycopg://feast@db.internal:5432/personalize_feast"
    )
    assert config["online_store"]["type"] == "redis"
    assert config["online_store"]["connection_string"] == "cache.internal:6380,db=2"
    assert config["online_store"]["skip_dedup"] is True  # our writer guards instead (online.py)
    assert config["offline_store"] == {"type": "duckdb"}
    # Feast parses it (no server is contacted to load a config)
    repo_config = load_repo_config(feast_store.REPO_DIR, path)
    assert repo_config.registry.path.startswith("postgresql+psycopg://")
    assert repo_config.online_store.type == "redis"
    assert repo_config.offline_store.type == "duckdb"


def test_rendering_twice_leaves_the_file_alone(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    path = render_feature_store_yaml(settings)
    before = path.stat().st_mtime_ns

    time.sleep(0.01)
    render_feature_store_yaml(settings)

    assert path.stat().st_mtime_ns == before


def test_apply_registers_the_schema_and_a_second_apply_is_a_no_op(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    repo_files = sorted(p.name for p in feast_store.REPO_DIR.iterdir())

    assert apply_repo(settings) is True
    started = time.perf_counter()
    assert apply_repo(settings) is False
    second = time.perf_counter() - started

    store = feature_store(settings)
    views = {fv.name: fv for fv in store.list_feature_views()}
    assert set(views) == {*FEATURE_TABLES, "user_realtime"}
    for table in FEATURE_TABLES.values():
        view = views[table.name]
        assert view.ttl.days == table.ttl_days
        assert view.online
        assert [(f.name, str(f.dtype).lower(), f.description) for f in view.features] == [
            (c.name, c.dtype, c.description) for c in table.columns
        ]
        assert view.batch_source.path.startswith(str(settings.feast_offline_dir / table.name))
    assert [f.name for f in views["user_realtime"].features] == [c.name for c in USER_REALTIME]
    assert views["user_realtime"].stream_source.name == "user_realtime_push"
    services = {s.name: s for s in store.list_feature_services()}
    assert set(services) == {"propensity_v1", "recommender_v1", "recommendations_v1"}
    assert [p.name for p in services["propensity_v1"].feature_view_projections] == [
        "user_activity",
        "user_segment",
        "user_realtime",
    ]
    recommender = {p.name: p for p in services["recommender_v1"].feature_view_projections}
    assert set(recommender) == {"user_activity", "item_popularity"}
    assert "top_category_1" in [f.name for f in recommender["user_activity"].features]
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {f"personalize_{name}" for name in views} <= tables
    assert second < 1.0, f"a no-op apply took {second:.2f} s"
    assert sorted(p.name for p in feast_store.REPO_DIR.iterdir()) == repo_files  # nothing written


def test_apply_again_after_the_registry_was_lost_re_registers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    apply_repo(settings)
    feast_store.clear_store_cache()
    (settings.feast_dir / "registry.db").unlink()

    assert apply_repo(settings) is True

    assert {fv.name for fv in feature_store(settings).list_feature_views()} == {
        *FEATURE_TABLES,
        "user_realtime",
    }


def test_each_state_dir_gets_its_own_paths_in_one_process(tmp_path: Path) -> None:
    """Feast imports the repo files as modules; a second load must not reuse the first one's."""
    first, second = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")

    apply_repo(first)
    apply_repo(second)

    for settings in (first, second):
        view = feature_store(settings).get_feature_view("user_activity")
        assert view.batch_source.path.startswith(str(settings.feast_offline_dir))


def test_loading_the_repo_restores_the_environment_and_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    feast_store.load_repo(Settings(home=tmp_path / "home"))

    assert Path.cwd() == tmp_path
    assert "PERSONALIZE_HOME" not in os.environ
    assert "data_sources" not in __import__("sys").modules


def test_apply_again_after_the_online_store_was_lost_recreates_its_tables(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    apply_repo(settings)
    feast_store.clear_store_cache()
    (settings.feast_dir / "online.db").unlink()

    assert apply_repo(settings) is True

    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "personalize_user_activity" in tables
