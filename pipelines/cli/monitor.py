"""``personalize monitor calibrate``: drift thresholds from the scores of clean days."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.common import app, console, progress_bar, settings_of, usage_error

monitor_app = typer.Typer(
    help="Monitoring tools: calibrate the drift thresholds on clean days.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")

# 30 days to fill the longest window, a reference week, then the last third of the days scored
MIN_DAYS = 56


@monitor_app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Generator seed of a clean shop (repeat).")
    ] = None,
    days: Annotated[int, typer.Option("--days", help="Days per clean shop (>= 56).")] = 63,
    users: Annotated[int, typer.Option("--users", help="Users per clean shop.")] = 1500,
    items: Annotated[int, typer.Option("--items", help="Items per clean shop.")] = 300,
    headroom: Annotated[
        float, typer.Option("--headroom", help="Threshold = largest clean score x (1 + this).")
    ] = 0.25,
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            help="Record the thresholds and their calibration in this gates file "
            "([monitoring.drift_tests]); without it the table is printed to paste.",
        ),
    ] = None,
) -> None:
    """Generate clean shops (nothing planted), score every day's drift against a whole-week
    reference with the configured statistics (the customers' features that propensity's
    monitoring compares, and the recommender's interaction profile), and choose each column
    type's threshold so that no clean day would have drifted, plus headroom. Prints the figures
    and the gates.toml table.
    """

    from pipelines.data.generator import ShopSpec
    from pipelines.gates import load_monitoring_config
    from pipelines.models.testing import synthetic_shop
    from pipelines.monitoring.calibration import (
        choose_thresholds,
        clean_drift_scores,
        drift_tests_toml,
        write_drift_tests,
    )
    from pipelines.monitoring.quality import MODEL_COLUMNS, daily_inputs

    seeds = seeds or [1, 2, 3]
    if days < MIN_DAYS:
        raise usage_error(
            f"--days {days}: need at least {MIN_DAYS} so that the reference week's 30-day "
            "windows are full and a third of the days is left to score"
        )
    if write is not None and not write.is_file():
        raise usage_error(f"--write {write}: no such gates file (copy pipelines/gates.toml)")
    settings = settings_of(ctx)
    tests = load_monitoring_config(settings.gates_file).drift_tests
    import pandas as pd

    scores = []
    with progress_bar(remaining=True, to=console) as progress:
        task = progress.add_task(
            "clean shops", total=len(seeds) * len(MODEL_COLUMNS) * (days // 3 + 1)
        )
        for seed in seeds:
            progress.update(task, description=f"seed {seed}: generating")
            with tempfile.TemporaryDirectory(prefix="calibrate-") as home:
                shop = synthetic_shop(
                    Path(home), ShopSpec(users=users, items=items, days=days, seed=seed)
                )
            progress.update(task, description=f"seed {seed}: scoring days")
            for model in MODEL_COLUMNS:
                part = clean_drift_scores(
                    daily_inputs(model, shop.user_activity, shop.events, shop.items, shop.days),
                    shop.days,
                    tests=tests,
                    seed=seed,
                    columns=MODEL_COLUMNS[model],
                    progress=lambda: progress.advance(task),
                )
                scores.append(part.assign(seed=seed, model=model))
    calibration = choose_thresholds(
        pd.concat(scores, ignore_index=True), tests=tests, headroom=headroom, seeds=seeds, days=days
    )
    for kind, row in calibration.figures.items():
        console.print(
            f"{kind:<12} {row['method']:<14} clean scores {row['clean_scores']:>5}  "
            f"p50 {row['clean_p50']:.3f}  p99 {row['clean_p99']:.3f}  max {row['clean_max']:.3f} "
            f"({row['worst_column']})  -> threshold {row['threshold']:g}",
            highlight=False,
        )
    today = datetime.now(UTC).date()
    if write is None:
        console.print("\n" + drift_tests_toml(calibration, today), highlight=False, markup=False)
        console.print("paste it into your gates file, or rerun with --write FILE")
    else:
        write_drift_tests(write, calibration, today)
        console.print(
            f"wrote [monitoring.drift_tests] to {write}: review and commit it", markup=False
        )
