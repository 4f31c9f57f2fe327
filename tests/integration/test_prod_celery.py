"""The prod profile end to end: ``personalize init`` from empty, then ingest -> features -> train
-> gate -> monitor on a real scheduler and two real Celery workers, with Airflow and MLflow on
PostgreSQL (MLflow behind a real ``mlflow server``) and Feast's online store on Redis.

One cluster for the module (``pipelines.local.cluster.scratch_cluster``: the code ``personalize
up`` uses, ``plan_services`` / ``start_plan``, tuned by its ``FAST_AIRFLOW``), stopped after.
Faults are planted while it runs: a worker is killed in the middle of a training task, every
PostgreSQL connection of Airflow and MLflow is dropped between runs, and the online store's Redis
is down for one materialization. The same days run on the
local profile (``dag.test`` in a child process) and the models' metrics must be equal.

Everything is fresh per run: PostgreSQL databases with a unique suffix (dropped after), and a
``redis-server`` of the module's own on a free port (Celery broker and online store), so nothing
is shared with other tests or the machine's Redis. The module runs in xdist group ``prod`` (its
Airflow lives in child processes; the test process never imports Airflow).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings
from pipelines.local.cluster import ScratchCluster
from tests.conftest import require_redis_server, require_service

pytestmark = [pytest.mark.services, pytest.mark.cluster, pytest.mark.xdist_group("prod")]

TODAY = datetime.now(UTC).date()
LAST = TODAY - timedelta(days=1)  # the newest day the scheduler's catch-up reaches
DAG_DAYS = (LAST - timedelta(days=1), LAST)  # ingested by the DAGs; the days before are curated
SHOP = {"users": 300, "items": 60, "days": 16, "seed": 11}
KILLED_TASK = "train_propensity"  # the longest fit (its hyper-parameter search), heavy queue
RUN_TIMEOUT = 300.0
# scores only: timings and sizes differ between machines and runs
TIMING_WORDS = ("seconds", "time", "duration", "_s")


def _shop_settings(**overrides: Any) -> dict[str, Any]:
    """What the local and the prod run share: the days, seeds, retries and short waits."""
    return {
        "dags_start": DAG_DAYS[0].isoformat(),
        "task_retries": 2,
        "retry_delay_seconds": 1.0,
        "sensor_poke_seconds": 1.0,
        "sensor_timeout_seconds": 60.0,
        # the search ends when its candidates are done, not by the clock: equal on both
        "train_time_budget_seconds": 600.0,
        **overrides,
    }


LOCAL_REFERENCE = """
import json, sys
from datetime import date
from pipelines.config import get_settings
from pipelines.data.generator import ShopSpec
from pipelines.models.testing import curated_shop
from pipelines.orchestration import run_dag
from pipelines import registry
from pipelines.models.catalog import model_names

spec, out = json.loads(sys.argv[1]), sys.argv[4]
days = [date.fromisoformat(d) for d in sys.argv[2:4]]
settings = get_settings()
curated_shop(settings, ShopSpec(**{**spec, "start": date.fromisoformat(spec["start"])}),
             upto=date.fromordinal(days[0].toordinal() - 1))
states = []
for day in days:
    states += [(r.dag_id, r.state) for r in run_dag(settings, "ingest", day, follow=True)]
states += [(r.dag_id, r.state) for r in run_dag(settings, "train", days[-1], follow=True)]
states += [(r.dag_id, r.state) for r in run_dag(settings, "monitor", days[-1])]
client = registry.mlflow_client(settings)
metrics = {}
for model in model_names():
    version = registry.versions(settings, model)[0]
    metrics[model] = client.get_run(version.run_id).data.metrics
with open(out, "w") as handle:
    json.dump({"states": states, "metrics": metrics}, handle)
"""


@dataclass
class Cluster:
    settings: Settings
    local: Settings
    tag: str
    scratch: ScratchCluster
    init_outputs: list[str] = field(default_factory=list)
    init_codes: list[int] = field(default_factory=list)
    states: dict[str, list[str]] = field(default_factory=dict)  # dag_id -> run states
    runs: dict[str, list[dict]] = field(default_factory=dict)  # the catch-up's runs
    killed_task: dict | None = None
    retried_task: dict | None = None
    reconnected: dict | None = None
    local_result: dict = field(default_factory=dict)
    prod_metrics: dict = field(default_factory=dict)
    online: Any = None
    redis_fault: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _terminate_connections(settings: Settings) -> int:
    """pg_terminate_backend on every connection to the Airflow and MLflow databases."""
    import psycopg

    with psycopg.connect(settings.postgres_dsn + "/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
            ([settings.airflow_database, settings.mlflow_database],),
        ).fetchall()
    return len(rows)


def _worker_of(settings: Settings, pid: int) -> str | None:
    """The name of the Celery worker whose session runs the process ``pid``."""
    from pipelines.local import supervisor

    for record in supervisor.running_services(settings):
        if record.name.startswith(supervisor.CELERY_WORKER_SERVICE) and pid in {
            p.pid for p in record.processes
        }:
            return record.name
    return None


def _kill_session(settings: Settings, name: str) -> None:
    from pipelines.local import supervisor

    record = next(r for r in supervisor.running_services(settings) if r.name == name)
    for process in record.processes:
        with contextlib.suppress(Exception):  # gone already
            process.send_signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from pipelines.local import cluster as scratch_cluster

    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_redis_server()
    root = tmp_path_factory.mktemp("prod")
    local = Settings(profile="local", home=root / "local", **_shop_settings())
    reference = None
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(
            scratch_cluster.scratch_cluster(root, workers=2, **_shop_settings())
        )
        settings = scratch.settings
        found = Cluster(settings=settings, local=local, tag=scratch.tag, scratch=scratch)
        try:
            started = time.monotonic()
            for _ in range(2):
                done = scratch.cli("init")
                found.init_outputs.append(done.stdout + done.stderr)
                found.init_codes.append(done.returncode)
            found.seconds["init x2"] = time.monotonic() - started
            assert found.init_codes[0] == 0, found.init_outputs[0]

            # the same shop on both profiles: history curated, the last two days left to DAGs
            spec = {**SHOP, "start": (LAST - timedelta(days=SHOP["days"] - 1)).isoformat()}
            out = root / "local.json"
            reference = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    LOCAL_REFERENCE,
                    json.dumps(spec),
                    *(d.isoformat() for d in DAG_DAYS),
                    str(out),
                ],
                env={**os.environ, **local.as_environment()},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            from pipelines.data.generator import ShopSpec
            from pipelines.models.testing import curated_shop

            # the history is curated while the services start (the DAGs start paused)
            with ThreadPoolExecutor(1) as pool:
                curating = pool.submit(
                    curated_shop,
                    settings,
                    ShopSpec(**{**SHOP, "start": date.fromisoformat(spec["start"])}),
                    upto=DAG_DAYS[0] - timedelta(days=1),
                )
                api = scratch.start(timeout=240)
                curating.result()
            found.seconds.update(scratch.seconds)

            # the scheduler's own catch-up: one ingest run per day since dags_start, each
            # setting off features, which sets off monitor (assets), all on the Celery workers
            started = time.monotonic()
            for dag_id in ("ingest", "features", "monitor"):
                api.unpause(dag_id)

            def settled(dag_id: str, count: int) -> list[dict] | None:
                runs = api.runs(dag_id)
                finished = [r for r in runs if r["state"] in ("success", "failed")]
                return runs if len(finished) >= count and len(finished) == len(runs) else None

            for dag_id in ("ingest", "features", "monitor"):
                runs = api.wait_for(
                    lambda d=dag_id: settled(d, len(DAG_DAYS)), f"{dag_id} runs", RUN_TIMEOUT
                )
                found.states[dag_id] = sorted(r["state"] for r in runs)
                found.runs[dag_id] = runs
            found.seconds["ingest+features+monitor x2"] = time.monotonic() - started

            # train on Celery; a worker is killed while it runs a fit task (heavy queue)
            started = time.monotonic()
            api.unpause("train")
            train_run = api.trigger("train", LAST)

            def running_fit() -> dict | None:
                for ti in api.task_instances("train", train_run):
                    if ti["task_id"] == KILLED_TASK and ti["state"] == "running" and ti.get("pid"):
                        worker = _worker_of(settings, int(ti["pid"]))
                        if worker:
                            return {**ti, "worker": worker}
                return None

            found.killed_task = api.wait_for(running_fit, "a running fit task", timeout=180)
            _kill_session(settings, found.killed_task["worker"])
            state = api.wait_run("train", train_run, RUN_TIMEOUT)
            found.states["train"] = [state]
            found.retried_task = next(
                ti for ti in api.task_instances("train", train_run) if ti["task_id"] == KILLED_TASK
            )
            found.seconds["train (one worker killed)"] = time.monotonic() - started
            scratch.restart_service(found.killed_task["worker"])  # back to two workers

            # every Airflow and MLflow connection dropped between runs: the next run reconnects
            started = time.monotonic()
            dropped = _terminate_connections(settings)
            monitor_run = api.trigger("monitor", LAST)
            found.reconnected = {
                "dropped": dropped,
                "state": api.wait_run("monitor", monitor_run, RUN_TIMEOUT),
            }
            found.seconds["monitor after dropped connections"] = time.monotonic() - started

            from mlflow import MlflowClient

            from pipelines.models.catalog import model_names

            client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
            for model in model_names():
                versions = client.search_model_versions(f"name = '{model}'")
                found.prod_metrics[model] = {
                    "versions": len(versions),
                    "aliases": client.get_registered_model(model).aliases,
                    "metrics": client.get_run(versions[0].run_id).data.metrics,
                }
            from pipelines.features.online import online_features

            found.online = online_features(settings, _users_of_day(settings, LAST), "propensity_v1")

            started = time.monotonic()
            output, _ = reference.communicate(timeout=600)
            assert reference.returncode == 0, output.decode(errors="replace")[-3000:]
            found.local_result = json.loads(out.read_text())
            found.seconds["local reference (waited)"] = time.monotonic() - started
            yield found
        finally:
            if reference is not None and reference.poll() is None:
                reference.kill()
                reference.wait(10)
            print(f"\nprod cluster timings (s): {json.dumps(found.seconds)}")


def _users_of_day(settings: Settings, day: date) -> list[str]:
    import pandas as pd

    from pipelines.data.partitions import parquet_files, partition_dir

    files = parquet_files(partition_dir(settings.curated_dir, "events", day))
    return sorted(pd.concat(pd.read_parquet(f) for f in files)["user_id"].unique())[:20]


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not any(w in k for w in TIMING_WORDS)}


def test_init_creates_everything_from_empty_then_finds_it(cluster: Cluster) -> None:
    first, second = cluster.init_outputs
    assert cluster.init_codes == [0, 0], second
    for name in ("airflow", "mlflow", "feast"):
        assert f"created  database pz_{cluster.tag}_{name}" in first, first
    assert "created  airflow metadata DB" in first
    assert "created  mlflow store" in first
    assert "created  feast repo" in first
    assert "created" not in second.replace("created 0", ""), second
    assert "nothing to do" in second


def test_the_cycle_runs_on_celery_and_matches_the_local_profile(cluster: Cluster) -> None:
    assert cluster.states == {
        "ingest": ["success"] * 2,
        "features": ["success"] * 2,
        "monitor": ["success"] * 2,
        "train": ["success"],
    }, cluster.states
    local = cluster.local_result
    assert all(state == "success" for _, state in local["states"]), local["states"]
    for model, prod in cluster.prod_metrics.items():
        assert prod["versions"] == 1, (model, prod)  # no duplicate version from the retry
        assert prod["aliases"].get("challenger") == "1", prod["aliases"]
        scores = _scores(prod["metrics"])
        assert scores, model
        assert scores == _scores(local["metrics"][model]), model


def test_online_features_come_from_redis(cluster: Cluster) -> None:
    assert cluster.settings.feast_online_store["type"] == "redis"
    served = cluster.online
    assert len(served) == 20
    assert served["views_1d"].notna().all(), served


def test_a_killed_worker_task_is_retried_to_the_right_result(cluster: Cluster) -> None:
    killed, retried = cluster.killed_task, cluster.retried_task
    assert killed is not None and retried is not None
    assert retried["state"] == "success"
    assert retried["try_number"] > killed["try_number"], (killed, retried)


def test_the_next_run_reconnects_after_postgres_drops_every_connection(
    cluster: Cluster,
) -> None:
    assert cluster.reconnected is not None
    assert cluster.reconnected["dropped"] > 0
    assert cluster.reconnected["state"] == "success"


def test_redis_down_during_materialization_fails_clearly_and_the_retry_completes(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The online store's Redis is down (nothing on its port) for one try of the day's
    materialization, then back: the try names the unreachable store, the next one writes."""
    import redis

    from pipelines.features import store as feast_store
    from pipelines.features.online import online_features
    from pipelines.flows.features import materialize_day
    from pipelines.local.cluster import start_redis, stop_process
    from pipelines.local.supervisor import free_port

    port = free_port()
    settings = cluster.settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    feast_store.clear_store_cache()
    with pytest.raises(redis.ConnectionError, match=f"127.0.0.1:{port}"):
        materialize_day(settings, LAST)
    server = start_redis(port, tmp_path)
    try:
        written = materialize_day(settings, LAST)["rows"]
        # the day's feature views (recommendations and segments come from training, not the day)
        assert written["user_activity"] > 0 and written["item_popularity"] > 0, written
        served = online_features(settings, _users_of_day(settings, LAST), "propensity_v1")
        assert served["views_1d"].notna().all()
    finally:
        stop_process(server)
        feast_store.clear_store_cache()


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _table(root: Path, table: str, day: date | None = None) -> Any:
    """A partitioned table under ``root`` (one day, or every day), in a stable row order."""
    import pandas as pd

    pattern = f"date={day.isoformat()}/*.parquet" if day else "date=*/*.parquet"
    files = sorted((root / table).glob(pattern))
    assert files, (root, table, day)
    frame = pd.concat(pd.read_parquet(f) for f in files)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_two_days_run_at_once_without_interference(cluster: Cluster) -> None:
    """The second day's ingest runs while the first day's features and monitor run (other DAGs,
    other workers); each day's curated events and features equal the local profile's, which ran
    the days one after the other."""
    first_day_runs = [
        min(cluster.runs[d], key=lambda r: _stamp(r["start_date"])) for d in ("features", "monitor")
    ]
    second_ingest = max(cluster.runs["ingest"], key=lambda r: _stamp(r["start_date"]))
    overlaps = [
        run
        for run in first_day_runs
        if _stamp(run["start_date"]) < _stamp(second_ingest["end_date"])
        and _stamp(second_ingest["start_date"]) < _stamp(run["end_date"])
    ]
    assert overlaps, (first_day_runs, second_ingest)
    for day in DAG_DAYS:
        prod = _table(cluster.settings.curated_dir, "events", day)
        local = _table(cluster.local.curated_dir, "events", day)
        assert len(prod) == len(local) > 0
        assert prod.equals(local)
    for table in ("user_activity", "item_popularity"):
        prod_features = _table(cluster.settings.feast_offline_dir, table)
        assert prod_features.equals(_table(cluster.local.feast_offline_dir, table)), table
