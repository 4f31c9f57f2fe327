"""Benchmark: a shop's whole history in one command (`personalize load-history`).

Generates a shop (default: a year, ~1,500 users -> ~500k events) into a fresh state dir, or takes
an already imported one (``--home``), runs the history (bulk path by default, ``--through-airflow``
for the DAGs day by day) and writes bench/results/backfill.json: events/s, wall s, seconds per
stage, Airflow's share, peak MB, cores.

    .venv/bin/python bench/backfill.py                       # a year, target <= 600 s
    .venv/bin/python bench/backfill.py --days 60 --no-train  # a quick look
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an imported state dir (landing/ filled)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    parser.add_argument("--through-airflow", action="store_true")
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()

    from pipelines.config import Settings
    from pipelines.orchestration.history import landed_span, run_history

    generated = None
    if args.home is None:
        from pipelines.data.generator import ShopSpec, generate

        home = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
        settings = Settings(home=home, train_time_budget_seconds=10)
        spec = ShopSpec(users=args.users, items=args.items, days=args.days, start=args.start)
        began = time.perf_counter()
        generate(spec, settings)
        generated = {"spec": spec.to_dict(), "generate_s": round(time.perf_counter() - began, 1)}
    else:
        settings = Settings(home=args.home)
    first, last = landed_span(settings)

    def show(update: object) -> None:
        done, total = getattr(update, "done", 0), getattr(update, "total", 0)
        if getattr(update, "stage", "") == "train" or done % 30 == 0 or done == total:
            print(f"{update.stage} {done}/{total} {update.day} {update.status}", flush=True)

    began = time.perf_counter()
    report = run_history(
        settings,
        first,
        last,
        through_airflow=args.through_airflow,
        train=not args.no_train,
        progress=show,
    )
    wall = time.perf_counter() - began
    summary = report.to_dict()
    events = summary["rows"].get("events", 0)
    days = len(report.days)
    record(
        "backfill",
        {
            "home": str(settings.state_dir),
            "generated": generated,
            "mode": report.mode,
            "days": days,
            "counts": summary["counts"],
            "rows": summary["rows"],
            "events_per_s": round(events / wall, 1) if wall else 0.0,
            "wall_s": round(wall, 1),
            "s_per_day": round(sum(v for k, v in report.stages_s.items() if k != "train") / days, 3)
            if days
            else 0.0,
            "stages_s": report.stages_s,
            "airflow": {k: v for k, v in summary["airflow"].items() if k != "per_dag"}
            | {"per_dag": summary["airflow"].get("per_dag", {})},
            "airflow_share_of_wall": summary["airflow_share"],
            "train": summary["train"],
            "target": "<= 600 s for a year of ~500k events on 2 cores",
        },
    )


if __name__ == "__main__":
    main()
