"""Benchmark: a shop's own export end to end — import -> backfill -> train -> evaluate.

    .venv/bin/python bench/real_data.py                                  # the gift-wholesale preset
    .venv/bin/python bench/real_data.py --style fashion-clicks
    .venv/bin/python bench/real_data.py --events online_retail.csv \\
        --map user_id=CustomerID --map item_id=StockCode --map event_ts=InvoiceDate \\
        --map quantity=Quantity --map price=UnitPrice --map session_id=InvoiceNo \\
        --event-type purchase --timezone Europe/London --timestamp-format "%d/%m/%Y %H:%M" \\
        --closed-weekdays sat --closed-dates 12-24..01-03

Without ``--events`` it writes a ``personalize generate --shop-style`` export first (``--scale``
shrinks it). Then, in a fresh state dir, timed stage by stage:

1. **import** — ``personalize import`` (users/items derived from the log when not given);
2. **backfill** — ``personalize load-history``: ingest (GX) -> features -> monitor for every day;
3. **train** — the real ``train`` DAG (part of the history run): models registered in MLflow;
4. **evaluate** — on the curated log, the last ``--test-days`` held out: the recommender that
   selection picks on validation (the champion's procedure) beside popularity, buy-again and the
   best-validated candidate of every family, all on the same test users; and purchase propensity
   beside the recency and frequency heuristics on the same test rows.

Prints the time per stage and the figures, checks that selection is within noise of the best
fixed candidate and beats popularity and buy-again (and whether by more than two standard
errors), and writes bench/results/real_data_<name>.json.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record


def parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        target, _, source = pair.partition("=")
        if not source:
            raise SystemExit(f"{flag} {pair!r}: expected FIELD=COLUMN")
        mapping[target.strip()] = source.strip()
    return mapping


def noise(metric: float, users: int) -> float:
    """Two standard errors of a per-user mean in [0, 1] (its variance is at most m(1-m))."""
    return 2 * math.sqrt(max(metric * (1 - metric), 0.0) / max(users, 1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=Path, help="the shop's events/order log (CSV/parquet)")
    parser.add_argument("--map", action="append", default=[], help="FIELD=COLUMN (repeat)")
    parser.add_argument("--event-type", help="constant event type (order lines: purchase)")
    parser.add_argument("--timezone", help="zone of naive timestamps, e.g. Europe/London")
    parser.add_argument("--timestamp-format", help="strftime format of text timestamps")
    parser.add_argument("--items", type=Path, help="an items catalogue")
    parser.add_argument("--items-map", action="append", default=[], help="FIELD=COLUMN")
    parser.add_argument("--closed-weekdays", nargs="*", default=None, help="e.g. sat sun")
    parser.add_argument("--closed-dates", nargs="*", default=None, help="e.g. 12-24..01-03")
    parser.add_argument("--allow-empty-days", action="store_true")
    parser.add_argument("--style", default="gift-wholesale", help="preset without --events")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the preset")
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--through-airflow", action="store_true", help="DAGs day by day")
    parser.add_argument("--home", type=Path, help="state dir (default: a fresh temporary one)")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="only the evaluate stage, on the curated history already in --home (after a model "
        "change, without importing and backfilling again)",
    )
    args = parser.parse_args()
    if args.evaluate_only:
        if args.home is None:
            raise SystemExit("--evaluate-only needs --home: the state dir of an earlier run")
        evaluate_existing(args.home, args.test_days, args.style if args.events is None else None)
        return

    from pipelines.config import Settings
    from pipelines.data.catalogue import import_shop_log
    from pipelines.data.shop_styles import write_shop_export

    root = Path(tempfile.mkdtemp(prefix="bench-real-data-"))
    stages: dict[str, float] = {}
    calendar: dict[str, Any] = {}
    if args.events is None:
        began = time.perf_counter()
        export = write_shop_export(args.style, root / "export", scale=args.scale)
        stages["export"] = round(time.perf_counter() - began, 1)
        source, mapping = export.events, export.mapping
        options = {
            "event_type": export.event_type,
            "timezone": export.timezone,
            "timestamp_format": export.timestamp_format,
            "items": export.items,
            "items_mapping": export.items_mapping or None,
        }
        calendar = export.to_dict().get("calendar_settings", {})
        name = args.style
    else:
        source, mapping = args.events, parse_pairs(args.map, "--map")
        options = {
            "event_type": args.event_type,
            "timezone": args.timezone,
            "timestamp_format": args.timestamp_format,
            "items": args.items,
            "items_mapping": parse_pairs(args.items_map, "--items-map") or None,
        }
        name = args.events.stem
    if args.closed_weekdays is not None:
        calendar["closed_weekdays"] = args.closed_weekdays
    if args.closed_dates is not None:
        calendar["closed_dates"] = args.closed_dates
    if args.allow_empty_days:
        calendar["allow_empty_days"] = True
    settings = Settings(home=args.home or root / "home", train_time_budget_seconds=30, **calendar)
    print(f"{name}: {source} -> {settings.state_dir} (calendar {calendar or 'none'})", flush=True)

    began = time.perf_counter()
    imported = import_shop_log(source, mapping, settings=settings, **options)
    stages["import"] = round(time.perf_counter() - began, 1)
    report = imported.events
    print(
        f"import {stages['import']} s: read {report.rows_read:,}, wrote {report.rows_written:,}, "
        f"rejected {report.rows_rejected:,} {dict(report.rejected)}",
        flush=True,
    )

    history = backfill(settings, args.through_airflow)
    stages.update({k: round(v, 1) for k, v in history.stages_s.items()})
    print(f"backfill: {history.counts}; {history.wall_s:.0f} s {history.stages_s}", flush=True)

    began = time.perf_counter()
    evaluation = evaluate(settings, history.first_day, history.last_day, args.test_days)
    stages["evaluate"] = round(time.perf_counter() - began, 1)
    verdict = judge(evaluation["recommender"])
    print_figures(stages, evaluation, verdict)
    record(
        f"real_data_{name}",
        {
            "source": str(source),
            "import": {
                "rows_read": report.rows_read,
                "rows_written": report.rows_written,
                "rejected": dict(report.rejected),
                "derived": {t: d.rows for t, d in imported.derived.items()},
            },
            "history": {
                "counts": history.counts,
                "rows": history.rows,
                "airflow_share": history.airflow_share,
                "train": history.train,
            },
            "stages_s": stages,
            "wall_s": round(sum(stages.values()), 1),
            **evaluation,
            "checks": verdict,
        },
    )


def evaluate_existing(home: Path, test_days: int, style: str | None) -> None:
    """The evaluate stage alone, on the curated days of an earlier run's state dir."""
    from pipelines.config import Settings
    from pipelines.data.partitions import partition_days

    settings = Settings(home=home)
    days = partition_days(settings.curated_dir, "events")
    if not days:
        raise SystemExit(f"{settings.curated_dir}: no curated events; run without --evaluate-only")
    began = time.perf_counter()
    evaluation = evaluate(settings, days[0], days[-1], test_days)
    stages = {"evaluate": round(time.perf_counter() - began, 1)}
    verdict = judge(evaluation["recommender"])
    print_figures(stages, evaluation, verdict)
    name = style or home.name
    record(
        f"real_data_{name}_evaluate",
        {"home": str(home), "stages_s": stages, **evaluation, "checks": verdict},
    )


def backfill(settings: Any, through_airflow: bool) -> Any:
    from pipelines.orchestration.history import landed_span, run_history

    first, last = landed_span(settings)

    def show(update: Any) -> None:
        if update.stage == "train" or update.done % 30 == 0 or update.done == update.total:
            print(f"  {update.stage} {update.done}/{update.total} {update.day} {update.status}")

    return run_history(settings, first, last, through_airflow=through_airflow, progress=show)


def evaluate(settings: Any, first_day: Any, last_day: Any, test_days: int) -> dict[str, Any]:
    from pipelines.features.offline import read_curated_window
    from pipelines.models.propensity import fit_propensity_on_events
    from pipelines.models.recommender import benchmark_recommenders
    from pipelines.registry import model_overview

    events, users, items = read_curated_window(
        settings.curated_dir, last_day, days=(last_day - first_day).days + 1
    )
    recommender = benchmark_recommenders(events, protocol="temporal", test_days=test_days)
    propensity = fit_propensity_on_events(
        events,
        users,
        items,
        horizon_days=settings.propensity_horizon_days,
        time_budget_s=30,
        n_threads=1,
    ).metrics()
    registered = {}
    for model in ("propensity", "recommender"):
        newest = model_overview(settings, model, limit=1)
        if newest:
            row = newest[0]
            registered[model] = {
                "version": row["version"],
                "aliases": row["aliases"],
                "gate": row["gate_reason"],
                "metrics": {k: v for k, v in row["metrics"].items() if k.startswith("test_")},
            }
    return {
        "events": len(events),
        "recommender": recommender,
        "propensity": {
            k: propensity[k]
            for k in (
                "test_roc_auc",
                "recency_heuristic_test_roc_auc",
                "frequency_heuristic_test_roc_auc",
                "test_roc_auc_minus_best_heuristic",
            )
            if k in propensity
        },
        "registered": registered,
    }


def judge(recommender: dict[str, Any]) -> dict[str, Any]:
    """Selection within noise of every fixed candidate; above popularity and buy-again."""
    results, users = recommender["results"], recommender["test_users"]
    champion = results["champion"]["ndcg_at_10"]
    best_name = max((n for n in results if n != "champion"), key=lambda n: results[n]["ndcg_at_10"])
    best = results[best_name]["ndcg_at_10"]
    margin = noise(best, users)
    return {
        "best_fixed_candidate": best_name,
        "champion_minus_best_ndcg": round(champion - best, 4),
        "noise_2se_ndcg": round(margin, 4),
        "within_noise_of_best": champion >= best - margin,
        "beats_popularity": champion > results["popularity"]["ndcg_at_10"],
        "beats_buy_again": champion > results["buy_again"]["ndcg_at_10"],
        # a lead smaller than two standard errors is a tie, whatever its sign
        "beats_popularity_beyond_noise": champion
        > results["popularity"]["ndcg_at_10"] + noise(champion, users),
        "beats_buy_again_beyond_noise": champion
        > results["buy_again"]["ndcg_at_10"] + noise(champion, users),
    }


def print_figures(stages: dict[str, float], evaluation: dict[str, Any], verdict: dict) -> None:
    print("\ntime per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    recommender = evaluation["recommender"]
    print(
        f"\nrecommender ({recommender['split']}; {recommender['test_users']:,} test users; "
        f"validation winner: {recommender['winner']}, exclude_seen={recommender['exclude_seen']})"
    )
    print(f"  {'':<14} {'recall@10':>9} {'nDCG@10':>8}  candidate")
    for name, row in recommender["results"].items():
        print(f"  {name:<14} {row['recall_at_10']:>9.4f} {row['ndcg_at_10']:>8.4f}  {row['label']}")
    print(f"  checks: {verdict}")
    propensity = evaluation["propensity"]
    print(
        f"\npropensity test AUC {propensity.get('test_roc_auc', float('nan')):.4f} vs recency "
        f"{propensity.get('recency_heuristic_test_roc_auc', float('nan')):.4f}, frequency "
        f"{propensity.get('frequency_heuristic_test_roc_auc', float('nan')):.4f}"
    )
    for model, row in evaluation["registered"].items():
        print(f"registered {model} v{row['version']} {row['aliases']}: {row['gate']}")


if __name__ == "__main__":
    main()
