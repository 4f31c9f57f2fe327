"""A scratch prod cluster on this machine, for the integration tests and ``bench/scale.py``.

What ``personalize up`` runs in prod (``plan_services`` / ``start_plan``: MLflow tracking server,
Airflow API server, scheduler, DAG processor and Celery workers), on throwaway stores so nothing
is shared with another run, a test or the machine's own services:

* PostgreSQL databases named ``pz_<tag>_{airflow,mlflow,feast}`` (dropped on close);
* a ``redis-server`` of its own on a free port (Celery broker on db 1, online store on db 0),
  without persistence, stopped on close;
* the state dir under the given root, and the ports the kernel hands out (all distinct).

:data:`FAST_AIRFLOW` tunes the services for short runs: the DAG processor parses each file once
instead of every 30 s (on two cores a re-parse storm competes with the tasks), the scheduler and
the workers notice a dead task in seconds, and logs stay at WARNING.

Closing stops every service (their sessions, so task processes too), the Redis server and drops
the databases, whatever happened before; it is safe to call twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.local import supervisor

# what the DAGs of dags/ are called once the DAG processor has parsed them
CYCLE_DAGS = ("ingest", "features", "monitor", "train")
POLL_SECONDS = 0.5

FAST_AIRFLOW = {
    # there is no login on a scratch cluster (the REST API is used by a script)
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    # parse each DAG file once: the files do not change during a run
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "3600",
    # a killed worker's task is found in seconds, not minutes
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class ClusterError(RuntimeError):
    """The scratch cluster cannot be started; the message says what is missing."""


# ---- Redis ------------------------------------------------------------------------------------


def start_redis(port: int, directory: Path, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """A ``redis-server`` on ``127.0.0.1:port`` without persistence, answering PING."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise ClusterError("redis-server is not installed (apt-get install redis-server)")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            supervisor.HOST,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(redis.ConnectionError):
            if redis.Redis(host=supervisor.HOST, port=port, socket_timeout=1).ping():
                return process
        time.sleep(0.1)
    stop_process(process)
    raise ClusterError(f"redis-server on port {port} did not answer (port taken?)")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = supervisor.free_port()
        if port not in ports:
            ports.append(port)
    return ports


# ---- PostgreSQL -------------------------------------------------------------------------------


def drop_databases(settings: Settings) -> None:
    import psycopg
    from psycopg import sql

    from pipelines.orchestration.initialise import prod_databases

    with psycopg.connect(settings.postgres_dsn + "/postgres", autocommit=True) as conn:
        for name in prod_databases(settings):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# ---- Airflow's REST API -----------------------------------------------------------------------


class AirflowApi:
    """Airflow's REST API (v2) of the cluster, as an operator's script would use it."""

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=timeout)
        token = self.http.get("/auth/token").json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"/api/v2{path}", params=params)
        response.raise_for_status()
        return response.json()

    def unpause(self, dag_id: str) -> None:
        self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, day: date, conf: Mapping[str, Any] | None = None) -> str:
        logical = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        response = self.http.post(
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={
                "logical_date": logical.isoformat(),
                "conf": {"day": day.isoformat(), **(conf or {})},
            },
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)[
            "task_instances"
        ]

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 300.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        def done() -> str | None:
            state = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return self.wait_for(done, f"{dag_id} {run_id}", timeout)

    def close(self) -> None:
        self.http.close()


# ---- the cluster ------------------------------------------------------------------------------


@dataclass
class ScratchCluster:
    """One scratch prod cluster: its settings, ports and (once started) services and API."""

    root: Path
    settings: Settings
    tag: str
    airflow_port: int
    mlflow_port: int
    redis_port: int
    env: dict[str, str] = field(default_factory=dict)  # on top of os.environ, for every child
    redis: subprocess.Popen[bytes] | None = None
    plan: supervisor.ServicePlan | None = None
    api: AirflowApi | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.settings.as_environment(), **self.env}

    def cli(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """``personalize ARGS`` on this cluster's settings, in a child process."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "personalize"), *args],
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 240.0, dags: tuple[str, ...] = CYCLE_DAGS) -> AirflowApi:
        """Start the services as ``personalize up`` does; return once ``dags`` are parsed."""
        started = time.monotonic()
        plan = supervisor.plan_services(
            self.settings, airflow_port=self.airflow_port, mlflow_port=self.mlflow_port
        )

        def tuned(spec: supervisor.ServiceSpec) -> supervisor.ServiceSpec:
            return dataclasses.replace(spec, env={**spec.env, **self.env})

        self.plan = dataclasses.replace(
            plan,
            services=tuple(tuned(s) for s in plan.services),
            prepare=tuple(tuned(s) for s in plan.prepare),
        )
        supervisor.start_plan(self.settings, self.plan, timeout=timeout)
        self.api = AirflowApi(f"http://{supervisor.HOST}:{self.airflow_port}")
        api = self.api
        api.wait_for(
            lambda: all(api.http.get(f"/api/v2/dags/{d}").status_code == 200 for d in dags),
            "the DAG processor to parse dags/",
            timeout=max(10.0, timeout - (time.monotonic() - started)),
        )
        self.seconds["cluster start"] = round(time.monotonic() - started, 1)
        return api

    def restart_service(self, name: str) -> None:
        assert self.plan is not None
        supervisor.start_service(
            self.settings, next(s for s in self.plan.services if s.name == name)
        )

    def close(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None
        supervisor.stop_services(self.settings, timeout=10)
        if self.redis is not None:
            stop_process(self.redis)
            self.redis = None
        with contextlib.suppress(Exception):  # PostgreSQL itself gone: nothing to drop
            drop_databases(self.settings)


@contextlib.contextmanager
def scratch_cluster(
    root: Path, *, workers: int = 2, env: Mapping[str, str] | None = None, **overrides: Any
) -> Iterator[ScratchCluster]:
    """A :class:`ScratchCluster` under ``root`` with its own Redis running (services not yet
    started: call ``init`` through ``cli("init")`` and then ``start``); closed on exit.

    ``overrides`` are further settings (the days, retries, ...) and may replace the cluster's own
    (``mlflow_uri=None``: no tracking server of the cluster's, as ``personalize story --profile
    prod`` starts its own); ``env`` goes on top of :data:`FAST_AIRFLOW` into every child's
    environment.
    """
    root.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    airflow_port, mlflow_port, redis_port = distinct_free_ports(3)
    settings = Settings(
        **{
            "profile": "prod",
            "home": root / "home",
            "airflow_database": f"pz_{tag}_airflow",
            "mlflow_database": f"pz_{tag}_mlflow",
            "feast_registry_database": f"pz_{tag}_feast",
            "redis_url": f"redis://{supervisor.HOST}:{redis_port}/0",
            "celery_broker_url": f"redis://{supervisor.HOST}:{redis_port}/1",
            "mlflow_uri": f"http://{supervisor.HOST}:{mlflow_port}",
            "celery_workers": workers,
            **overrides,
        }
    )
    cluster = ScratchCluster(
        root=root,
        settings=settings,
        tag=tag,
        airflow_port=airflow_port,
        mlflow_port=mlflow_port,
        redis_port=redis_port,
        env={**FAST_AIRFLOW, **(env or {})},
    )
    try:
        cluster.redis = start_redis(redis_port, root)
        yield cluster
    finally:
        cluster.close()
