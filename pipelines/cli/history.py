"""``personalize load-history``: a whole history in one command (orchestration/history.py).

Registered on the main app by ``pipelines.cli``; ``personalize import FILE --backfill`` calls
:func:`history_command` with the imported span.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from pipelines.cli.common import (
    EXIT_DATA,
    app,
    console,
    parse_day,
    progress_bar,
    settings_of,
    usage_error,
)
from pipelines.config import Settings


@app.command("load-history")
def load_history(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option("--start", help="First data day, inclusive (default: the first landed)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last data day, inclusive (default: the last landed)."),
    ] = None,
    through_airflow: Annotated[
        bool,
        typer.Option(
            "--through-airflow",
            help="Run the real DAGs day by day (ingest -> features -> monitor), ~1.5 s of "
            "Airflow per day, instead of the bulk path (same curated data and features).",
        ),
    ] = False,
    train: Annotated[
        bool, typer.Option("--train/--no-train", help="Run the train DAG for the last day.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Ingest, compute features and monitor every day from --start to --end, then train.

    A quarantined or missing day does not stop the others. The summary counts the days curated,
    closed and quarantined, the rows, the time per stage and Airflow's share. Exits 1 if any day
    (or the train) failed, with the commands to run next.
    """
    from pipelines.orchestration.history import HistoryError, landed_span

    settings = settings_of(ctx)
    try:
        span = landed_span(settings) if start is None or end is None else None
    except HistoryError as problem:
        raise usage_error(str(problem)) from None
    first = parse_day(start, "--start") if start else span[0]
    last = parse_day(end, "--end") if end else span[1]
    if last < first:
        raise usage_error(f"--end {last} is before --start {first}")
    code = history_command(
        settings, first, last, through_airflow=through_airflow, train=train, as_json=as_json
    )
    if code:
        raise typer.Exit(code)


def history_command(
    settings: Settings,
    first: date,
    last: date,
    *,
    through_airflow: bool = False,
    train: bool = True,
    as_json: bool = False,
    json_with: dict[str, object] | None = None,
) -> int:
    """Run the history with a progress bar, print the summary; the exit code (0 or 1).

    With ``json_with``, the JSON document is ``json_with`` plus ``{"history": report}``.
    """
    from pipelines.orchestration.history import HistoryProgress, run_history

    with progress_bar(hidden=as_json) as bar:
        days = bar.add_task("history", total=(last - first).days + 1)

        def show(update: HistoryProgress) -> None:
            if update.stage == "train":
                bar.update(days, description=f"train {update.day}: {update.status or 'running'}")
                return
            bar.update(days, completed=update.done, description=f"{update.day} {update.status}")
            if update.status not in ("curated", "closed"):
                bar.console.print(f"[red]✗[/] {update.day} {update.status}", highlight=False)

        report = run_history(
            settings, first, last, through_airflow=through_airflow, train=train, progress=show
        )
    if as_json:
        document = (
            report.to_dict() if json_with is None else json_with | {"history": report.to_dict()}
        )
        console.print_json(json.dumps(document, default=str))
    else:
        _print_summary(report)
    return 0 if report.ok else EXIT_DATA


def _print_summary(report: object) -> None:
    from pipelines.orchestration.history import HistoryReport

    assert isinstance(report, HistoryReport)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    rows = ", ".join(f"{n:,} {table}" for table, n in sorted(report.rows.items()))
    console.print(
        f"history {report.first_day} .. {report.last_day} ({report.mode}): {counts}; "
        f"rows curated: {rows or 'none'}",
        highlight=False,
    )
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.stages_s.items())
    airflow = report.airflow
    console.print(
        f"{report.wall_s:.1f} s in all ({stages}); Airflow: {airflow.get('dag_runs', 0)} DAG "
        f"run(s), {airflow.get('airflow_overhead_s', 0.0):.1f} s of its own = "
        f"{report.airflow_share:.0%} of the time",
        highlight=False,
    )
    if report.train is not None:
        train = report.train
        champions = {
            model: aliases.get("champion") for model, aliases in train.get("aliases", {}).items()
        }
        console.print(
            f"train {train.get('day', '')}: {train['state']}"
            + (f"; champions {champions}" if champions else "")
            + "".join(
                f"\n  {model} v{gate['version']}: {gate['gate'] or 'not gated'}"
                + (f" ({gate['gate_reason']})" if gate.get("gate_reason") else "")
                for model, gate in train.get("gates", {}).items()
                if not champions.get(model)
            )
            + "".join(f"\n  [red]{t}[/]" for t in train.get("failed_tasks", []))
            + (f"\n  [red]{train['error']}[/]" if train.get("error") else ""),
            highlight=False,
        )
    for day in report.failed_days:
        console.print(f"[red]{day.day} {day.status}[/]", highlight=False)
        for problem in day.problems:
            console.print(f"  {problem}", highlight=False, markup=False)
    commands = report.next_commands()
    if commands:
        console.print("next:")
        for command in commands:
            console.print(f"  {command}", highlight=False, markup=False)
