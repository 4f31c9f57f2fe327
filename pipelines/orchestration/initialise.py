"""``personalize init``: create what the active profile needs and is missing; safe to re-run.

In order: the state dir, the PostgreSQL databases (prod: Airflow, MLflow, Feast registry), the
Airflow metadata DB (``airflow db migrate``), MLflow's schema, and the Feast apply (registry on
PostgreSQL and online tables in Redis in prod; SQLite files in local). Each step reports whether
it ``created`` something or ``found`` it in place already, so a second run says "nothing to do".

Airflow runs in a child process (``airflow db migrate``): Airflow binds one home per process, and
the command that calls this may serve another one. MLflow's schema comes from its public client on
the backend store URI (it creates the tables of an empty database) and ``mlflow db upgrade`` for a
store an older MLflow made. No secret is read from or written to a file: the DSNs come from the
settings, i.e. the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipelines.config import Settings
from pipelines.orchestration.airflow_env import airflow_environment

Outcome = Literal["created", "found"]


class InitError(RuntimeError):
    """A step of ``personalize init`` failed; the message names the step and what to do."""


@dataclass(frozen=True)
class InitStep:
    """One thing ``init`` made sure of."""

    name: str
    outcome: Outcome
    detail: str

    def describe(self) -> str:
        return f"{self.outcome:<8} {self.name}: {self.detail}"


def _admin_dsn(settings: Settings) -> str:
    return settings.postgres_dsn.rstrip("/") + "/postgres"


def prod_databases(settings: Settings) -> tuple[str, ...]:
    """The PostgreSQL databases of the prod profile, in the order init creates them."""
    return (
        settings.airflow_database,
        settings.mlflow_database,
        settings.feast_registry_database,
    )


def ensure_database(settings: Settings, name: str) -> Outcome:
    """Create the database ``name`` on ``postgres_dsn`` unless it exists."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(_admin_dsn(settings), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone():
                return "found"
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:  # another init was faster
                return "found"
    except psycopg.OperationalError as error:
        raise InitError(
            f"cannot reach PostgreSQL at {settings.postgres_dsn} to create {name!r}: {error}; "
            "check PERSONALIZE_POSTGRES_DSN"
        ) from None
    return "created"


def _airflow_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("apache-airflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def migration_marker(settings: Settings) -> Path:
    return settings.airflow_home / ".personalize-db-migrated"


def _marker_text(settings: Settings) -> str:
    return f"{_airflow_version()} {settings.airflow_sql_alchemy_conn}"


def airflow_db_is_current(settings: Settings) -> bool:
    """Whether ``init`` or ``up`` migrated this metadata DB with the installed Airflow already.

    ``airflow db migrate`` costs 10-15 s of CPU even with nothing to do (Airflow's import time), so
    ``up`` records a marker after a successful run and skips it while the marker, the Airflow
    version and (local profile) the SQLite file all still match.
    """
    marker = migration_marker(settings)
    if not marker.exists() or marker.read_text().strip() != _marker_text(settings):
        return False
    if settings.profile == "local":
        return (settings.airflow_home / "airflow.db").exists()
    return True


def mark_airflow_db_current(settings: Settings) -> None:
    marker = migration_marker(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(_marker_text(settings) + "\n")


def _alembic_revision(uri: str) -> str | None:
    """The schema revision recorded in the database at ``uri`` (None: no schema yet)."""
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])
    finally:
        engine.dispose()


def _run(argv: list[str], env: dict[str, str], what: str, timeout: float = 600.0) -> None:
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InitError(f"{what} failed (exit code {done.returncode}):\n{tail}")


def _schema_step(name: str, uri: str, before: str | None, verb: str) -> InitStep:
    """What a schema step did, from the revision before it and the one it left."""
    after = _alembic_revision(uri)
    if before is None:
        return InitStep(name, "created", f"{_safe(uri)} at revision {after}")
    if before != after:
        return InitStep(name, "created", f"{_safe(uri)} {verb} {before} -> {after}")
    return InitStep(name, "found", f"{_safe(uri)} up to date ({after})")


def migrate_airflow(settings: Settings) -> InitStep:
    """``airflow db migrate`` on the profile's metadata DB, in a child process."""
    uri = settings.airflow_sql_alchemy_conn
    before = _alembic_revision(uri)
    if before is not None and airflow_db_is_current(settings):
        # this Airflow migrated it already: skip the 10-15 s of `airflow db migrate` doing nothing
        return InitStep("airflow metadata DB", "found", f"{_safe(uri)} up to date ({before})")
    env = {**os.environ, **settings.as_environment(), **airflow_environment(settings)}
    if uri.startswith("postgresql+psycopg://"):
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", uri)
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    _run([sys.executable, "-m", "airflow", "db", "migrate"], env, "airflow db migrate")
    mark_airflow_db_current(settings)
    return _schema_step("airflow metadata DB", uri, before, "migrated")


def ensure_mlflow_schema(settings: Settings) -> InitStep:
    """MLflow's tables in the backend store: created on an empty database by MLflow's own client,
    upgraded with ``mlflow db upgrade`` when an older MLflow made them."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = settings.mlflow_backend_store_uri
    before = _alembic_revision(uri)
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)

    def touch() -> None:  # the store creates the tables of an empty database on first use
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)

    try:
        touch()
    except MlflowException as error:
        if "out-of-date database schema" not in str(error) and "db upgrade" not in str(error):
            raise
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        _run([sys.executable, "-m", "mlflow", "db", "upgrade", uri], env, "mlflow db upgrade")
        touch()
    return _schema_step("mlflow store", uri, before, "upgraded")


def apply_feature_repo(settings: Settings) -> InitStep:
    from pipelines.features import store as feast_store

    changed = feast_store.apply_repo(settings)
    online = settings.feast_online_store
    where = online.get("connection_string") or online.get("path", "")
    detail = f"registry {_safe(settings.feast_registry_uri)}, online store {online['type']} {where}"
    return InitStep("feast repo", "created" if changed else "found", detail)


def _safe(uri: str) -> str:
    """``uri`` without a password, for printing."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    creds, _, host = rest.partition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else uri


def initialise(
    settings: Settings, on_step: Callable[[InitStep], None] | None = None
) -> list[InitStep]:
    """Create what ``settings``' profile needs and is missing; return what was done, in order."""
    steps: list[InitStep] = []

    def record(step: InitStep) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    existed = settings.state_dir.exists()
    settings.ensure_dirs()
    record(InitStep("state dir", "found" if existed else "created", str(settings.state_dir)))
    if settings.profile == "prod":
        for name in prod_databases(settings):
            record(InitStep(f"database {name}", ensure_database(settings, name), "PostgreSQL"))
    record(migrate_airflow(settings))
    record(ensure_mlflow_schema(settings))
    record(apply_feature_repo(settings))
    return steps
