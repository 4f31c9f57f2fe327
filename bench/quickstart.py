"""Benchmark: the quickstart's story (target ≤ 5 min on 2 cores) and Airflow's share of it.

.venv/bin/python bench/quickstart.py [--users 2000 --live-days 7]

Runs :func:`pipelines.local.story.tell` -- exactly what ``make quickstart`` runs after
the environment sync, with its 5 s propensity search budget -- in a scratch state dir, and
records the wall time per phase, the DAG runs' wall time, the time inside task bodies and the
rest (Airflow's own: run creation, the in-process execution API, XComs, asset events), per DAG.
Runs in its own process: Airflow binds one home per process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--live-days", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["PERSONALIZE_HOME"] = str(Path(scratch) / "home")
        os.environ["PERSONALIZE_TRAIN_TIME_BUDGET_SECONDS"] = "5"  # as the Makefile's quickstart
        # as `personalize` without --verbose: the libraries' logs would bury the JSON
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        warnings.filterwarnings("ignore")

        from pipelines.config import get_settings
        from pipelines.local.story import Scenario, tell

        scenario = Scenario(
            users=args.users,
            items=args.items,
            history_days=args.history_days,
            live_days=args.live_days,
        )
        story = tell(get_settings(), scenario)
        timing = {k: v for k, v in story.timing.items() if k != "alerts_by_type"}
        events = sum(
            1 for day in story.days for run in day["runs"] if run.startswith("ingest:success")
        )
        record(
            "quickstart",
            {
                "users": args.users,
                "days": args.history_days + args.live_days,
                "ingested_days": events,
                "missing_turns": story.missing_turns,
                **timing,
                "task_share": round(timing["task_s"] / timing["wall_s"], 3),
            },
        )


if __name__ == "__main__":
    main()
