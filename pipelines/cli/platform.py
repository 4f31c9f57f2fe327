"""``personalize init`` (create what the profile needs) and ``personalize service NAME`` (run one
long-lived component in the foreground: a container's command, and what ``up`` starts)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipelines.cli.common import EXIT_DATA, app, console, err_console, settings_of, usage_error


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create what the active profile needs and is missing, and say what was created and what was
    found already; safe to re-run.

    prod (`personalize --profile prod init`): the PostgreSQL databases of Airflow, MLflow and the
    Feast registry, Airflow's metadata DB migration, MLflow's schema and the Feast apply (registry
    on PostgreSQL, online tables in Redis). local: the same on SQLite files in the state dir.
    """
    from pipelines.orchestration.initialise import InitError, InitStep, initialise

    settings = settings_of(ctx)
    console.print(f"init: profile [bold]{settings.profile}[/], state dir {settings.state_dir}")

    def show(step: InitStep) -> None:
        colour = "green" if step.outcome == "created" else "dim"
        console.print(f"  [{colour}]{step.describe()}[/]", highlight=False)

    try:
        steps = initialise(settings, on_step=show)
    except InitError as problem:
        err_console.print(f"[bold red]error:[/] {problem}")
        raise typer.Exit(EXIT_DATA) from None
    created = [step for step in steps if step.outcome == "created"]
    if created:
        console.print(f"created {len(created)}, found {len(steps) - len(created)}")
    else:
        console.print(f"nothing to do: all {len(steps)} found in place")


def _service_help() -> str:
    from pipelines.local.supervisor import SERVICE_NAMES

    return ", ".join(SERVICE_NAMES)


@app.command("service")
def service(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="airflow-api-server, airflow-scheduler, airflow-dag-processor, "
            "airflow-triggerer, airflow-celery-worker, mlflow or serve.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address a server binds (api-server, mlflow, serve).")
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help="Its port (default: Airflow 8080, MLflow 5000, serve serve_port); for the other "
            "Airflow components, the API server's port.",
            min=1,
            max=65535,
        ),
    ] = None,
) -> None:
    """Run ONE long-lived service of the active profile in the foreground, replacing this process
    (exec), with the same command and environment `personalize up` uses. Services:
    airflow-api-server, airflow-scheduler, airflow-dag-processor, airflow-triggerer,
    airflow-celery-worker (queues of celery_worker_queues), mlflow (tracking server; in prod on
    the PostgreSQL backend store, serving the artifacts) and serve (the real-time API).

    Run `personalize init` once first. A container's command is e.g.
    `personalize --profile prod service airflow-scheduler`.
    """
    from pipelines.local import supervisor

    settings = settings_of(ctx)
    if name not in supervisor.SERVICE_NAMES:
        raise usage_error(f"unknown service {name!r}; known: {_service_help()}")
    api = name == "airflow-api-server" or not name.startswith("airflow-")
    spec = supervisor.service_spec(
        settings,
        name,
        host=host,
        port=port if api else None,
        airflow_port=None if api else port,
        log_level=os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
    )
    settings.ensure_dirs()
    os.chdir(settings.state_dir)
    err_console.print(f"service {name}: {' '.join(spec.argv)}")
    os.execve(spec.argv[0], list(spec.argv), dict(spec.env))
