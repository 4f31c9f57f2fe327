"""Benchmark: the feature store figures of the features issue, in one JSON (bench/results/).

- feature computation rows/s for ~1M events (one day from a 30-day window);
- point-in-time training set for 100k entity rows (target <= 3 s);
- materialization rows/s into the online store for user_activity, Feast's own path vs ours
  (target >= 20k rows/s);
- online read p50/p99 for 1 user x propensity_v1 (target p99 <= 5 ms) and for 100 users.

    .venv/bin/python bench/features.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record
from features_compute import measure_compute
from features_store import (
    measure_materialization,
    measure_online_reads,
    measure_training_set,
)


def main() -> None:
    started = time.perf_counter()
    result = {
        "compute": measure_compute(),
        "training_set": measure_training_set(),
        "materialization": measure_materialization(),
        "online_reads": measure_online_reads(),
    }
    result["wall_s"] = round(time.perf_counter() - started, 1)
    record("features", result)


if __name__ == "__main__":
    main()
