"""Benchmark: recommender fit time on ~1M events and top-k time for every user (2 cores).

.venv/bin/python bench/train_recommender.py [--users 40000 --items 1000 --days 30 --k 10]
    [--evaluate]

Generates the shop's events (no feature tables) into a temporary home, then times, per model:
building the interaction matrix and fitting (``fit``), and recommending the top k to every user
who has interacted (``recommend``). ``--evaluate`` also times the whole protocol the train DAG
runs — temporal split, selection over all candidates on validation, test metrics beside
popularity and the oracle — and records its metrics. Results go to bench/results/recommender.json.

``--order-lines`` instead times :func:`benchmark_recommenders` (selection under the chosen
``--protocol``, champion vs popularity vs buy-again vs every family) on an order-line log: the
``--log FILE`` given (CSV/parquet, e.g. a public shop export) or, without it, a generated one of
~500k lines / 4k customers / 4k items where customers rebuy staples and explore by taste.
Results go to bench/results/recommender_benchmark.json.
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
    parser.add_argument("--order-lines", action="store_true", help="time benchmark_recommenders")
    parser.add_argument("--log", type=Path, default=None, help="order-line log for --order-lines")
    parser.add_argument("--protocol", default="temporal", choices=("temporal", "random"))
    parser.add_argument("--test-days", type=int, default=30)
    args = parser.parse_args()
    if args.order_lines:
        order_line_benchmark(args)
        return

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


def synthetic_order_lines(
    seed: int, customers: int = 4000, items: int = 4000, lines: int = 500_000
):
    """A year of purchases: each customer has staples they rebuy and a taste group to explore."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    per_customer = rng.multinomial(lines, rng.dirichlet(np.full(customers, 2.0)))
    user = np.repeat(np.arange(customers), per_customer)
    group = user % 40
    staple = rng.random(user.size) < 0.6
    staples = rng.integers(0, items, size=(customers, 5))
    explore = group * (items // 40) + rng.zipf(1.6, user.size) % (items // 40)
    item = np.where(staple, staples[user, rng.integers(0, 5, user.size)], explore)
    day = rng.integers(0, 365, user.size)
    return pd.DataFrame(
        {
            "user_id": pd.Series(user).map("c{:05d}".format),
            "item_id": pd.Series(item).map("p{:05d}".format),
            "event_type": "purchase",
            "event_ts": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(day, unit="D"),
            "quantity": 1,
            "price": 5.0,
        }
    )


def order_line_benchmark(args: argparse.Namespace) -> None:
    from pipelines.models.interactions import read_interactions
    from pipelines.models.recommender import benchmark_recommenders

    events = read_interactions(args.log) if args.log else synthetic_order_lines(args.seed)
    result = benchmark_recommenders(
        events, protocol=args.protocol, test_days=args.test_days, seed=args.seed, k=args.k
    )
    result["source"] = str(args.log) if args.log else "synthetic order lines"
    result["lines"] = len(events)
    result["customers"] = int(events["user_id"].nunique())
    result["items"] = int(events["item_id"].nunique())
    result["target"] = "benchmark_recommenders well under 120 s on ~500k lines, 2 cores"
    result["meets_target"] = result["seconds"] < 120
    result.pop("validation")
    print(result, flush=True)
    record("recommender_benchmark", result)


if __name__ == "__main__":
    main()
