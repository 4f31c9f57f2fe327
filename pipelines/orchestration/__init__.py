"""Running the platform's DAGs: Airflow environment per state dir and an in-process runner.

Importing this package does not import Airflow; :func:`configure_airflow` must run before anything
else imports it (the runner's functions call it for you).
"""

from pipelines.orchestration.airflow_env import (
    AirflowConfigError,
    airflow_environment,
    configure_airflow,
)
from pipelines.orchestration.runner import (
    DagImportError,
    FailedTask,
    FollowUp,
    RunEvent,
    RunRecord,
    UnknownDag,
    backfill,
    load_dags,
    run_dag,
)

__all__ = [
    "AirflowConfigError",
    "DagImportError",
    "FailedTask",
    "FollowUp",
    "RunEvent",
    "RunRecord",
    "UnknownDag",
    "airflow_environment",
    "backfill",
    "configure_airflow",
    "load_dags",
    "run_dag",
]
