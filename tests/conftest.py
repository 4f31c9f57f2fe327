"""Shared fixtures: an isolated state dir per test and the real-services switch."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from pipelines.config import Settings


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a developer's personalize.toml or PERSONALIZE_* variables by accident."""
    for name in list(os.environ):
        if name.startswith("PERSONALIZE_") and name != "PERSONALIZE_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PERSONALIZE_CONFIG", str(tmp_path / "no-such-personalize.toml"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def services_required() -> bool:
    return os.environ.get("PERSONALIZE_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) a test whose service does not answer on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as error:
        reason = f"{name} is not reachable on {host}:{port} ({error})"
    if services_required():
        pytest.fail(f"{reason}; PERSONALIZE_REQUIRE_SERVICES=1 makes this a failure", False)
    pytest.skip(f"{reason}; start it or run in CI with PERSONALIZE_REQUIRE_SERVICES=1")


def require_program(name: str, install: str) -> None:
    """Skip (or, in CI, fail) a test that needs the program ``name`` on PATH."""
    if shutil.which(name) is not None:
        return
    reason = f"{name} is not installed ({install})"
    if services_required():
        pytest.fail(f"{reason}; PERSONALIZE_REQUIRE_SERVICES=1 makes this a failure", False)
    pytest.skip(reason)


def require_redis_server() -> None:
    require_program("redis-server", "apt-get install redis-server")


@pytest.fixture(name="require_service")
def require_service_fixture():
    return require_service


@pytest.fixture(scope="session")
def airflow_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The one Airflow of this test process (Airflow binds a home per process): real dags/."""
    from pipelines.orchestration.testing import prepare_test_airflow

    return prepare_test_airflow(tmp_path_factory.mktemp("airflow"))


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """The one SparkSession of this test process (local[2], as ``spark_master`` defaults to).

    Started once: a JVM takes seconds to start, a query on small frames well under one.
    """
    import shutil

    if shutil.which("java") is None:
        reason = "Spark needs Java 17+ and `java` is not on PATH (apt-get install openjdk-17-jre)"
        if services_required():
            pytest.fail(f"{reason}; PERSONALIZE_REQUIRE_SERVICES=1 makes this a failure", False)
        pytest.skip(reason)
    from pipelines.features.spark import spark_session

    session = spark_session(Settings(home=tmp_path_factory.mktemp("spark") / "home"))
    session.sparkContext.setLogLevel("ERROR")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


# before xdist's own hook, which reads the marks into the node ids it schedules by
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the shared session Airflow stay in one xdist worker, in collection order.

    They share one Airflow home and registry per process, so which of them ran before another is
    part of what each one sees; ``make test`` runs ``--dist loadgroup`` so the rest of the suite
    (pure functions, the story in its own process, serving) runs beside them on the other core.
    The Spark tests share one worker too, so only one JVM starts.
    """
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "airflow_settings" in fixtures:
            item.add_marker(pytest.mark.xdist_group("airflow"))
        elif "spark" in fixtures:
            item.add_marker(pytest.mark.xdist_group("spark"))
