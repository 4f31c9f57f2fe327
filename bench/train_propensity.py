"""Benchmark: purchase-propensity training on the labelled snapshots of ~1M events.

.venv/bin/python bench/train_propensity.py [--users 40000 --items 1000 --days 30]
                                           [--time-budget 60 --threads N --seed 42]
                                           [--purchases-only]

Builds a shop with ``synthetic_shop`` (ShopSpec(users=40000, items=1000, days=30) is ~1.09M
events, with ``user_activity`` for every day), labels every snapshot day whose 7-day horizon the
data covers, joins the labels to the features as the Feast training set would, then times
``fit_propensity`` end to end (split, baseline, sparse logistic fits, boosting search within the
time budget, calibration, test scoring, permutation importance) and reports its test AUC beside
the oracle's (the generator's true probabilities) and beside the RFM-recency and purchase-frequency
rules on the same test rows. ``--purchases-only`` keeps only the purchase events (an order-line
export): the view and cart features are then left out as unsupported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Writes bench/results/train_propensity.json.",
    )
    parser.add_argument("--users", type=int, default=40_000, help="users in the shop")
    parser.add_argument("--items", type=int, default=1_000, help="items in the catalogue")
    parser.add_argument("--days", type=int, default=30, help="days of events (>= 15)")
    parser.add_argument("--seed", type=int, default=42, help="generator and model seed")
    parser.add_argument(
        "--time-budget", type=float, default=60.0, help="seconds for the boosting search"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="cap OpenMP/BLAS threads (default: all cores)"
    )
    parser.add_argument(
        "--purchases-only", action="store_true", help="drop views and carts (order lines only)"
    )
    args = parser.parse_args()

    import pandas as pd
    import sklearn.calibration
    import sklearn.ensemble
    import sklearn.inspection
    import sklearn.linear_model  # noqa: F401  (imported here so the fit is not charged for it)

    from pipelines.data.generator import ShopSpec
    from pipelines.models.propensity import (
        fit_propensity,
        label_complete_days,
        propensity_frame,
        purchase_labels,
    )
    from pipelines.models.testing import synthetic_shop

    spec = ShopSpec(users=args.users, items=args.items, days=args.days, seed=args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        shop = synthetic_shop(Path(home), spec)
        truth = pd.read_parquet(shop.truth_dir / "purchase_probability_7d.parquet")
    shop_s = time.perf_counter() - started

    labelled = time.perf_counter()
    if args.purchases_only:
        events = shop.events[shop.events["event_type"].astype(str) == "purchase"]
        frame = propensity_frame(events, shop.users, shop.items)
    else:
        labels = purchase_labels(
            shop.events, shop.users, label_complete_days(shop.days[-1], shop.days[0])
        )
        frame = labels.merge(
            shop.user_activity, on=["user_id", "event_timestamp"], how="left", validate="one_to_one"
        )
    label_s = time.perf_counter() - labelled

    fitting = time.perf_counter()
    result = fit_propensity(
        frame,
        seed=args.seed,
        time_budget_s=args.time_budget,
        n_threads=args.threads,
        truth=truth,
    )
    fit_s = time.perf_counter() - fitting
    metrics = result.metrics()
    table = result.candidates

    record(
        "train_propensity_purchases_only" if args.purchases_only else "train_propensity",
        {
            "spec": spec.to_dict(),
            "events": len(shop.events),
            "rows": len(frame),
            "rows_by_part": result.rows,
            "features": len(result.feature_columns),
            "threads": args.threads or "default",
            "time_budget_s": args.time_budget,
            "shop_s": round(shop_s, 1),
            "label_s": round(label_s, 2),
            "fit_s": round(fit_s, 1),
            "wall_s": round(time.perf_counter() - started, 1),
            "rows_per_s": round(len(frame) / fit_s),
            "candidate_fit_s": {
                name: round(float(group.sum()), 2)
                for name, group in table.groupby("candidate")["fit_s"]
            },
            "candidates_tried": len(table),
            "search_truncated": result.search_truncated,
            "chosen": result.candidate,
            "chosen_params": result.params,
            "calibration": result.calibration,
            "split": result.split.to_dict(),
            "test_roc_auc": round(metrics["test_roc_auc"], 4),
            "baseline_test_roc_auc": round(metrics["baseline_test_roc_auc"], 4),
            "recency_heuristic_test_roc_auc": round(metrics["recency_heuristic_test_roc_auc"], 4),
            "frequency_heuristic_test_roc_auc": round(
                metrics["frequency_heuristic_test_roc_auc"], 4
            ),
            "purchases_only": args.purchases_only,
            "unsupported_features": sorted(result.unsupported_columns),
            "oracle_test_roc_auc": round(metrics["oracle_test_roc_auc"], 4),
            "test_roc_auc_vs_oracle": round(metrics["test_roc_auc_vs_oracle"], 4),
            "test_pr_auc": round(metrics["test_pr_auc"], 4),
            "test_brier": round(metrics["test_brier"], 4),
            "oracle_test_brier": round(metrics["oracle_test_brier"], 4),
            "test_ece": round(metrics["test_ece"], 4),
            "test_lift_top_decile": round(metrics["test_lift_top_decile"], 3),
            "top_features": result.importance["feature"].head(5).tolist(),
        },
    )


if __name__ == "__main__":
    main()
