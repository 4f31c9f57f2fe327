"""The train DAG on real Airflow, MLflow and Feast: fit, log, register, gate, promote, publish.

Shares the session's Airflow and state dir with the other DAG tests, on days of its own (2027).
The curated partitions and features are written directly (``curated_shop``): the DAGs that would
write them have their own tests.
"""

from __future__ import annotations

from datetime import date, timedelta

import mlflow
import pytest

from pipelines import registry
from pipelines.config import Settings
from pipelines.data.generator import ShopSpec
from pipelines.models.catalog import model_names
from pipelines.models.testing import curated_shop
from pipelines.orchestration import run_dag

START = date(2027, 3, 1)
DAYS = 30
END = START + timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def trained(airflow_settings: Settings) -> tuple[Settings, list]:
    curated_shop(airflow_settings, ShopSpec(users=600, items=150, days=DAYS, seed=5, start=START))
    records = run_dag(airflow_settings, "train", END)
    return airflow_settings, records


def test_the_run_trains_gates_and_registers_all_three_models(
    trained: tuple[Settings, list],
) -> None:
    settings, records = trained
    (record,) = [r for r in records if r.dag_id == "train"]
    assert record.state == "success", record.failed_tasks or record.error
    for model in model_names():
        newest = registry.versions(settings, model)[0]
        tags = newest.tags
        assert tags["data.window_end"] == END.isoformat()
        assert tags["gate.decision"] in ("blessed", "rejected"), tags
        assert tags["gate.reason"]
        assert tags["git.commit"]
        assert int(tags["gx.validation_runs"]) > 0
        assert registry.aliases(settings, model)[registry.CHALLENGER] == int(newest.version)
        # blessed by value thresholds alone, a first model becomes champion (local profile)
        if tags["gate.decision"] == "blessed":
            assert registry.aliases(settings, model)[registry.CHAMPION] == int(newest.version)
        description = registry.mlflow_client(settings).get_model_version(model, newest.version)
        assert "gate" in (description.description or "").lower()


def test_each_run_carries_its_artifacts_and_lineage(trained: tuple[Settings, list]) -> None:
    settings, _ = trained
    client = registry.mlflow_client(settings)
    expected = {
        "propensity": {
            "plots/roc.png",
            "plots/precision_recall.png",
            "plots/calibration.png",
            "plots/gains.png",
            "tables/permutation_importance.csv",
        },
        "recommender": {"plots/metrics_at_k.png", "holdout/test_truth.parquet"},
        "segmentation": {"plots/segment_profiles.png", "tables/segment_profiles.csv"},
    }
    for model, files in expected.items():
        version = registry.versions(settings, model)[0]
        run = mlflow.get_run(version.run_id)
        listed = artifact_paths(client, version.run_id)
        assert files | {"model_card.md", "reference/reference_sample.parquet"} <= listed, listed
        assert run.inputs.dataset_inputs, f"{model}: no dataset lineage logged"
        assert run.data.tags["mlflow.note.content"].startswith(f"# {model}")
        assert run.data.metrics, model
    propensity = mlflow.get_run(registry.versions(settings, "propensity")[0].run_id)
    assert propensity.data.tags["feast.feature_service"] == "propensity_v1"
    assert propensity.data.metrics["test_roc_auc"] > 0.6
    reference = registry.load_reference_sample(settings, "propensity", registry.CHALLENGER)
    assert "score" in reference.columns and reference["score"].between(0, 1).all()


def test_segment_labels_of_the_champion_reach_the_feature_store(
    trained: tuple[Settings, list],
) -> None:
    from pipelines.features.offline import read_offline_partition

    settings, _ = trained
    if registry.aliases(settings, "segmentation").get(registry.CHAMPION) is None:
        pytest.skip("segmentation was not blessed on this data")
    labels = read_offline_partition(settings.feast_offline_dir, "user_segment", END)
    assert labels is not None and len(labels) > 0
    assert labels["segment_name"].notna().all()


def test_a_run_for_one_model_skips_the_others(trained: tuple[Settings, list]) -> None:
    settings, _ = trained
    before = {m: len(registry.versions(settings, m)) for m in model_names()}
    (record,) = [
        r
        for r in run_dag(settings, "train", END, conf={"models": ["segmentation"]})
        if r.dag_id == "train"
    ]
    assert record.state == "success"
    others = [
        f"{step}_{m}"
        for m in ("propensity", "recommender")
        for step in ("gate", "promote", "train")
    ]
    assert record.skipped_tasks == sorted(others), "the other models are skipped, not run empty"
    after = {m: len(registry.versions(settings, m)) for m in model_names()}
    assert after == {**before, "segmentation": before["segmentation"] + 1}
    newest = registry.versions(settings, "segmentation")[0]
    # same data, same seed: the retrain agrees with the champion and is judged on stability
    assert newest.tags.get("gate.label_agreement.value") is not None or (
        registry.aliases(settings, "segmentation").get(registry.CHAMPION) is None
    )


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for entry in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, entry.path) if entry.is_dir else {entry.path}
    return found


def test_personalize_train_runs_the_dag_for_one_model_and_says_what_happened(
    trained: tuple[Settings, list],
) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    settings, _ = trained
    before = len(registry.versions(settings, "segmentation"))
    result = CliRunner().invoke(
        app,
        ["--home", str(settings.state_dir), "train", "segmentation", "--date", END.isoformat()],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert len(registry.versions(settings, "segmentation")) == before + 1
    newest = registry.versions(settings, "segmentation")[0]
    assert f"segmentation v{newest.version}: {newest.tags['gate.decision']}" in result.output
    listed = CliRunner().invoke(
        app, ["--home", str(settings.state_dir), "models", "segmentation"], catch_exceptions=False
    )
    assert listed.exit_code == 0 and str(newest.version) in listed.output


def test_recommend_batch_serves_the_champions_top_k_online(trained: tuple[Settings, list]) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.features.online import online_features

    settings, _ = trained
    champion = registry.aliases(settings, "recommender").get(registry.CHAMPION)
    if champion is None:
        pytest.skip("the recommender was not blessed on this data")
    result = CliRunner().invoke(
        app,
        ["--home", str(settings.state_dir), "recommend", "batch", "--date", END.isoformat()],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    user = registry.load_reference_sample(settings, "recommender")["user_id"].iloc[0]
    served = online_features(settings, [user], "recommendations_v1").iloc[0]
    items = served["recommended_item_ids"].split(",")
    assert len(items) == 10 and len(set(items)) == 10
    assert served["recommender_version"] == champion
