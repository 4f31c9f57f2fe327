"""What every ``personalize`` command shares: the app, its consoles, the settings of the run,
usage errors, day parsing, and running DAGs with a progress bar.

Exit codes: 0 ok, 1 data or validation problem, 2 usage error. Heavy libraries are imported inside
the commands so that ``personalize --help`` stays instant.
"""

from __future__ import annotations

import logging
import os
import warnings
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipelines.config import Settings, get_settings

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="personalize",
    help=(
        "MLOps for e-commerce personalization: validated daily ingest, Feast features, "
        "MLflow models and Evidently monitoring on Airflow 3.\n\n"
        "Start with `make quickstart`, or `personalize generate` to create a synthetic shop."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj["settings"]


def usage_error(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_USAGE)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="State dir (default: $PERSONALIZE_HOME or ./.personalize).",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="local (default) or prod; env PERSONALIZE_PROFILE."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Airflow's task logs and tracebacks.")
    ] = False,
) -> None:
    if not verbose:
        # each failed task is summarised in one line by the command itself; the libraries'
        # progress bars and notices (MLflow's artifact downloads, sklearn's warnings) are noise
        # next to the command's own report
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # MLflow re-reads it on import
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore")
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if profile is not None:
        if profile not in ("local", "prod"):
            raise usage_error(f"--profile {profile!r}: expected local or prod")
        overrides["profile"] = profile
    ctx.obj = {"settings": get_settings(**overrides)}


def progress_bar(
    *, remaining: bool = False, hidden: bool = False, to: Console | None = None
) -> Any:
    """The commands' progress bar: what is happening, the bar, done/total and the time elapsed
    (or left, with ``remaining``), on stderr unless ``to`` says otherwise, so stdout stays the
    command's output; ``hidden`` when the output is JSON."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn() if remaining else TimeElapsedColumn(),
        console=to or err_console,
        transient=True,
        disable=hidden,
    )


def run_dags(
    settings: Settings,
    dag_id: str,
    days: list[date],
    *,
    follow: bool,
    conf: dict | None = None,
) -> list:
    """Run ``dag_id`` for each day with a progress bar per day and DAG; print what happened."""
    from pipelines.orchestration.runner import DagImportError, RunEvent, UnknownDag, run_dag

    records = []
    with progress_bar() as progress:
        overall = progress.add_task(f"{dag_id}", total=len(days))

        def show(event: RunEvent) -> None:
            if event.kind == "started":
                progress.update(overall, description=f"{event.dag_id} {event.day}: running")
                return
            mark = "[green]✓[/]" if event.state == "success" else "[red]✗[/]"
            seconds = f" ({event.duration_s:.1f}s)" if event.duration_s else ""
            progress.console.print(f"{mark} {event.dag_id} {event.day} {event.state}{seconds}")

        for day in days:
            try:
                day_records = run_dag(
                    settings, dag_id, day, follow=follow, conf=conf, on_event=show
                )
            except (UnknownDag, DagImportError) as problem:
                raise usage_error(str(problem)) from None
            records.extend(day_records)
            progress.advance(overall)
    reporters = _day_reporters()
    for record in records:
        if len(days) > 1 and record.state == "success":
            continue  # a long backfill lists only the days that need a look
        for line in reporters.get(record.dag_id, lambda *_: [])(settings, record.day):
            console.print(f"  {line}", highlight=False, markup=False)
        for failed in record.failed_tasks:
            console.print(f"  [red]{record.dag_id} {record.day} {failed}[/]", highlight=False)
        if record.error:
            console.print(f"  [red]{record.dag_id} {record.day}: {record.error}[/]")
        for follow_up in record.follow_ups:
            console.print(f"  [yellow]{follow_up.describe()}[/]", highlight=False)
    return records


def plain(value: object) -> object:
    """Numpy/pandas scalars as plain Python; NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _day_reporters() -> dict:
    """Per DAG, what a person wants to see after its run for a day (paths to look at)."""
    from pipelines.flows.features import day_report as features_report
    from pipelines.flows.monitor import day_report as monitor_report
    from pipelines.flows.train import day_report as train_report
    from pipelines.validation.ingest import day_report as ingest_report

    return {
        "ingest": ingest_report,
        "features": features_report,
        "train": train_report,
        "monitor": monitor_report,
    }


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise usage_error(f"{option} {text!r} is not a date YYYY-MM-DD") from None


# these modules register their commands on `app` (alerts, load-history, train, models, ..., story)
