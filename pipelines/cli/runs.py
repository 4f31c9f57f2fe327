"""Run the DAGs: `run` one DAG for a day, `backfill` a range of days."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli.common import (
    EXIT_DATA,
    app,
    console,
    parse_day,
    run_dags,
    settings_of,
    usage_error,
)


@app.command()
def run(
    ctx: typer.Context,
    dag_id: Annotated[str, typer.Argument(metavar="DAG", help="ingest, features, train, monitor…")],
    date_: Annotated[
        str | None, typer.Option("--date", help="Data day to run (default: yesterday, UTC).")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Also run, in order, what this run sets off (asset consumers, triggered DAGs), "
            "as the scheduler would.",
        ),
    ] = False,
) -> None:
    """Run one DAG for one data day through Airflow (in-process `dag.test`)."""
    from pipelines.orchestration.runner import default_day

    settings = settings_of(ctx)
    day = parse_day(date_, "--date") if date_ else default_day()
    records = run_dags(settings, dag_id, [day], follow=follow)
    if any(r.state != "success" for r in records):
        raise typer.Exit(EXIT_DATA)


@app.command()
def backfill(
    ctx: typer.Context,
    dag_id: Annotated[str, typer.Argument(metavar="DAG", help="ingest, features, train, monitor…")],
    start: Annotated[str, typer.Option("--start", help="First data day, inclusive.")],
    end: Annotated[str, typer.Option("--end", help="Last data day, inclusive.")],
    follow: Annotated[
        bool, typer.Option("--follow", help="Also run what each day's run sets off.")
    ] = False,
) -> None:
    """Run one DAG for every data day from --start to --end, in order; a failed day does not
    stop the others. Exits 1 if any day failed."""
    from pipelines.days import day_range

    settings = settings_of(ctx)
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise usage_error(f"--end {last} is before --start {first}")
    records = run_dags(settings, dag_id, list(day_range(first, last)), follow=follow)
    failed = [r for r in records if r.state != "success"]
    console.print(
        f"{len(records) - len(failed)} run(s) succeeded, {len(failed)} failed"
        + (": " + ", ".join(f"{r.dag_id} {r.day}" for r in failed) if failed else "")
    )
    if failed:
        raise typer.Exit(EXIT_DATA)
