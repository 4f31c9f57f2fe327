"""Benchmark: `log_model` + register per model (target ≤ 2 s each), on a quickstart-size shop.

.venv/bin/python bench/registry.py [--users 2000 --days 30]

Builds the three training runs exactly as the train DAG does (each spec's ``build_run``), then
times :func:`pipelines.registry.log_and_register` for each — the whole run ("whole_run_s") and,
within it, the model logged and registered with its alias ("log_model_and_register_s", the
figure the target is about). The whole run holds the MLflow run with its params, metrics,
plots, tables, reference sample and dataset lineage, the model itself (propensity in skops with
its trusted types, the others as pyfunc models of plain files, all with pinned requirements) and
the registered version with its alias. The first call also creates the MLflow database; it is timed
separately ("store_setup_s") so that it does not count against a model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record

from pipelines.config import Settings
from pipelines.data.generator import ShopSpec
from pipelines.models.catalog import spec_of
from pipelines.models.testing import curated_shop
from pipelines.registry import experiment_id, log_and_register


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(home=Path(scratch) / "home")
        spec = ShopSpec(users=args.users, items=args.items, days=args.days, start=date(2026, 1, 1))
        days = curated_shop(settings, spec)
        started = time.perf_counter()
        experiment_id(settings)
        store_setup = time.perf_counter() - started
        result: dict[str, object] = {"store_setup_s": round(store_setup, 2)}
        builders = (
            ("propensity", spec_of("propensity").build_run),
            ("recommender", spec_of("recommender").build_run),
            ("segmentation", spec_of("segmentation").build_run),
        )
        runs = {name: build(settings, days[-1]) for name, build in builders}
        log_and_register(settings, runs["propensity"])  # warm-up: imports, skops, fonts
        for name, build in builders:
            run = build(settings, days[-1])
            started = time.perf_counter()
            registered = log_and_register(settings, run)
            result[f"{name}_whole_run_s"] = round(time.perf_counter() - started, 2)
            result[f"{name}_log_model_and_register_s"] = registered.log_model_and_register_s
            print(name, result[f"{name}_log_model_and_register_s"], flush=True)
        result["target_s"] = 2.0
        record("registry", result)


if __name__ == "__main__":
    main()
