"""The registry against a real MLflow store (SQLite + local artifacts in a temp state dir)."""

from __future__ import annotations

import itertools
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import registry
from pipelines.config import Settings
from pipelines.registry import CHALLENGER, CHAMPION, PREVIOUS, RegistryError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("registry") / "home")


def _train(settings: Settings, model: str, seed: int, *, blessed: bool = True) -> int:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    labels = (frame["a"] > 0).astype(int)
    estimator = LogisticRegression().fit(frame, labels)

    def log_model(name: str):
        return mlflow.sklearn.log_model(
            estimator,
            name=name,
            input_example=frame.head(3),
            pip_requirements=registry.pinned_requirements(),
        )

    lineage = registry.Lineage(
        window_start=date(2026, 1, 1),
        window_end=date(2026, 1, 7),
        partitions=("events/date=2026-01-01",),
        content_hash="ab" * 32,
        gx_run_ids=("events-2026-01-01@t",),
        feature_service="propensity_v1",
    )
    run = registry.TrainingRun(
        model=model,
        log_model=log_model,
        params={"seed": seed, "grid": [1, 2]},
        metrics={"test_roc_auc": 0.8, "not_a_number": float("nan")},
        texts={"notes/readme.txt": "hello"},
        tables={"tables/importance.csv": pd.DataFrame({"feature": ["a"], "importance": [1.0]})},
        model_card="# card\n",
        reference_sample=frame.assign(score=estimator.predict_proba(frame)[:, 1]),
        training_frame=frame,
        lineage=lineage,
    )
    version = registry.log_and_register(settings, run)
    if blessed:
        registry.tag_version(settings, model, version.version, {"gate.decision": "blessed"})
    return version.version


def test_a_training_run_is_registered_with_lineage_and_artifacts(store: Settings) -> None:
    import mlflow

    version = _train(store, "propensity", seed=1)
    found = registry.versions(store, "propensity")[0]
    assert int(found.version) == version
    assert found.tags["feast.feature_service"] == "propensity_v1"
    assert found.tags["data.content_hash"] == "ab" * 32
    assert found.tags["gx.last_run_id"] == "events-2026-01-01@t"
    assert found.tags["git.commit"]
    assert registry.aliases(store, "propensity")[CHALLENGER] == version

    run = mlflow.get_run(found.run_id)
    assert run.data.params["seed"] == "1"
    assert run.data.metrics == {"test_roc_auc": 0.8}
    assert run.data.tags["mlflow.note.content"] == "# card\n"
    assert run.inputs.dataset_inputs[0].dataset.digest == ("ab" * 32)[:32]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(found.run_id)}
    assert {"model_card.md", "reference", "tables", "lineage", "notes"} <= artifacts
    sample = registry.load_reference_sample(store, "propensity", CHALLENGER)
    assert list(sample.columns) == ["a", "b", "score"]
    model = registry.load_version(store, "propensity", version)
    assert model.predict_proba(sample[["a", "b"]]).shape == (60, 2)


def test_promotion_rollback_and_hand_moves_are_audited(store: Settings) -> None:
    model = "recommender"
    v1 = _train(store, model, seed=1)
    v2 = _train(store, model, seed=2)
    v3 = _train(store, model, seed=3, blessed=False)

    assert registry.promote(store, model, v1, actor="test", reason="first")
    assert registry.promote(store, model, v1, actor="test", reason="again") is None  # idempotent
    registry.promote(store, model, v2, actor="test", reason="better")
    assert registry.aliases(store, model) == {CHAMPION: v2, PREVIOUS: v1, CHALLENGER: v3}
    with pytest.raises(RegistryError, match="not blessed"):
        registry.promote(store, model, v3, actor="test", reason="worse")
    assert registry.aliases(store, model)[CHAMPION] == v2

    # what the MLflow UI does: move the alias directly
    registry.mlflow_client(store).set_registered_model_alias(model, CHAMPION, str(v3))
    move = registry.reconcile_manual_moves(store, model)
    assert move is not None and (move.action, move.from_version, move.to_version) == (
        "manual",
        v2,
        v3,
    )
    assert registry.reconcile_manual_moves(store, model) is None

    back = registry.rollback(store, model, reason="hand pick was wrong", actor="oncall")
    assert (back.from_version, back.to_version) == (v3, v2)
    assert registry.aliases(store, model)[PREVIOUS] == v1  # what v2 replaced when promoted
    assert registry.versions(store, model)[0].tags["rolled_back"] == "true"
    registry.rollback(store, model, reason="again", actor="oncall")
    assert registry.aliases(store, model)[CHAMPION] == v1
    with pytest.raises(Exception, match="previous"):
        registry.rollback(store, model, reason="nothing left", actor="oncall")

    actions = [
        (r["action"], r["from_version"], r["to_version"]) for r in registry.read_audit(store, model)
    ]
    assert actions == [
        ("promote", None, v1),
        ("promote", v1, v2),
        ("manual", v2, v3),
        ("rollback", v3, v2),
        ("rollback", v2, v1),
    ]


def test_racing_promotions_leave_a_blessed_champion_and_a_consistent_log(store: Settings) -> None:
    model = "segmentation"
    blessed = [_train(store, model, seed=s) for s in (1, 2)]
    rejected = _train(store, model, seed=3, blessed=False)
    errors: list[Exception] = []

    def attempt(version: int) -> None:
        try:
            registry.promote(store, model, version, actor=f"thread-{version}", reason="race")
        except RegistryError as error:
            errors.append(error)

    threads = [threading.Thread(target=attempt, args=(v,)) for v in (*blessed, rejected) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    champion = registry.aliases(store, model)[CHAMPION]
    assert champion in blessed
    assert len(errors) == 2  # the rejected version, twice
    audit = registry.read_audit(store, model)
    for before, after in itertools.pairwise(audit):
        assert after["from_version"] == before["to_version"]
    assert audit[-1]["to_version"] == champion


def test_lineage_hashes_curated_partitions(settings: Settings, tmp_path: Path) -> None:
    from pipelines.data.partitions import partition_dir

    for day in (date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)):
        directory = partition_dir(settings.curated_dir, "events", day)
        directory.mkdir(parents=True)
        (directory / "part-0.parquet").write_bytes(day.isoformat().encode())
        (directory / "_validation.json").write_text(f'{{"gx_run_id": "run-{day}"}}')
    lineage = registry.curated_lineage(settings, date(2026, 1, 2), date(2026, 1, 3))
    assert lineage.partitions == ("events/date=2026-01-02", "events/date=2026-01-03")
    assert lineage.gx_run_ids == ("run-2026-01-02", "run-2026-01-03")
    again = registry.curated_lineage(settings, date(2026, 1, 2), date(2026, 1, 3))
    assert again.content_hash == lineage.content_hash
    (
        partition_dir(settings.curated_dir, "events", date(2026, 1, 3)) / "part-0.parquet"
    ).write_bytes(b"x")
    changed = registry.curated_lineage(settings, date(2026, 1, 2), date(2026, 1, 3))
    assert changed.content_hash != lineage.content_hash
