"""Benchmark: recommender fit time on ~1M events and top-k time for every user (2 cores).

.venv/bin/python bench/train_recommender.py [--users 40000 --items 1000 --days 30 --k 10]
    [--evaluate]

Generates the shop's events (no feature tables) into a temporary home, then times, per model:
building the interaction matrix and fitting (``fit``), and recommending the top k to every user
who has interacted (``recommend``). ``--evaluate`` also times the whole protocol the train DAG
runs — temporal split, selection over all candidates on validation, test metrics beside
popularity and the oracle — and records its metrics. Results go to bench/results/recommender.json.
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


def read_landing(landing: Path, table: str):  # -> pd.DataFrame
    import pandas as pd

    files = sorted(landing.glob(f"{table}/date=*/*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--k", type=int, default=10, help="list length (default 10)")
    parser.add_argument(
        "--evaluate", action="store_true", help="also time split + selection + test metrics"
    )
    args = parser.parse_args()

    from pipelines.models.recommender import (
        CategoryAffinityRecommender,
        EASERecommender,
        ItemKNNRecommender,
        PopularityRecommender,
        evaluate_events,
    )

    spec = ShopSpec(
        users=args.users, items=args.items, days=args.days, seed=args.seed, start=date(2026, 1, 1)
    )
    models = {
        "popularity": PopularityRecommender(),
        "category_affinity": CategoryAffinityRecommender(),
        "item_knn": ItemKNNRecommender(),
        "ease": EASERecommender(l2=1000.0),
    }
    timings: dict[str, dict[str, float]] = {}
    result: dict[str, object] = {"spec": spec.to_dict(), "k": args.k}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        started = time.perf_counter()
        generate(spec, settings)
        result["generate_s"] = round(time.perf_counter() - started, 2)
        events = read_landing(settings.landing_dir, "events")
        items = read_landing(settings.landing_dir, "items").drop_duplicates("item_id", keep="last")
        users = events["user_id"].unique()
        result["events"] = len(events)
        result["users_with_events"] = len(users)
        for name, model in models.items():
            started = time.perf_counter()
            model.fit(events, items=items)
            fitted = time.perf_counter()
            recs = model.recommend(users, k=args.k)
            done = time.perf_counter()
            timings[name] = {
                "fit_s": round(fitted - started, 2),
                "recommend_all_users_s": round(done - fitted, 2),
                "users_per_s": round(len(users) / (done - fitted)),
                "rows": len(recs),
            }
            print(name, timings[name], flush=True)
        result["models"] = timings
        if args.evaluate:
            started = time.perf_counter()
            evaluation = evaluate_events(
                events, items=items, k=args.k, truth_dir=settings.truth_dir
            )
            report = evaluation.to_dict()
            result["evaluate"] = {
                "wall_s": round(time.perf_counter() - started, 2),
                "model": report["model"],
                "validation": report["selection"]["validation"],
                "test_users": report["users"],
                "ndcg_at_10": report["metrics"]["ndcg_at_10"],
                "popularity_ndcg_at_10": report["baseline"]["popularity"]["ndcg_at_10"],
                "oracle_ndcg_at_10": report["oracle_ndcg_at_10"],
                "test_ndcg_at_10_all": {
                    label: metrics["ndcg_at_10"] for label, metrics in evaluation.metrics.items()
                },
            }
    ease = timings["ease"]
    result["target"] = "EASE fit <= 60 s and top-k for every user <= 60 s on ~1M events"
    result["meets_target"] = ease["fit_s"] <= 60 and ease["recommend_all_users_s"] <= 60
    record("recommender", result)


if __name__ == "__main__":
    main()
