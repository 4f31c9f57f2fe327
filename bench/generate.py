"""Benchmark: synthetic events generated per second at 1M+ events (target: 1M in <= 30 s, 2 cores).

.venv/bin/python bench/generate.py [--users 40000 --items 1000 --days 30]
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
from pipelines.data.generator import ShopSpec, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()

    spec = ShopSpec(
        users=args.users, items=args.items, days=args.days, seed=1, start=date(2026, 1, 1)
    )
    day_seconds: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        last = started

        def tick(_: object) -> None:
            nonlocal last
            now = time.perf_counter()
            day_seconds.append(now - last)
            last = now

        report = generate(spec, Settings(home=Path(home)), progress=tick)
        wall = time.perf_counter() - started
    day_ms = sorted(s * 1000 for s in day_seconds)
    record(
        "generate",
        {
            "spec": spec.to_dict(),
            "events": report.events,
            "wall_s": round(wall, 2),
            "rows_per_s": round(report.events / wall),
            "p50_day_ms": round(day_ms[len(day_ms) // 2], 1),
            "p99_day_ms": round(day_ms[min(len(day_ms) - 1, int(len(day_ms) * 0.99))], 1),
            "target": "1M events in <= 30 s",
            "meets_target": report.events >= 1_000_000 and wall <= 30,
        },
    )


if __name__ == "__main__":
    main()
