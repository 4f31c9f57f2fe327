"""Point Airflow at this profile's state dir before Airflow is imported.

Airflow reads ``AIRFLOW_HOME``, the metadata DB URI and the DAGs folder once, when ``airflow`` is
first imported, and binds its ORM to them for the life of the process. So the environment has to be
in place first, and a process can serve one Airflow home only: :func:`configure_airflow` sets it
up once and refuses a second, different one instead of silently writing to the wrong database.

Nothing here imports Airflow at module import time.
"""

from __future__ import annotations

import base64
import os
import sys
import warnings
from pathlib import Path

from pipelines.config import Settings

# Celery queues: heavy tasks (training, drift) get their own, so they cannot starve the rest
DEFAULT_QUEUE = "default"
HEAVY_QUEUE = "heavy"

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DAGS_FOLDER = REPO_ROOT / "dags"

# Environment variables that carry this platform's settings into task code (tasks call
# ``get_settings()``); a scheduler started with :func:`airflow_environment` needs them too.
TASK_SETTINGS_VARS = ("PERSONALIZE_HOME", "PERSONALIZE_PROFILE")


class AirflowConfigError(RuntimeError):
    """Airflow is already bound to another home, database or DAGs folder in this process."""


# (airflow_home, sql_alchemy_conn, dags_folder) once configure_airflow has run in this process.
_configured: tuple[str, str, str] | None = None
# what configure_airflow put into os.environ
_exported: dict[str, str] = {}


def _stable_secret(path: Path, make: bool) -> str | None:
    """A secret stored next to the Airflow DB: the same for every process using this state dir.

    Airflow generates its Fernet key and JWT secret per process when no ``airflow.cfg`` exists
    (the in-process ``dag.test`` path never writes one), so a scheduler, an API server and the CLI
    would each encrypt or sign with a different key. Storing them under ``airflow_home`` keeps them
    consistent and lets "delete the state dir" reset them with everything else.
    """
    if path.exists():
        return path.read_text().strip()
    if not make:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    value = base64.urlsafe_b64encode(os.urandom(32)).decode()  # also a valid Fernet key
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def resolve_dags_folder(dags_folder: Path | str | None = None) -> Path:
    """The DAGs folder to use: the argument, else the one configured in this process, else dags/."""
    if dags_folder is not None:
        return Path(dags_folder).expanduser().resolve()
    if _configured is not None:
        return Path(_configured[2])
    return DEFAULT_DAGS_FOLDER


def airflow_environment(
    settings: Settings, dags_folder: Path | str | None = None, *, create_secrets: bool = True
) -> dict[str, str]:
    """The environment an Airflow process needs to work on this profile's state dir.

    Used in-process by :func:`configure_airflow` and, unchanged, for subprocesses (a parse check,
    ``airflow standalone``), so that every Airflow process of a state dir agrees on home, database,
    DAGs folder and keys. With ``create_secrets`` (the default) the Fernet key and JWT secret are
    generated under ``airflow_home`` on first use; values already in ``os.environ`` win.
    """
    home = settings.airflow_home
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.airflow_sql_alchemy_conn,
        "AIRFLOW__CORE__DAGS_FOLDER": str(resolve_dags_folder(dags_folder)),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": settings.executor,
        # a laptop-sized platform: few concurrent task processes keep memory down
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        # new DAGs start paused, so starting a scheduler does not launch a catch-up storm
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        # the operator's choice wins: the CLI turns task tracebacks off (it prints one line each)
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get(
            "AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"
        ),
        "PERSONALIZE_HOME": str(settings.state_dir),
        "PERSONALIZE_PROFILE": settings.profile,
    }
    if settings.airflow_sql_alchemy_conn.startswith("postgresql+psycopg://"):
        # Airflow 3 derives its async URI as postgresql+asyncpg (not installed); psycopg 3 is
        # async-capable under the same dialect name
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = settings.airflow_sql_alchemy_conn
    if settings.executor == "CeleryExecutor":
        env.update(celery_environment(settings))
    secrets = {
        "AIRFLOW__CORE__FERNET_KEY": home / "fernet_key",
        "AIRFLOW__API_AUTH__JWT_SECRET": home / "jwt_secret",
    }
    for name, path in secrets.items():
        # a key the operator exported wins; one configure_airflow exported is another home's
        external = os.environ.get(name)
        if external and _exported.get(name) == external:
            external = None
        value = external or _stable_secret(path, make=create_secrets)
        if value:
            env[name] = value
    return env


def celery_environment(settings: Settings) -> dict[str, str]:
    """Airflow's Celery settings for ``settings``: broker, result backend, slots per worker and
    the queue a task without one goes to. Secrets in the URLs come from the environment the
    settings were read from (``PERSONALIZE_CELERY_BROKER_URL``), never from a file."""
    return {
        "AIRFLOW__CELERY__BROKER_URL": settings.celery_broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": settings.celery_result_backend_uri,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.celery_worker_concurrency),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
        # a task a killed worker had taken is handed out again (acks_late), not lost
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
    }


def _already_imported_mismatches(env: dict[str, str]) -> list[str]:
    """What an Airflow imported earlier in this process is bound to, where it differs from env."""
    if "airflow.settings" not in sys.modules:
        return []
    from airflow import configuration as af_configuration
    from airflow import settings as af_settings

    wanted = {
        "AIRFLOW_HOME": (af_configuration.AIRFLOW_HOME, env["AIRFLOW_HOME"]),
        "sql_alchemy_conn": (
            af_settings.SQL_ALCHEMY_CONN,
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        ),
        "dags_folder": (af_settings.DAGS_FOLDER, env["AIRFLOW__CORE__DAGS_FOLDER"]),
    }
    mismatches = []
    for name, (current, expected) in wanted.items():
        same = (
            Path(str(current)).resolve() == Path(expected).resolve()
            if name != "sql_alchemy_conn"
            else str(current) == expected
        )
        if not same:
            mismatches.append(f"{name} is {current!r}, this profile needs {expected!r}")
    return mismatches


def configure_airflow(settings: Settings, dags_folder: Path | str | None = None) -> None:
    """Bind this process's Airflow to ``settings`` and make sure the metadata DB exists.

    Call before anything imports ``airflow`` (DAG files do). The first call sets the environment,
    creates ``airflow_home`` and runs ``airflow.utils.db.initdb()`` (idempotent: ~3 s on a new
    SQLite DB, ~0.2 s on an existing one); later calls with the same home and database are no-ops.
    ``dags_folder=None`` means "the folder already configured in this process, else dags/".

    Raises AirflowConfigError if this process's Airflow is already bound elsewhere.
    """
    global _configured
    env = airflow_environment(settings, dags_folder)
    key = (env["AIRFLOW_HOME"], env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    key += (env["AIRFLOW__CORE__DAGS_FOLDER"],)
    if _configured is not None:
        if _configured != key:
            raise AirflowConfigError(
                "Airflow is already configured in this process for "
                f"home={_configured[0]}, db={_configured[1]}, dags={_configured[2]}; "
                f"cannot switch to home={key[0]}, db={key[1]}, dags={key[2]}. "
                "Airflow binds to one home per process: use a new process for another state dir."
            )
        return

    mismatches = _already_imported_mismatches(env)
    if mismatches:
        raise AirflowConfigError(
            "airflow was imported before configure_airflow() with a different configuration: "
            + "; ".join(mismatches)
            + ". Call configure_airflow(settings) before importing airflow or any DAG file."
        )

    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    # PERSONALIZE_* stay untouched: this configures Airflow, not the platform's own settings
    # (the runner sets them for the tasks it runs).
    exported = {k: v for k, v in env.items() if k not in TASK_SETTINGS_VARS}
    os.environ.update(exported)
    _exported.update(exported)
    # Airflow's in-process execution API uses starlette's TestClient; its httpx deprecation notice
    # is noise for our users, not something they can act on.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

    use_write_ahead_log(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    from airflow.utils import db

    db.initdb()
    _configured = key


def use_write_ahead_log(sql_alchemy_conn: str) -> None:
    """Put a SQLite metadata DB in write-ahead-log mode (kept in the file; no-op for others).

    Every task instance of a ``dag.test`` run makes a dozen small commits through Airflow's
    in-process API; in SQLite's default rollback-journal mode each one syncs the file twice. In
    WAL mode a features run takes about a quarter less time (measured: 1.50 -> 1.10 s a run), and
    the scheduler, API server and DAG processor of ``personalize up`` read while another writes.
    """
    import sqlite3
    from contextlib import closing

    prefix = "sqlite:///"
    if not sql_alchemy_conn.startswith(prefix):
        return
    path = Path(sql_alchemy_conn.removeprefix(prefix).split("?", 1)[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def configured_airflow() -> tuple[str, str, str] | None:
    """(airflow_home, sql_alchemy_conn, dags_folder) this process is bound to, or None."""
    return _configured
