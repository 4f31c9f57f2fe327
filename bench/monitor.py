"""Benchmark: drift report time for 100k rows x every propensity_v1 feature (target <= 5 s), and 1M.

.venv/bin/python bench/monitor.py [--rows 100000 --big-rows 1000000 --full-budget 90]

Rows are drawn (with replacement) from the daily ``user_activity`` tables of a quickstart shop
with a covariate drift planted on day 16; the ``user_segment`` and ``user_realtime`` columns that
the batch computation does not produce are filled with plausible values, so the report covers all
36 features of ``propensity_v1``. "drifted" compares days 8-15 with days 22-29, "clean" interleaves
days 8-15 (even days against odd days).

Measured: ``data_drift`` on every row and on a fixed-seed sample of ``max_rows`` per side, for a
few ``max_rows``; whether the sample gives the same per-column verdicts as all rows (on drifted
and on clean data); the 1M-row report sampled, and on every row only if the 100k figure says it
fits in ``--full-budget`` seconds; ``DataDriftPreset`` on the sample for comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record

from pipelines.data.generator import PlantedChange, ShopSpec
from pipelines.features.schema import USER_ACTIVITY, USER_REALTIME, USER_SEGMENT
from pipelines.models.testing import synthetic_shop
from pipelines.monitoring.drift import DEFAULT_MAX_ROWS, DriftResult, data_drift

TARGET_S = 5.0
PLATFORM_REPORT_COLUMNS = 12  # pipelines.flows.monitor.REPORT_COLUMNS
FEATURES = [c.name for c in (*USER_ACTIVITY, *USER_SEGMENT, *USER_REALTIME)]
SEGMENTS = np.array(["dormant", "browsers", "regulars", "loyal", "big spenders"], dtype=object)
DRIFT_DAY = date(2026, 1, 16)


def propensity_rows(activity: pd.DataFrame, days: list[int], rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows of the 36 propensity_v1 features drawn from the given day indexes."""
    stamps = np.sort(activity["event_timestamp"].unique())
    pool = activity[activity["event_timestamp"].isin(stamps[days])].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    frame = pool.iloc[rng.integers(0, len(pool), rows)].reset_index(drop=True)
    segment = np.clip(frame["rfm_frequency"].to_numpy() - 1 + rng.integers(-1, 2, rows), 0, 4)
    return frame.assign(
        segment_id=segment.astype("int64"),
        segment_name=SEGMENTS[segment],
        rt_views_1h=rng.poisson(0.4, rows).astype("int64"),
        rt_carts_1h=rng.poisson(0.05, rows).astype("int64"),
    )[FEATURES]


def timed(reference: pd.DataFrame, current: pd.DataFrame, **options) -> tuple[DriftResult, dict]:
    wall, cpu = time.perf_counter(), time.process_time()
    result, _ = data_drift(reference, current, FEATURES, **options)
    return result, {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "drifted_columns": len(result.drifted_columns),
        "dataset_drifted": result.dataset_drifted,
    }


def verdicts(result: DriftResult) -> dict[str, bool]:
    return {c.column: c.drifted for c in result.columns}


def differences(full: DriftResult, sampled: DriftResult) -> list[dict[str, object]]:
    scores = {c.column: c for c in sampled.columns}
    return [
        {
            "column": c.column,
            "full": c.score,
            "sampled": scores[c.column].score,
            "threshold": c.threshold,
        }
        for c in full.columns
        if c.drifted != scores[c.column].drifted
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--max-rows", type=int, nargs="+", default=[5_000, 10_000, 20_000, 50_000])
    parser.add_argument(
        "--full-budget",
        type=float,
        default=90.0,
        help="run the big report on every row only if 10x the 100k time fits in this many seconds",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        spec = ShopSpec(drifts=(PlantedChange("covariate", DRIFT_DAY),))
        activity = synthetic_shop(Path(home), spec).user_activity
    before, after = list(range(8, 16)), list(range(22, 30))
    drifted = (
        propensity_rows(activity, before, args.rows, 1),
        propensity_rows(activity, after, args.rows, 2),
    )
    clean = (
        propensity_rows(activity, before[0::2], args.rows, 3),
        propensity_rows(activity, before[1::2], args.rows, 4),
    )
    timed(drifted[0].head(2_000), drifted[1].head(2_000), max_rows=None)  # imports, warm-up

    out: dict[str, object] = {"features": len(FEATURES), "rows": args.rows}
    full, out["full"] = timed(*drifted, max_rows=None)
    print("full", out["full"], flush=True)
    by_max_rows = {}
    for max_rows in args.max_rows:
        sampled, figures = timed(*drifted, max_rows=max_rows)
        figures["same_verdicts_as_full"] = verdicts(sampled) == verdicts(full)
        figures["differences"] = differences(full, sampled)
        by_max_rows[str(max_rows)] = figures
        print(max_rows, figures, flush=True)
    out["sampled_drifted"] = by_max_rows

    clean_full, clean_full_figures = timed(*clean, max_rows=None)
    clean_sampled, clean_sampled_figures = timed(*clean, max_rows=DEFAULT_MAX_ROWS)
    out["clean"] = {
        "full": clean_full_figures,
        "sampled": clean_sampled_figures,
        "same_verdicts_as_full": verdicts(clean_sampled) == verdicts(clean_full),
        "differences": differences(clean_full, clean_sampled),
    }
    # what the monitor DAG runs: every column judged, the HTML drawn for at most 12 of them
    platform, out["platform"] = timed(
        *drifted, max_rows=DEFAULT_MAX_ROWS, report_columns=PLATFORM_REPORT_COLUMNS
    )
    out["platform"]["same_verdicts_as_full"] = verdicts(platform) == verdicts(full)
    print("platform", out["platform"], flush=True)
    _, out["preset_sampled"] = timed(*drifted, max_rows=DEFAULT_MAX_ROWS, preset=True)
    print("preset", out["preset_sampled"], flush=True)

    big = (
        propensity_rows(activity, before, args.big_rows, 5),
        propensity_rows(activity, after, args.big_rows, 6),
    )
    big_out: dict[str, object] = {"rows": args.big_rows}
    big_sampled, big_out["sampled"] = timed(*big, max_rows=DEFAULT_MAX_ROWS)
    _, big_out["platform"] = timed(
        *big, max_rows=DEFAULT_MAX_ROWS, report_columns=PLATFORM_REPORT_COLUMNS
    )
    estimate = out["full"]["wall_s"] * args.big_rows / args.rows  # type: ignore[index]
    big_out["full_estimate_s"] = round(estimate, 1)
    if estimate <= args.full_budget:
        big_full, big_out["full"] = timed(*big, max_rows=None)
        big_out["same_verdicts_as_full"] = verdicts(big_sampled) == verdicts(big_full)
    else:
        big_out["full"] = f"skipped: estimated {estimate:.0f} s > budget {args.full_budget:.0f} s"
    out["big"] = big_out

    default = by_max_rows.get(str(DEFAULT_MAX_ROWS), {})
    record(
        "monitor",
        {
            **out,
            "default_max_rows": DEFAULT_MAX_ROWS,
            "target": f"drift report, {args.rows} rows x {len(FEATURES)} features: <= {TARGET_S} s",
            "meets_target_wall": bool(default) and default["wall_s"] <= TARGET_S,
            "meets_target_cpu": bool(default) and default["cpu_s"] <= TARGET_S,
            "platform_meets_target_wall": out["platform"]["wall_s"] <= TARGET_S,
        },
    )


if __name__ == "__main__":
    main()
