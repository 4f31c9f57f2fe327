"""Benchmark: rows/s validating a 1M-row events batch through the project, vs raw GX.

The project path (read the parquet batch, derive history columns, fast boolean GX pass, Data Docs
page) is timed against the same suite run by plain Great Expectations on the same prepared frame,
with full results (SUMMARY and COMPLETE) and BOOLEAN_ONLY. Target: project <= 1.2x raw GX (full).

    .venv/bin/python bench/validate.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record


def build_batch(home: Path, rows: int, day: date) -> Path:
    """A clean events batch of ``rows`` rows for ``day``: a generated day tiled with fresh ids."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipelines.config import Settings
    from pipelines.data.generator import ShopSpec, generate
    from pipelines.data.partitions import partition_dir, write_partition

    seed_home = home / "seed"
    generate(
        ShopSpec(users=20_000, items=1_000, days=1, seed=3, start=day), Settings(home=seed_home)
    )
    one_day = pq.read_table(partition_dir(seed_home / "landing", "events", day))
    copies = -(-rows // one_day.num_rows)
    tiled = pa.concat_tables([one_day] * copies).slice(0, rows)
    ids = pc.binary_join_element_wise("bench-", pa.array(np.arange(rows)).cast(pa.string()), "")
    tiled = tiled.set_column(0, "event_id", ids)
    return write_partition(tiled, home / "landing", "events", day).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    day = date(2026, 3, 2)

    from pipelines.config import Settings
    from pipelines.validation import gx_runner
    from pipelines.validation.batch import curated_history, prepare, read_batch
    from pipelines.validation.ingest import validate_files
    from pipelines.validation.suites import load_suite

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings(home=home)
        partition = build_batch(home, args.rows, day)
        files = sorted(partition.glob("*.parquet"))
        suite = load_suite("events")

        gx_runner.gx_context(settings.state_dir)  # imports and context: not per-batch work

        started = time.perf_counter()
        outcome, _ = validate_files(settings, "events", day, files)
        project_s = time.perf_counter() - started
        assert outcome.success, outcome.summary()

        batch = read_batch(files, "events", day)
        history = curated_history(settings.curated_dir, settings.landing_dir, "events", day, 7)
        prepared = prepare(batch, history, suite.meta, suite.derived_columns)
        raw = raw_gx_seconds(suite, prepared.frame, prepared.parameters)

    result = {
        "rows": args.rows,
        "project_s": round(project_s, 2),
        "project_rows_per_s": round(args.rows / project_s),
        **{f"raw_gx_{k.lower()}_s": round(v, 2) for k, v in raw.items()},
        **{f"raw_gx_{k.lower()}_rows_per_s": round(args.rows / v) for k, v in raw.items()},
        "ratio_project_vs_raw_summary": round(project_s / raw["SUMMARY"], 2),
        "ratio_project_vs_raw_complete": round(project_s / raw["COMPLETE"], 2),
        "expectations": len(suite.expectations),
        "target": "project <= 1.2x raw GX with full results",
    }
    result["wall_s"] = round(project_s + sum(raw.values()), 2)
    record("validate", result)


def raw_gx_seconds(suite_file: Any, frame: Any, parameters: dict[str, Any]) -> dict[str, float]:
    """Plain GX 1.x: ephemeral context, the same suite JSON, one validation definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(
        gx.ExpectationSuite(name="raw", expectations=suite_file.expectations)
    )
    batch = context.data_sources.add_pandas("raw").add_dataframe_asset("events")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="raw", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite
        )
    )
    seconds = {}
    for result_format in ("SUMMARY", "COMPLETE", "BOOLEAN_ONLY"):
        started = time.perf_counter()
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format=result_format,
        )
        seconds[result_format] = time.perf_counter() - started
        assert result.success
    return seconds


if __name__ == "__main__":
    main()
