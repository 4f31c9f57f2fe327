"""One settings object: profiles, environment, personalize.toml, and no work at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import Settings, get_settings


def test_local_profile_embeds_everything_under_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "state")
    home = (tmp_path / "state").resolve()
    assert settings.profile == "local"
    assert settings.airflow_sql_alchemy_conn == f"sqlite:///{home}/airflow/airflow.db"
    assert settings.mlflow_tracking_uri == f"sqlite:///{home}/mlflow/mlflow.db"
    assert settings.mlflow_artifact_root == (home / "mlflow" / "artifacts").as_uri()
    assert settings.feast_registry_uri == f"sqlite:///{home}/feast/registry.db"
    assert settings.feast_online_store == {
        "type": "pipelines.features.sqlite_store.EntityRowSQLiteOnlineStore",
        "path": f"{home}/feast/online.db",
    }
    for path in (settings.landing_dir, settings.truth_dir, settings.alerts_file):
        assert path.is_relative_to(home)


def test_default_state_dir_is_dot_personalize_in_the_working_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert get_settings().state_dir == tmp_path.resolve() / ".personalize"


def test_environment_overrides_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "personalize.toml"
    config.write_text('profile = "prod"\nhome = "/srv/p"\nredis_url = "redis://cache:6380/2"\n')
    monkeypatch.setenv("PERSONALIZE_CONFIG", str(config))
    monkeypatch.setenv("PERSONALIZE_HOME", str(tmp_path / "from-env"))
    settings = get_settings()
    assert settings.profile == "prod"
    assert settings.state_dir == (tmp_path / "from-env").resolve()
    assert settings.feast_online_store == {"type": "redis", "connection_string": "cache:6380,db=2"}


def test_prod_profile_names_postgres_for_every_component() -> None:
    settings = Settings(profile="prod", postgres_dsn="postgresql://svc@db.internal:5433")
    assert settings.airflow_sql_alchemy_conn == (
        "postgresql+psycopg://svc@db.internal:5433/personalize_airflow"
    )
    assert settings.mlflow_backend_store_uri.endswith("@db.internal:5433/personalize_mlflow")
    # clients talk to the tracking server, the server to PostgreSQL
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.mlflow_through_server
    assert settings.executor == "CeleryExecutor"
    assert settings.celery_result_backend_uri == (
        "db+postgresql+psycopg://svc@db.internal:5433/personalize_airflow"
    )
    assert Settings().executor == "LocalExecutor"
    assert settings.feast_registry_uri.endswith("@db.internal:5433/personalize_feast")


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile"):
        Settings(profile="staging")


def test_importing_the_package_touches_nothing(tmp_path: Path) -> None:
    code = (
        "import sys, pipelines.config, pipelines.cli\n"
        "heavy = {'pandas', 'pyarrow', 'sklearn', 'mlflow', 'feast', 'airflow'}\n"
        "heavy &= set(sys.modules)\n"
        "assert not heavy, f'the CLI stays instant: {heavy} imported at startup'\n"
        "import pipelines.data.contract, pipelines.data.generator, pipelines.data.partitions\n"
        "import pipelines.data.importer\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PERSONALIZE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert list(tmp_path.iterdir()) == []


def test_ensure_dirs_creates_the_layout(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "state")
    settings.ensure_dirs()
    names = {p.name for p in settings.state_dir.iterdir()}
    assert {"landing", "curated", "quarantine", "rejects", "truth", "airflow", "mlflow"} <= names
