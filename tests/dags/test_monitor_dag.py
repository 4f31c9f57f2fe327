"""The monitor DAG on real Airflow, Evidently, MLflow and Feast: drift alerts, retrain, rollback.

A shop with covariate drift planted on DRIFT_DAY; champions trained on the month before the live
days. Shares the session's Airflow and state dir with the other DAG tests, on days of its own.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import mlflow
import pytest

from pipelines import registry
from pipelines.alerts.records import read_alerts
from pipelines.config import Settings
from pipelines.data.generator import PlantedChange, ShopSpec
from pipelines.flows.train import carry_out_gate, gate_version, train_model
from pipelines.models.testing import curated_shop
from pipelines.orchestration import backfill

START = date(2027, 6, 1)
TRAIN_END = date(2027, 6, 30)
DRIFT_DAY = date(2027, 7, 9)
LAST = date(2027, 7, 10)
FIRST_WATCHED = DRIFT_DAY - timedelta(days=7)
CLEAN_DAYS = [FIRST_WATCHED + timedelta(days=i) for i in range((DRIFT_DAY - FIRST_WATCHED).days)]


@pytest.fixture(scope="module")
def watched(airflow_settings: Settings) -> tuple[Settings, list]:
    settings = airflow_settings
    spec = ShopSpec(
        # drift tests need rows: below ~1000 users Evidently's p-value tests lack the power
        users=2000,
        items=300,
        days=(LAST - START).days + 1,
        seed=11,
        start=START,
        drifts=(PlantedChange("covariate", DRIFT_DAY),),
    )
    curated_shop(settings, spec)
    # propensity and segmentation watch the features the drift moves; the recommender's
    # monitoring has its own tests and would only add minutes here
    for model in ("propensity", "segmentation"):
        trained = train_model(settings, model, TRAIN_END)
        carry_out_gate(settings, gate_version(settings, model, trained.version))
    # not followed: the retrain a drift triggers is checked as queued, not run (train has its tests)
    records = backfill(settings, "monitor", CLEAN_DAYS[0], LAST, follow=False)
    return settings, records


def monitor_alerts(settings: Settings, kind: str) -> list[dict]:
    return [
        a
        for a in read_alerts(settings.alerts_file)
        if a["type"] == kind and a.get("day") and START <= date.fromisoformat(a["day"]) <= LAST
    ]


def test_no_drift_alert_on_the_clean_days(watched: tuple[Settings, list]) -> None:
    settings, records = watched
    runs = [r for r in records if r.dag_id == "monitor"]
    assert [r.state for r in runs] == ["success"] * len(runs), [r.failed_tasks for r in runs]
    assert len(CLEAN_DAYS) >= 7
    false_alarms = [a for a in monitor_alerts(settings, "drift") if a["day"] < str(DRIFT_DAY)]
    assert not false_alarms, [a["summary"] for a in false_alarms]


def test_planted_drift_is_alerted_with_its_features_a_report_and_a_retrain(
    watched: tuple[Settings, list],
) -> None:
    settings, records = watched
    alerts = [a for a in monitor_alerts(settings, "drift") if a["day"] >= str(DRIFT_DAY)]
    assert alerts, "no drift alert on or after the drift day"
    first = alerts[0]
    assert first["day"] in (str(DRIFT_DAY), str(DRIFT_DAY + timedelta(days=1)))
    drifted = [f["column"] for f in first["details"]["drifted_features"]]
    # covariate drift moves users to mobile devices and raises prices
    assert any(c.startswith(("device_share_", "avg_view_price_")) for c in drifted), drifted
    assert first["report"] and Path(first["report"]).exists()
    assert "docs/runbook.md#drift" in first["runbook_link"]
    assert monitor_alerts(settings, "retrain"), "drift did not trigger a retrain"
    triggered = [f for r in records for f in r.follow_ups if f.dag_id == "train"]
    assert triggered and triggered[0].day >= DRIFT_DAY
    assert triggered[0].source == "trigger" and triggered[0].conf.get("models")
    runs = mlflow.search_runs(
        experiment_names=[registry.MONITORING_EXPERIMENT],
        filter_string=f"tags.day = '{first['day']}' and tags.model = '{first['model']}'",
    )
    assert len(runs) >= 1


def test_a_champion_worse_live_than_its_predecessor_is_rolled_back(
    watched: tuple[Settings, list],
) -> None:
    """A champion that learnt nothing (shuffled labels) replaces a good one; once its labels
    mature, monitoring sees it lose to the previous champion in shadow and rolls it back."""
    from pipelines.flows.monitor import monitor_model

    settings, _ = watched
    good = registry.aliases(settings, "propensity").get(registry.CHAMPION)
    if good is None:
        pytest.skip("propensity had no champion on this data")
    bad = register_shuffled_propensity(settings, good)
    registry.promote(settings, "propensity", bad, actor="test", reason="a bad retrain")
    day = LAST
    verdict = monitor_model(settings, "propensity", day)
    assert registry.aliases(settings, "propensity")[registry.CHAMPION] == good, verdict
    (alert,) = [a for a in monitor_alerts(settings, "rollback") if a["version"] == str(bad)]
    assert f"rolled back from v{bad} to v{good}" in alert["summary"]
    (move,) = [r for r in registry.read_audit(settings, "propensity") if r["action"] == "rollback"]
    assert (move["from_version"], move["to_version"], move["actor"]) == (bad, good, "monitor")


def register_shuffled_propensity(settings: Settings, template: int) -> int:
    """A copy of ``template``'s pipeline refit on labels shuffled across rows."""
    import numpy as np
    from sklearn.base import clone

    from pipelines.models.runs import load_holdout, skops_trusted_types

    client = registry.mlflow_client(settings)
    source = client.get_model_version("propensity", str(template))
    rows = load_holdout(settings, "propensity", source.run_id)["rows"]
    model = registry.load_version(settings, "propensity", template)
    shuffled = rows.assign(label=np.random.default_rng(0).permutation(rows["label"].to_numpy()))
    bad = clone(model).fit(shuffled, shuffled["label"])

    run = registry.TrainingRun(
        model="propensity",
        log_model=lambda name: mlflow.sklearn.log_model(
            bad,
            name=name,
            pip_requirements=registry.pinned_requirements(),
            skops_trusted_types=skops_trusted_types(bad),
        ),
        tables={"holdout/rows.parquet": rows},
        lineage=registry.Lineage(TRAIN_END, TRAIN_END, (), "0" * 64, ()),
    )
    version = registry.log_and_register(settings, run).version
    registry.tag_version(settings, "propensity", version, {"gate.decision": "blessed"})
    return version


def test_a_closed_day_is_not_judged_and_pages_no_one(watched: tuple[Settings, list]) -> None:
    """A shop closed on a day: its empty 1-day windows would read as drift on every feature."""
    from pipelines.features.offline import compute_features_for_day
    from pipelines.orchestration import run_dag
    from pipelines.validation.ingest import load_closed_day

    settings, _ = watched
    closed = LAST + timedelta(days=1)
    load_closed_day(settings, closed, "closed on Sundays (closed_weekdays)")
    compute_features_for_day(settings, closed)
    before = len(read_alerts(settings.alerts_file))
    [record] = run_dag(settings, "monitor", closed)
    assert record.state == "success", record.failed_tasks
    assert read_alerts(settings.alerts_file)[before:] == []
    for model in ("propensity", "segmentation"):
        assert not (settings.reports_dir / model / closed.isoformat() / "drift.html").exists()
