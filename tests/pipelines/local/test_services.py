"""`personalize service NAME` and the prod plan of `up`: which commands, queues and stores (pure:
nothing is started here; tests/integration/test_prod_celery.py runs them for real)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.local import supervisor


@pytest.fixture
def prod(tmp_path: Path) -> Settings:
    return Settings(profile="prod", home=tmp_path / "home", celery_workers=3)


def test_every_service_name_has_a_spec_and_nothing_else_does(prod: Settings) -> None:
    for name in supervisor.SERVICE_NAMES:
        spec = supervisor.service_spec(prod, name)
        assert spec.argv[0] == sys.executable
    with pytest.raises(supervisor.ServiceError, match="unknown service"):
        supervisor.service_spec(prod, "airflow-webserver")


def test_service_help_names_every_service() -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["service", "--help"], terminal_width=400)
    assert result.exit_code == 0
    described = " ".join(result.output.split())
    for name in supervisor.SERVICE_NAMES:
        assert name in described, name


def test_prod_up_starts_celery_workers_on_both_queues(prod: Settings) -> None:
    plan = supervisor.plan_services(prod, airflow_port=18080, mlflow_port=15000)
    workers = [s for s in plan.services if s.name.startswith("airflow-celery-worker")]
    assert [w.name for w in workers] == [f"airflow-celery-worker-{i}" for i in (1, 2, 3)]
    for index, worker in enumerate(workers, start=1):
        argv = list(worker.argv)
        assert argv[argv.index("--queues") + 1] == "default,heavy"
        assert argv[argv.index("--celery-hostname") + 1] == f"worker-{index}@%h"
        assert worker.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert worker.env["AIRFLOW__CELERY__BROKER_URL"] == prod.celery_broker_url
        assert worker.env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://")
        assert worker.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://127.0.0.1:18080/execution/"
        )
    assert {w.name for w in workers} <= plan.background  # after the UIs answer
    local = supervisor.plan_services(Settings(home=prod.home))
    assert not [s for s in local.services if "celery" in s.name]
    assert local.services[1].env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_prod_mlflow_server_keeps_postgres_and_serves_the_artifacts(prod: Settings) -> None:
    spec = supervisor.service_spec(prod, "mlflow", host="0.0.0.0", port=5001)
    argv = list(spec.argv)
    options = {flag: argv[i + 1] for i, flag in enumerate(argv[:-1]) if flag.startswith("--")}
    assert options["--backend-store-uri"] == prod.mlflow_backend_store_uri
    assert options["--backend-store-uri"].startswith("postgresql+psycopg://")
    assert options["--artifacts-destination"] == prod.mlflow_artifact_root
    assert "--serve-artifacts" in spec.argv
    assert (options["--host"], options["--port"]) == ("0.0.0.0", "5001")
    assert spec.health_url == "http://127.0.0.1:5001/health"


def test_heavy_tasks_go_to_the_heavy_queue() -> None:
    dags = Path(__file__).resolve().parents[3] / "dags"
    for dag, task in (("train", "fit"), ("monitor", "watch")):
        text = (dags / f"{dag}.py").read_text()
        assert f"queue=HEAVY_QUEUE)  # Celery: the heavy queue\n    def {task}(" in text


def test_service_help_lists_every_name() -> None:
    personalize = Path(sys.executable).parent / "personalize"
    done = subprocess.run(
        [str(personalize), "service", "--help"], capture_output=True, text=True, check=True
    )
    text = " ".join(done.stdout.split())
    for name in supervisor.SERVICE_NAMES:
        assert name in text
