"""Benchmark: how far on-call can trust monitoring's pages (false alarms, detection delay).

.venv/bin/python bench/monitor_quality.py [--seeds 1 2 3 4 5 --days 90 --onset 60 --users 1500]

Per seed: a clean shop of ``--days`` days, and the same shop with each planted drift kind
(covariate, concept, new-items, promo) from day ``--onset``. Monitoring's drift decision
(``pipelines.monitoring.quality.judge_days``: the drift statistics and thresholds of gates.toml,
the key features, the retrain cool-down) is run for every day after a champion trained up to the
day before the watched span, against its whole-week reference. Printed per model: critical and
warning alerts per 30 clean days (targets: 0 critical; at most one digest warning a week, i.e.
~4.3 per 30 days), and the detection delay in days per drift kind with the features named
(target: within 2 days on at least 4 of 5 seeds, the planted feature among those named).

Only the models whose monitoring reads the user features are judged here (propensity); the
recommender's monitoring compares recommended categories of a trained champion and is covered
by its tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_mb, record

from pipelines.data.generator import DRIFT_KINDS, PlantedChange, ShopSpec
from pipelines.gates import load_monitoring_config
from pipelines.models.pipeline import REFERENCE_WEEK_DAYS
from pipelines.models.testing import synthetic_shop
from pipelines.monitoring.quality import alarm_figures, judge_days

START = date(2026, 1, 5)  # a Monday
MODEL = "propensity"


def judge_shop(spec: ShopSpec, watch_from: date, config, home: Path) -> list:
    shop = synthetic_shop(home, spec)
    reference = [watch_from - timedelta(days=i) for i in range(REFERENCE_WEEK_DAYS, 0, -1)]
    watched = [d for d in shop.days if d >= watch_from]
    return judge_days(
        shop.user_activity,
        first_day=spec.start,
        reference_days=reference,
        days=watched,
        config=config,
        model=MODEL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--onset", type=int, default=60, help="day index of the planted drift")
    parser.add_argument("--watch-from", type=int, default=38, help="first watched day index")
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--kinds", nargs="+", default=list(DRIFT_KINDS))
    args = parser.parse_args()

    config = load_monitoring_config()
    onset = START + timedelta(days=args.onset)
    watch_from = START + timedelta(days=args.watch_from)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            base = {"users": args.users, "items": args.items, "days": args.days, "seed": seed}
            clean = judge_shop(
                ShopSpec(**base, start=START), watch_from, config, Path(tmp) / f"clean{seed}"
            )
            figures = alarm_figures(clean)
            rows.append({"seed": seed, "shop": "clean", **figures.to_dict()})
            print(
                f"seed {seed} clean: {figures.clean_days} days, critical/30d "
                f"{figures.critical_per_30_clean_days:.2f}, warning/30d "
                f"{figures.warning_per_30_clean_days:.2f} {figures.false_alarm_days}",
                flush=True,
            )
            for kind in args.kinds:
                spec = ShopSpec(**base, start=START, drifts=(PlantedChange(kind, onset),))
                judged = judge_shop(spec, watch_from, config, Path(tmp) / f"{kind}{seed}")
                figures = alarm_figures(judged, onset, kind)
                rows.append({"seed": seed, "shop": kind, **figures.to_dict()})
                print(
                    f"seed {seed} {kind}: delay {figures.detection_delay_days} d, planted "
                    f"feature named {figures.planted_feature_named}, named {figures.named[:6]}",
                    flush=True,
                )
    summary = summarise(rows, args.kinds, len(args.seeds))
    print_table(summary)
    record(
        "monitor_quality",
        {
            "model": MODEL,
            "seeds": args.seeds,
            "days": args.days,
            "onset_day_index": args.onset,
            "watch_from_day_index": args.watch_from,
            "users": args.users,
            "thresholds": {
                "numerical": config.drift_tests.numerical_threshold,
                "categorical": config.drift_tests.categorical_threshold,
                "drift_share": config.drift_share_threshold,
            },
            "summary": summary,
            "rows": rows,
            "wall_s": round(time.perf_counter() - started, 1),
            "peak_mb": peak_mb(),
        },
    )


def summarise(rows: list[dict], kinds: list[str], seeds: int) -> dict:
    clean = [r for r in rows if r["shop"] == "clean"]
    out: dict = {
        "critical_per_30_clean_days_max": max(r["critical_per_30_clean_days"] for r in clean),
        "warning_per_30_clean_days_max": max(r["warning_per_30_clean_days"] for r in clean),
        "seeds_with_a_critical_false_alarm": sum(
            r["critical_per_30_clean_days"] > 0 for r in clean
        ),
        "kinds": {},
    }
    for kind in kinds:
        runs = [r for r in rows if r["shop"] == kind]
        delays = [r["detection_delay_days"] for r in runs]
        within = [
            d is not None and d <= 2 and r["planted_feature_named"]
            for d, r in zip(delays, runs, strict=True)
        ]
        named = Counter(c for r in runs for c in r["named"][:5])
        out["kinds"][kind] = {
            "delays": delays,
            "detected_within_2_days": f"{sum(within)}/{seeds}",
            "most_named": [c for c, _ in named.most_common(5)],
        }
    return out


def print_table(summary: dict) -> None:
    print(f"\n{MODEL}: false alarms per 30 clean days (max over seeds)")
    print(f"  critical {summary['critical_per_30_clean_days_max']:.2f}  "
          f"warning {summary['warning_per_30_clean_days_max']:.2f}")  # fmt: skip
    print(f"{'drift kind':<12} {'delays (days)':<24} {'within 2 d':<11} most named")
    for kind, row in summary["kinds"].items():
        delays = ", ".join("-" if d is None else str(d) for d in row["delays"])
        print(f"{kind:<12} {delays:<24} {row['detected_within_2_days']:<11} "
              f"{', '.join(row['most_named'])}")  # fmt: skip


if __name__ == "__main__":
    main()
