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

Two models are judged on the same shops: propensity (the customers' features) and the
recommender (each day's interactions profiled against their history:
``pipelines/monitoring/interactions.py``).

Then a year of the ``gift-wholesale`` preset export (``--no-year`` skips it), imported as a shop
would (``import_shop_log``), its features computed day by day, and judged on every open day with
the champion refreshed as in production (the weekly Monday train, and the retrain each drift
sets off): the alerts per month, with the features named.
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
from pipelines.models.testing import daily_features, landing_frames, synthetic_shop
from pipelines.monitoring.quality import MODEL_COLUMNS, alarm_figures, daily_inputs, judge_days
from pipelines.monitoring.reference import REFERENCE_WEEK_DAYS

START = date(2026, 1, 5)  # a Monday
MODELS = tuple(MODEL_COLUMNS)
YEAR_WATCH_FROM_DAY = 38  # the first champion: 30-day windows full, then a reference week


def judge_shop(spec: ShopSpec, watch_from: date, config, home: Path) -> dict[str, list]:
    shop = synthetic_shop(home, spec)
    reference = [watch_from - timedelta(days=i) for i in range(REFERENCE_WEEK_DAYS, 0, -1)]
    watched = [d for d in shop.days if d >= watch_from]
    return {
        model: judge_days(
            daily_inputs(model, shop.user_activity, shop.events, shop.items, shop.days),
            first_day=spec.start,
            reference_days=reference,
            days=watched,
            config=config,
            model=model,
            columns=MODEL_COLUMNS[model],
        )
        for model in MODELS
    }


def gift_wholesale_year(config, home: Path, scale: float = 1.0) -> dict:
    """The preset's year through monitoring: alerts per month and model, features named."""
    from pipelines.config import Settings
    from pipelines.data.catalogue import import_shop_log
    from pipelines.data.shop_styles import write_shop_export

    began = time.perf_counter()
    export = write_shop_export("gift-wholesale", home / "export", scale=scale)
    settings = Settings(home=home / "state")
    settings.ensure_dirs()
    imported = import_shop_log(
        export.events,
        export.mapping,
        settings=settings,
        event_type=export.event_type,
        timezone=export.timezone,
        timestamp_format=export.timestamp_format,
        items=export.items,
        items_mapping=export.items_mapping or None,
    )
    days = [
        export.first_day + timedelta(days=i)
        for i in range((export.last_day - export.first_day).days + 1)
    ]
    events, users, items = landing_frames(settings, days)
    activity, _ = daily_features(events, users, items, days)
    print(
        f"gift-wholesale: {imported.events.rows_written:,} order lines, {len(users):,} customers, "
        f"{len(items):,} items, features of {len(days)} days in "
        f"{time.perf_counter() - began:.0f} s",
        flush=True,
    )
    first = days[0]
    watch_from = first + timedelta(days=YEAR_WATCH_FROM_DAY)
    reference = [watch_from - timedelta(days=i) for i in range(REFERENCE_WEEK_DAYS, 0, -1)]
    # closed days (Saturdays, Dec 24 .. Jan 3) are not judged, as the monitor DAG does
    watched = [d for d in days if d >= watch_from and export.is_open(d)]
    months: dict = {}
    alerts: list[dict] = []
    for model in MODELS:
        judged = judge_days(
            daily_inputs(model, activity, events, items, days),
            first_day=first,
            reference_days=reference,
            days=watched,
            config=config,
            model=model,
            columns=MODEL_COLUMNS[model],
            retrain_weekly=True,
        )
        for judgement in judged:
            month = months.setdefault(judgement.day.strftime("%Y-%m"), {}).setdefault(
                model, {"judged_days": 0, "critical": 0, "warning": 0, "named": Counter()}
            )
            month["judged_days"] += 1
            if judgement.severity in ("critical", "warning"):
                month[judgement.severity] += 1
                month["named"].update(judgement.drifted[:3])
                alerts.append(
                    {
                        "day": judgement.day.isoformat(),
                        "weekday": judgement.day.strftime("%a"),
                        "model": model,
                        "severity": judgement.severity,
                        "named": list(judgement.drifted[:4]),
                    }
                )
    for per_model in months.values():
        for row in per_model.values():
            row["named"] = [c for c, _ in row["named"].most_common(4)]
    return {
        "customers": len(users),
        "items": len(items),
        "order_lines": imported.events.rows_written,
        "first_day": first.isoformat(),
        "last_day": days[-1].isoformat(),
        "watched_days": len(watched),
        "months": months,
        "alerts": sorted(alerts, key=lambda a: (a["day"], a["model"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--onset", type=int, default=60, help="day index of the planted drift")
    parser.add_argument("--watch-from", type=int, default=38, help="first watched day index")
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--kinds", nargs="+", default=list(DRIFT_KINDS))
    parser.add_argument("--no-year", action="store_true", help="skip the gift-wholesale year")
    parser.add_argument("--year-scale", type=float, default=1.0, help="shrink the year's export")
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
            for model, judged in clean.items():
                figures = alarm_figures(judged)
                rows.append({"seed": seed, "model": model, "shop": "clean", **figures.to_dict()})
                print(
                    f"seed {seed} clean {model}: {figures.clean_days} days, critical/30d "
                    f"{figures.critical_per_30_clean_days:.2f}, warning/30d "
                    f"{figures.warning_per_30_clean_days:.2f} {figures.false_alarm_days}",
                    flush=True,
                )
            for kind in args.kinds:
                spec = ShopSpec(**base, start=START, drifts=(PlantedChange(kind, onset),))
                shop = judge_shop(spec, watch_from, config, Path(tmp) / f"{kind}{seed}")
                for model, judged in shop.items():
                    figures = alarm_figures(judged, onset, kind)
                    rows.append({"seed": seed, "model": model, "shop": kind, **figures.to_dict()})
                    print(
                        f"seed {seed} {kind} {model}: delay {figures.detection_delay_days} d, "
                        f"planted feature named {figures.planted_feature_named}, named "
                        f"{figures.named[:6]}",
                        flush=True,
                    )
        year = (
            None
            if args.no_year
            else gift_wholesale_year(config, Path(tmp) / "year", args.year_scale)
        )
    summary = {m: summarise([r for r in rows if r["model"] == m], args.kinds, len(args.seeds))
               for m in MODELS}  # fmt: skip
    for model in MODELS:
        print_table(model, summary[model])
    if year is not None:
        print_year(year)
    record(
        "monitor_quality",
        {
            "models": list(MODELS),
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
            "gift_wholesale_year": year,
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


def print_table(model: str, summary: dict) -> None:
    print(f"\n{model}: false alarms per 30 clean days (max over seeds)")
    print(f"  critical {summary['critical_per_30_clean_days_max']:.2f}  "
          f"warning {summary['warning_per_30_clean_days_max']:.2f}")  # fmt: skip
    print(f"{'drift kind':<12} {'delays (days)':<24} {'within 2 d':<11} most named")
    for kind, row in summary["kinds"].items():
        delays = ", ".join("-" if d is None else str(d) for d in row["delays"])
        print(f"{kind:<12} {delays:<24} {row['detected_within_2_days']:<11} "
              f"{', '.join(row['most_named'])}")  # fmt: skip


def print_year(year: dict) -> None:
    print(
        f"\ngift-wholesale {year['first_day']}..{year['last_day']}: {year['customers']:,} "
        f"customers, {year['watched_days']} open days judged; alerts per month"
    )
    print(f"{'month':<8} " + " ".join(f"{m + ' crit/warn':<24}" for m in MODELS) + " named")
    for month, per_model in sorted(year["months"].items()):
        cells, named = [], []
        for model in MODELS:
            row = per_model.get(model, {"critical": 0, "warning": 0, "judged_days": 0, "named": []})
            cells.append(f"{row['critical']}/{row['warning']} of {row['judged_days']} days")
            named += [f"{model[:4]}:{c}" for c in row["named"][:3]]
        print(f"{month:<8} " + " ".join(f"{c:<24}" for c in cells) + " " + ", ".join(named))
    for alert in year["alerts"]:
        print(f"  {alert['day']} {alert['weekday']} {alert['model']:<12} {alert['severity']:<8} "
              f"{', '.join(alert['named'])}")  # fmt: skip


if __name__ == "__main__":
    main()
