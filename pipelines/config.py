"""The one settings object of the platform.

Read from ``PERSONALIZE_*`` environment variables and an optional ``personalize.toml``
(``PERSONALIZE_CONFIG`` names another file). Environment wins over the file.

Profiles:

* ``local`` (default) embeds everything under one state dir (``PERSONALIZE_HOME``, default
  ``./.personalize``): Airflow on SQLite, MLflow on SQLite with local artifacts, Feast with a SQL
  registry on SQLite, a SQLite online store and a DuckDB offline store over parquet.
* ``prod`` runs on shared services: Airflow's metadata DB, MLflow's backend store and Feast's
  registry on PostgreSQL, a Redis online store, an MLflow tracking server that every process talks
  to, and Celery workers (Redis broker, PostgreSQL result backend). The state dir must then be
  shared by every worker (docs/operations.md).

Nothing happens at import time: no directory is created and no tracking URI is set until a caller
asks for it (``Settings.ensure_dirs``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Profile = Literal["local", "prod"]

DEFAULT_CONFIG_FILE = "personalize.toml"
# the tracking server `personalize up` starts in prod when mlflow_uri names none
DEFAULT_MLFLOW_SERVER = "http://127.0.0.1:5000"


class Settings(BaseSettings):
    """Everything the platform needs to know about where things live and which services to use."""

    model_config = SettingsConfigDict(env_prefix="PERSONALIZE_", extra="ignore")

    profile: Profile = Field("local", description="Which set of backing services to use.")
    home: Path = Field(
        Path(".personalize"), description="State dir: every file the platform writes lives here."
    )
    require_services: bool = Field(
        False, description="Treat unreachable PostgreSQL/Redis as a failure instead of a skip."
    )

    # orchestration
    dags_start: str = Field(
        "2026-01-01", description="First data day the daily DAGs cover (their UTC start_date)."
    )
    task_retries: int = Field(2, description="Retries of a failed task (not of a bad batch).")
    retry_delay_seconds: float = Field(60.0, description="Wait before a task's retry.")
    sensor_timeout_seconds: float = Field(
        60.0, description="How long ingest waits for the day's events batch before failing."
    )
    sensor_poke_seconds: float = Field(5.0, description="How often ingest looks for the batch.")
    run_deadline_hours: float = Field(
        6.0,
        description=(
            "Hours after a day ends (UTC) by which its daily DAGs must have succeeded; later, "
            "the watchdog DAG raises missing_run."
        ),
        ge=0,
    )

    # the shop's trading calendar (pipelines/data/calendar.py): days without events that are fine
    closed_weekdays: list[str] = Field(
        default_factory=list,
        description='Weekdays the shop does not trade, e.g. ["sat"]: no events is not an incident.',
    )
    closed_dates: list[str] = Field(
        default_factory=list,
        description='Closed dates: "2026-12-25", "12-25" (every year), ranges "12-24..01-03".',
    )
    allow_empty_days: bool = Field(
        False,
        description="No events expected every day: a day without events is closed, not missing.",
    )

    # prod services; the local profile ignores them
    postgres_dsn: str = Field(
        "postgresql://postgres@127.0.0.1:5432",
        description="Server DSN without database; each component uses its own database.",
    )
    airflow_database: str = "personalize_airflow"
    mlflow_database: str = "personalize_mlflow"
    feast_registry_database: str = "personalize_feast"
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Feast online store (prod).")
    mlflow_uri: str | None = Field(
        None,
        description="The MLflow tracking server every process talks to (e.g. http://mlflow:5000). "
        "Unset: the profile's database in local, http://127.0.0.1:5000 (the server `personalize "
        "up` starts) in prod.",
    )
    mlflow_artifact_uri: str | None = Field(
        None,
        description="Where MLflow keeps artifacts: a path/file URI every process can see, or "
        "s3://bucket/prefix (the prod tracking server proxies it to its clients); defaults to "
        "<home>/mlflow/artifacts.",
    )

    # Airflow's executor (prod: Celery workers on a Redis broker)
    airflow_executor: Literal["LocalExecutor", "CeleryExecutor"] | None = Field(
        None,
        description="Airflow executor of the services `personalize up` starts; unset = "
        "LocalExecutor in local, CeleryExecutor in prod.",
    )
    celery_broker_url: str = Field(
        "redis://127.0.0.1:6379/1",
        description="Celery broker (Redis or RabbitMQ amqp://) of the CeleryExecutor.",
    )
    celery_result_backend: str | None = Field(
        None,
        description="Celery result backend; unset = db+postgresql on postgres_dsn, database "
        "airflow_database.",
    )
    celery_workers: int = Field(
        2, ge=1, description="Celery worker processes `personalize up` starts in prod."
    )
    celery_worker_concurrency: int = Field(
        1, ge=1, description="Task slots of each Celery worker (one process per slot)."
    )
    celery_worker_queues: str = Field(
        "default,heavy",
        description="Queues each Celery worker serves, comma-separated; heavy tasks (training, "
        "drift) go to `heavy`, the others to `default`.",
    )

    # feature computation (pipelines/features/compute.py or pipelines/features/spark.py)
    feature_engine: Literal["local", "spark"] = Field(
        "local",
        description="Engine of the daily feature tables: local (numpy, in process) or spark "
        "(Apache Spark, for histories that outgrow one machine; Feast then serves training "
        "sets through its Spark offline store). Same definitions, same output layout.",
    )
    spark_master: str = Field(
        "local[2]",
        description="Spark master URL when feature_engine is spark: local[N] in process, or a "
        "cluster (spark://host:7077, yarn, k8s://...).",
    )

    # models and gates
    train_window_days: int = Field(
        30, description="Days of data a training run looks at, ending with its day."
    )
    train_seed: int = Field(42, description="Seed of every model fit: same data, same model.")
    propensity_horizon_days: int = Field(
        7,
        ge=1,
        description="Label horizon N of the propensity model: does the user buy again within N "
        "days (training labels, split gap, live performance in monitoring).",
    )
    train_time_budget_seconds: float = Field(
        20.0, description="Wall-clock budget of the propensity hyper-parameter search."
    )
    recommender_candidates: str = Field(
        "",
        description="Recommender candidates to try, comma-separated (popularity, item_knn, "
        "category_affinity, ease); empty = all of them. Buy-again, the learned buy-again "
        "(repurchase, on a temporal split) and their blends with the best of these are added "
        "whenever seen items may be recommended (recommender_exclude_seen auto or false).",
    )
    recommender_exclude_seen: Literal["auto", "true", "false"] = Field(
        "auto",
        description="Whether a customer's own past items may be recommended (buy again): "
        "true = never, false = allowed, auto = decided by validation (truth then counts "
        "repeat interactions). Env PERSONALIZE_RECOMMENDER_EXCLUDE_SEEN.",
    )
    gates_file: Path | None = Field(
        None, description="Gate thresholds (TOML); defaults to the versioned pipelines/gates.toml."
    )
    auto_promote: bool | None = Field(
        None,
        description="Promote a blessed challenger to champion without a human; unset = on in the "
        "local profile, off in prod (gates.toml may set it per model).",
    )

    # alerts: always appended to <home>/alerts.jsonl; webhook and email when configured
    alert_webhook_url: str | None = Field(
        None, description="JSON webhook (Slack-compatible payload) for alerts."
    )
    alert_email_to: str | None = Field(None, description="Comma-separated alert recipients.")
    alert_email_from: str = Field("personalize@localhost", description="Sender of alert mail.")
    smtp_host: str = Field("127.0.0.1", description="SMTP server for alert mail.")
    smtp_port: int = Field(25, description="SMTP port.")
    smtp_starttls: bool = Field(False, description="Use STARTTLS on the SMTP connection.")
    smtp_user: str | None = Field(
        None, description="SMTP login (password: PERSONALIZE_SMTP_PASSWORD)."
    )
    smtp_password: str | None = Field(None, description="SMTP password; from the environment only.")
    alert_retries: int = Field(3, description="Delivery attempts per channel before giving up.")
    alert_cooldown_hours: float = Field(
        24.0, description="The same condition does not alert twice within this window."
    )

    # serving (pipelines/serving, `personalize serve`)
    serve_host: str = Field("127.0.0.1", description="Address `personalize serve` listens on.")
    serve_port: int = Field(8000, ge=1, le=65535, description="Port of the serving API.")
    serve_workers: int = Field(1, ge=1, description="Server processes (uvicorn workers).")
    serve_poll_seconds: float = Field(
        30.0, gt=0, description="How often serving looks for a moved @champion alias."
    )
    serve_token: str | None = Field(
        None,
        description="Bearer token the write endpoints (POST /v1/events) require; unset = writes "
        "refused. From the environment (PERSONALIZE_SERVE_TOKEN), never committed.",
    )
    serve_max_body_bytes: int = Field(
        1_048_576, ge=1, description="Largest request body serving accepts (413 beyond)."
    )
    serve_max_batch_events: int = Field(
        500, ge=1, description="Most events one POST /v1/events may carry (422 beyond)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("PERSONALIZE_CONFIG", DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    # ---- paths of the state dir -------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def landing_dir(self) -> Path:
        return self.state_dir / "landing"

    @property
    def curated_dir(self) -> Path:
        return self.state_dir / "curated"

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    @property
    def rejects_dir(self) -> Path:
        return self.state_dir / "rejects"

    @property
    def truth_dir(self) -> Path:
        return self.state_dir / "truth"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def mlflow_dir(self) -> Path:
        return self.state_dir / "mlflow"

    @property
    def feast_dir(self) -> Path:
        return self.state_dir / "feast"

    @property
    def alerts_file(self) -> Path:
        return self.state_dir / "alerts.jsonl"

    @property
    def audit_file(self) -> Path:
        return self.state_dir / "audit.jsonl"

    # ---- service locations per profile --------------------------------------------------------
    def _postgres_uri(self, database: str, driver: str = "postgresql+psycopg") -> str:
        server = self.postgres_dsn.split("://", 1)[1].rstrip("/")
        return f"{driver}://{server}/{database}"

    @property
    def airflow_sql_alchemy_conn(self) -> str:
        if self.profile == "prod":
            return self._postgres_uri(self.airflow_database)
        return f"sqlite:///{self.airflow_home / 'airflow.db'}"

    @property
    def mlflow_tracking_uri(self) -> str:
        """What every client (tasks, CLI, serving) talks to: a tracking server in prod."""
        if self.mlflow_uri:
            return self.mlflow_uri
        if self.profile == "prod":
            return DEFAULT_MLFLOW_SERVER
        return self.mlflow_backend_store_uri

    @property
    def mlflow_backend_store_uri(self) -> str:
        """The database behind MLflow: PostgreSQL in prod (the server's backend store)."""
        if self.profile == "prod":
            return self._postgres_uri(self.mlflow_database)
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_through_server(self) -> bool:
        """Whether clients reach MLflow over HTTP (artifacts then go through the server too)."""
        return self.mlflow_tracking_uri.startswith(("http://", "https://"))

    @property
    def mlflow_artifact_root(self) -> str:
        if self.mlflow_artifact_uri:
            return self.mlflow_artifact_uri
        return (self.mlflow_dir / "artifacts").as_uri()

    @property
    def executor(self) -> str:
        if self.airflow_executor:
            return self.airflow_executor
        return "CeleryExecutor" if self.profile == "prod" else "LocalExecutor"

    @property
    def celery_result_backend_uri(self) -> str:
        if self.celery_result_backend:
            return self.celery_result_backend
        return "db+" + self._postgres_uri(self.airflow_database)

    @property
    def worker_queues(self) -> tuple[str, ...]:
        return tuple(q.strip() for q in self.celery_worker_queues.split(",") if q.strip())

    @property
    def feast_registry_uri(self) -> str:
        if self.profile == "prod":
            return self._postgres_uri(self.feast_registry_database)
        return f"sqlite:///{self.feast_dir / 'registry.db'}"

    @property
    def feast_online_store(self) -> dict[str, str]:
        """The ``online_store`` block of Feast's ``feature_store.yaml`` for this profile."""
        if self.profile == "prod":
            host_port_db = self.redis_url.split("://", 1)[1]
            host_port, _, db = host_port_db.partition("/")
            connection = f"{host_port},db={db or 0}"
            return {"type": "redis", "connection_string": connection}
        return {
            "type": "pipelines.features.sqlite_store.EntityRowSQLiteOnlineStore",
            "path": str(self.feast_dir / "online.db"),
        }

    @property
    def feast_offline_dir(self) -> Path:
        return self.feast_dir / "offline"

    def ensure_dirs(self) -> Path:
        """Create the state dir layout; the only place the settings touch the disk."""
        for path in (
            self.landing_dir,
            self.curated_dir,
            self.quarantine_dir,
            self.rejects_dir,
            self.truth_dir,
            self.reports_dir,
            self.airflow_home,
            self.mlflow_dir,
            self.feast_offline_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        return self.state_dir

    def as_environment(self) -> dict[str, str]:
        """These settings as ``PERSONALIZE_*`` variables, so a DAG file or task parsed in another
        place (an Airflow worker, an in-process ``dag.test``) builds the same settings."""
        env = {}
        for name, value in self.model_dump(exclude={"require_services"}).items():
            if value is None:
                continue
            if name == "home":
                value = self.state_dir
            if isinstance(value, list | dict):
                text = json.dumps(value)  # pydantic-settings reads complex values as JSON
            elif isinstance(value, bool):
                text = str(value).lower()
            else:
                text = str(value)
            env[f"PERSONALIZE_{name.upper()}"] = text
        return env

    def describe(self) -> dict[str, str]:
        """What a person wants to see from ``personalize config``: where everything is."""
        return {
            "profile": self.profile,
            "home": str(self.state_dir),
            "landing": str(self.landing_dir),
            "curated": str(self.curated_dir),
            "quarantine": str(self.quarantine_dir),
            "airflow_db": self.airflow_sql_alchemy_conn,
            "mlflow_tracking_uri": self.mlflow_tracking_uri,
            "mlflow_backend_store": self.mlflow_backend_store_uri,
            "mlflow_artifacts": self.mlflow_artifact_root,
            "feast_registry": self.feast_registry_uri,
            "feast_online_store": self.feast_online_store["type"],
            "feast_offline_store": (
                f"spark ({self.spark_master}) over {self.feast_offline_dir}"
                if self.feature_engine == "spark"
                else f"duckdb over {self.feast_offline_dir}"
            ),
            "feature_engine": self.feature_engine,
            "airflow_executor": self.executor,
            **(
                {
                    "celery_broker": self.celery_broker_url,
                    "celery_workers": f"{self.celery_workers} x {self.celery_worker_concurrency} "
                    f"slot(s), queues {','.join(self.worker_queues)}",
                }
                if self.executor == "CeleryExecutor"
                else {}
            ),
        }


def get_settings(**overrides: object) -> Settings:
    """A fresh settings object: environment and ``personalize.toml`` are read on every call."""
    return Settings(**overrides)
