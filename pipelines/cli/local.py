"""``personalize up`` / ``personalize down``: the Airflow and MLflow UIs of the active profile
(and, with ``up --serve``, the serving API).

Registered on the main app by :mod:`pipelines.cli`. The work is in
:mod:`pipelines.local.supervisor`; this module only talks to the person at the terminal.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.cli.common import EXIT_DATA, app, console, err_console, settings_of, usage_error
from pipelines.config import Settings

if TYPE_CHECKING:
    from pipelines.local.supervisor import ServicePlan, ServiceRecord, Stopped

EXIT_INTERRUPTED = 130
# exit codes of a component that was told to stop (`personalize down`, kill): not a crash
STOPPED_ON_REQUEST = (0, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _print_stopped(stopped: list[Stopped]) -> None:
    words = {
        "terminated": "stopped",
        "killed": "killed (it did not stop in time on SIGTERM)",
        "stale": "removed the stale pid file of",
    }
    for item in stopped:
        console.print(f"  {words[item.how]} {item.name} (pid {item.pid})")


def _print_running(records: list[ServiceRecord]) -> None:
    for record in records:
        where = f"  {record.url}" if record.url else ""
        note = "" if record.state == "running" else "  (main process gone, children left)"
        console.print(f"  {record.name:<22} pid {record.pid}{where}{note}")


def _print_ready(settings: Settings, plan: ServicePlan, seconds: float, detach: bool) -> None:
    from pipelines.local import supervisor

    urls = {spec.name: spec.url for spec in plan.services if spec.url}
    login = supervisor.airflow_login(settings)
    console.print(
        f"[bold green]up[/] in {seconds:.0f} s — profile [bold]{settings.profile}[/], "
        f"state dir {settings.state_dir}"
    )
    console.print(f"  Airflow  {urls['airflow-api-server']}")
    if login is None:
        console.print("           no login needed (simple_auth_manager_all_admins)")
    else:
        user, password = login
        console.print(f"           login [bold]{user}[/] / [bold]{password}[/]")
    console.print("           DAGs start paused: switch one on to let the scheduler run it")
    console.print(f"  MLflow   {urls['mlflow']}")
    serve_url = urls.get(supervisor.SERVE_SERVICE)
    if serve_url:
        console.print(f"  Serving  {serve_url}   docs {serve_url}{supervisor.SERVE_DOCS_PATH}")
        ready, problems = supervisor.serve_readiness(serve_url)
        if ready:
            console.print("           [green]ready[/]: answering with the @champion models")
        else:
            console.print(
                f"           [yellow]not ready[/]: {'; '.join(problems)}", highlight=False
            )
            console.print(
                "           it answers once a champion exists (`personalize train`, or "
                "`personalize story`) and polls for it every serve_poll_seconds"
            )
        if not settings.serve_token:
            console.print(
                "           PERSONALIZE_SERVE_TOKEN is not set: POST /v1/events answers 401"
            )
    console.print(f"  logs     {supervisor.log_dir(settings)}")
    if detach:
        console.print("Running in the background; `personalize down` stops them.")
    else:
        console.print("Ctrl-C stops them.")


@app.command()
def up(
    ctx: typer.Context,
    airflow_port: Annotated[
        int, typer.Option("--airflow-port", help="Airflow UI/API port on 127.0.0.1 (0 = any free).")
    ] = 8080,
    mlflow_port: Annotated[
        int, typer.Option("--mlflow-port", help="MLflow UI port on 127.0.0.1 (0 = any free).")
    ] = 5000,
    detach: Annotated[
        bool,
        typer.Option("--detach", "-d", help="Leave them running and return; stop with `down`."),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the UIs (and the API) to answer.", min=1)
    ] = 180.0,
    triggerer: Annotated[
        bool,
        typer.Option(help="Also run Airflow's triggerer (only deferrable tasks need it)."),
    ] = False,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Also run the serving API (`personalize serve`, one worker)."),
    ] = False,
    serve_port: Annotated[
        int | None,
        typer.Option(
            "--serve-port", help="Serving API port on 127.0.0.1 (default: serve_port; 0 = any)."
        ),
    ] = None,
) -> None:
    """Serve the Airflow UI (with its scheduler and DAG processor) and the MLflow UI of the active
    profile on localhost, print their URLs and the Airflow login; Ctrl-C stops them. With
    `--serve`, the serving API too (its URL, /docs and whether it is ready are printed).

    prod (`personalize --profile prod up`, after `personalize --profile prod init`): Airflow on
    the CeleryExecutor with `celery_workers` workers (queues default and heavy), and MLflow as a
    tracking server on its PostgreSQL store that every task talks to. Each component is what
    `personalize service NAME` runs.

    Logs go to `<home>/logs/` (`personalize -v up`: Airflow at INFO), pid files to `<home>/run/`.
    """
    from pipelines.local import supervisor

    settings = settings_of(ctx)
    if serve_port is not None and not serve:
        raise usage_error("--serve-port needs --serve (it is the serving API's port)")
    supervisor.remove_stale_pid_files(settings)
    running = supervisor.running_services(settings)
    if running:
        names = {record.name for record in running}
        expected = supervisor.plan_services(settings, triggerer=triggerer, serve=serve).names
        missing = [name for name in expected if name not in names]
        console.print(f"Services of {settings.state_dir} are already running:")
        _print_running(running)
        if missing:
            err_console.print(
                f"[bold red]error:[/] not running: {', '.join(missing)}. "
                "Run `personalize down`, then `personalize up`."
            )
            raise typer.Exit(EXIT_DATA)
        console.print("`personalize down` stops them.")
        return

    try:
        requested = {"--airflow-port": airflow_port, "--mlflow-port": mlflow_port}
        if serve:
            requested["--serve-port"] = settings.serve_port if serve_port is None else serve_port
        ports = supervisor.resolve_ports(requested)
    except supervisor.ServiceError as problem:
        raise usage_error(str(problem)) from None
    if settings.profile == "prod" and settings.mlflow_uri is None:
        # every process (tasks on the workers, serving) talks to the tracking server started here
        settings = settings.model_copy(
            update={"mlflow_uri": f"http://{supervisor.HOST}:{ports['--mlflow-port']}"}
        )
    verbose = bool(ctx.parent and ctx.parent.params.get("verbose"))
    plan = supervisor.plan_services(
        settings,
        airflow_port=ports["--airflow-port"],
        mlflow_port=ports["--mlflow-port"],
        triggerer=triggerer,
        log_level="INFO" if verbose else "WARNING",
        serve=serve,
        serve_port=ports.get("--serve-port"),
    )

    # a closed terminal or a `kill` stops the services the same way Ctrl-C does; SIGINT is set
    # explicitly because a shell starts background jobs (`personalize up &`) with it ignored
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in signals}
    try:
        try:
            what = "Airflow, MLflow and the serving API" if serve else "Airflow and MLflow"
            with console.status(f"starting {what}…") as status:

                def show(waiting_for: list[str], elapsed: float) -> None:
                    status.update(f"waiting for {', '.join(waiting_for)} … {elapsed:.0f} s")

                processes, seconds = supervisor.start_plan(
                    settings, plan, timeout=timeout, on_progress=show
                )
        except supervisor.ServiceError as problem:
            err_console.print(f"[bold red]error:[/] {problem}")
            raise typer.Exit(EXIT_DATA) from None
        except KeyboardInterrupt:
            console.print("interrupted: the services started so far are stopped again")
            raise typer.Exit(EXIT_INTERRUPTED) from None

        _print_ready(settings, plan, seconds, detach)
        if detach:
            return
        try:
            name, code = supervisor.watch(processes)
        except KeyboardInterrupt:
            console.print("stopping…")
            _print_stopped(supervisor.stop_services(settings, names=list(processes)))
            return
        if code in STOPPED_ON_REQUEST or not supervisor.pid_file(settings, name).exists():
            # `personalize down` from another shell (or a kill): a requested stop
            console.print(f"{name} was stopped from outside; stopping the rest")
            _print_stopped(supervisor.stop_services(settings, names=list(processes)))
            return
        err_console.print(
            f"[bold red]error:[/] {name} exited (code {code}); last lines of "
            f"{supervisor.log_file(settings, name)}:\n{supervisor.log_tail(settings, name)}"
        )
        console.print("stopping the others…")
        _print_stopped(supervisor.stop_services(settings, names=list(processes)))
        raise typer.Exit(EXIT_DATA)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def down(
    ctx: typer.Context,
    timeout: Annotated[
        float, typer.Option(help="Seconds each service gets to stop before SIGKILL.", min=0)
    ] = 15.0,
) -> None:
    """Stop the Airflow, MLflow and serving services `personalize up` started on this state dir
    (and remove pid files of ones that are gone)."""
    from pipelines.local import supervisor

    settings = settings_of(ctx)
    stopped = supervisor.stop_services(settings, timeout=timeout)
    if not stopped:
        console.print(f"nothing running on {settings.state_dir}")
        return
    _print_stopped(stopped)
