"""Benchmark: one day of features from a 30-day window of ~1M events (target: well under 5 s).

.venv/bin/python bench/features_compute.py [--rows 1000000 --repeat 3]

Times ``compute_features_for_day`` end to end: reading the curated window, computing
user_activity and item_popularity, writing both offline partitions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, peak_mb

from pipelines.config import Settings
from pipelines.data.generator import ShopSpec, generate
from pipelines.features.offline import compute_features_for_day, read_curated_window

DAYS = 30
# ShopSpec(users=40000, items=1000, days=30) generates ~1.09M events; fewer rows, fewer users
USERS_PER_MILLION_ROWS = 40_000
TARGET_S = 5.0


def measure_compute(rows: int = 1_000_000, repeat: int = 3) -> dict[str, object]:
    """Generate a shop of about ``rows`` events over 30 days and time the last day's features.

    Landing batches are copied to curated unvalidated: validation is not what is measured.
    """
    users = max(100, round(rows * USERS_PER_MILLION_ROWS / 1_000_000))
    spec = ShopSpec(users=users, items=1_000, days=DAYS, seed=1, start=date(2026, 1, 1))
    day = spec.start + timedelta(days=DAYS - 1)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        started = time.perf_counter()
        generate(spec, settings)
        generate_s = time.perf_counter() - started
        shutil.copytree(settings.landing_dir, settings.curated_dir)
        events_in_window = len(read_curated_window(settings.curated_dir, day)[0])

        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            paths = compute_features_for_day(settings, day)
            seconds.append(time.perf_counter() - started)
        sizes = {name: path.stat().st_size for name, path in paths.items()}
    compute_s = statistics.median(seconds)
    return {
        "spec": spec.to_dict(),
        "events_in_window": events_in_window,
        "generate_s": round(generate_s, 2),
        "compute_s": round(compute_s, 3),
        "compute_first_s": round(seconds[0], 3),
        "rows_per_s": round(events_in_window / compute_s),
        "partition_bytes": sizes,
        "target": f"one day from ~1M events in well under {TARGET_S:.0f} s",
        "meets_target": compute_s < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = measure_compute(args.rows, args.repeat)
    payload = {"area": "features_compute", **result, "peak_mb": round(peak_mb(), 1)}
    print(json.dumps({**payload, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
