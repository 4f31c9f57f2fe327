"""Which models the monitor DAG retrains: the plan made from the day's verdicts (no Airflow)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from pipelines.flows.monitor import plan_retrain_for_run

INTERVAL = {"data_interval_start": datetime(2026, 2, 10, tzinfo=UTC)}


def verdict(model: str, retrain: bool) -> dict:
    """What ``monitor_model`` returns for a model with a champion."""
    return {"model": model, "version": 3, "day": "2026-02-10", "verdict": "...",
            "retrain": retrain, "actions": []}  # fmt: skip


def test_a_retrain_verdict_plans_a_train_run_for_that_model_and_day() -> None:
    verdicts = [
        verdict("segmentation", True),
        {"model": "recommender", "day": "2026-02-10", "verdict": "no champion yet"},
        verdict("propensity", True),
        None,  # a monitor task that returned nothing
    ]
    assert plan_retrain_for_run(verdicts, INTERVAL) == {
        "day": "2026-02-10",
        "models": "propensity,segmentation",
    }
    only = plan_retrain_for_run(
        [verdict("propensity", False), verdict("recommender", True)], INTERVAL
    )
    assert only == {"day": "2026-02-10", "models": "recommender"}
    # a run triggered for another day (a backfill) retrains for that day
    backfill = INTERVAL | {"dag_run": SimpleNamespace(conf={"day": "2026-01-31"})}
    assert plan_retrain_for_run([verdict("propensity", True)], backfill)["day"] == "2026-01-31"


def test_no_retrain_verdict_plans_nothing() -> None:
    calm = [verdict(m, False) for m in ("propensity", "recommender", "segmentation")]
    assert plan_retrain_for_run(calm, INTERVAL) is None
    assert plan_retrain_for_run([], INTERVAL) is None
