"""The recommender and the segmentation as pyfunc models: state as plain files, loadable by anyone.

Every recommender family and the segmentation survive :func:`save_state` / :func:`load_state`
unchanged (same lists, same segments); registered versions trained on a small shop are loaded
with ``mlflow.pyfunc.load_model`` in a fresh Python process and scored there, and their artifact
holds no pickle beyond MLflow's few-hundred-byte shell and no dense user x item matrix.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import registry
from pipelines.config import Settings
from pipelines.data.generator import ShopSpec
from pipelines.flows.monitor import monitor_model
from pipelines.flows.train import carry_out_gate, gate_version, publish_segments, train_model
from pipelines.models.pyfunc import (
    MANIFEST,
    STATE_ARTIFACT,
    StateError,
    load_state,
    save_state,
)
from pipelines.models.recommender import (
    BlendRecommender,
    BuyAgainRecommender,
    CategoryAffinityRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from pipelines.models.segmentation import INPUT_COLUMNS, SegmentationModel
from pipelines.models.testing import ShopData, curated_shop, synthetic_shop

START = date(2026, 1, 5)
SHOP = ShopSpec(users=300, items=80, days=22, seed=7, start=START)
END = START + timedelta(days=SHOP.days - 1)
PLAIN_SUFFIXES = {".json", ".npy", ".npz", ".parquet"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopData:
    return synthetic_shop(tmp_path_factory.mktemp("shop"), SHOP)


def user_segments(shop: ShopData) -> pd.Series:
    users = shop.users["user_id"].astype(str)
    return pd.Series(np.arange(len(users)) % 3, index=users.to_numpy())


@pytest.mark.parametrize(
    "estimator",
    [
        PopularityRecommender(),
        CategoryAffinityRecommender(),
        ItemKNNRecommender(n_neighbors=5),  # sparse neighbours: stored as .npz, dense on load
        EASERecommender(l2=50.0),
        BuyAgainRecommender(),
        BlendRecommender(base=EASERecommender(l2=50.0), repeat_weight=0.3),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_recommender_family_comes_back_from_its_files_unchanged(
    shop: ShopData, estimator, tmp_path: Path
) -> None:
    model = estimator.fit(shop.events, items=shop.items, segments=user_segments(shop))
    stored = save_state(model, tmp_path / "state")
    assert {p.suffix for p in stored.iterdir()} <= PLAIN_SUFFIXES
    rebuilt = load_state(stored)

    assert type(rebuilt) is type(model)
    users = [*shop.users["user_id"].astype(str)[:60], "a-new-user"]
    for exclude_seen in (True, False):
        pd.testing.assert_frame_equal(
            rebuilt.recommend(users, k=10, exclude_seen=exclude_seen),
            model.recommend(users, k=10, exclude_seen=exclude_seen),
        )
    np.testing.assert_array_equal(rebuilt.score_items(users[:5]), model.score_items(users[:5]))


def test_the_interactions_stay_sparse_and_a_blend_stores_shared_state_once(
    shop: ShopData, tmp_path: Path
) -> None:
    model = BlendRecommender(base=EASERecommender(l2=50.0)).fit(shop.events, items=shop.items)
    stored = save_state(model, tmp_path / "state")
    files = {p.name for p in stored.iterdir()}
    assert {"base.X.npz", "repeat.X.npz"} <= files
    assert "X.npz" not in files  # the blend's own X_ is its base's: written once
    rebuilt = load_state(stored)
    assert rebuilt.X_ is rebuilt.base_.X_


def test_the_segmentation_comes_back_unchanged_and_can_seed_the_next_fit(
    shop: ShopData, tmp_path: Path
) -> None:
    activity = shop.user_activity
    day = activity[activity["event_timestamp"] == activity["event_timestamp"].max()]
    model = SegmentationModel(k_range=(3, 5)).fit(day)
    rebuilt = load_state(save_state(model, tmp_path / "state"))

    np.testing.assert_array_equal(rebuilt.predict(day), model.predict(day))
    assert rebuilt.metrics() == model.metrics()
    assert rebuilt.segment_names_ == model.segment_names_
    assert rebuilt.k_range == model.k_range
    pd.testing.assert_frame_equal(rebuilt.reference_, model.reference_)
    pd.testing.assert_series_equal(rebuilt.sizes_, model.sizes_)
    again = SegmentationModel(k_range=(3, 5)).fit(day, previous=rebuilt)
    np.testing.assert_array_equal(again.predict(day), model.predict(day))


def test_a_model_with_state_that_has_no_plain_file_form_is_refused(
    shop: ShopData, tmp_path: Path
) -> None:
    model = PopularityRecommender().fit(shop.events)
    model.scorer_ = lambda users: users  # would need a pickle
    with pytest.raises(StateError, match="scorer_"):
        save_state(model, tmp_path / "state")
    with pytest.raises(StateError, match="cannot be stored"):
        save_state(pd.DataFrame(), tmp_path / "other")


# ---- registered versions, loaded by anyone --------------------------------------------------

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(sys.argv[1])
    request = json.loads(sys.argv[2])
    out = {}
    recommender = mlflow.pyfunc.load_model(request["recommender"])
    recs = recommender.predict(pd.DataFrame({"user_id": request["users"]}), params={"k": 3})
    out["recommender"] = {
        "columns": list(recs.columns),
        "rows": recs.astype(str).values.tolist(),
        "signature": recommender.metadata.get_input_schema().input_names(),
        "params": [p.name for p in recommender.metadata.get_params_schema().params],
    }
    segmentation = mlflow.pyfunc.load_model(request["segmentation"])
    frame = pd.DataFrame(request["activity"])
    labels = segmentation.predict(frame)
    out["segmentation"] = {
        "columns": list(labels.columns),
        "rows": labels.astype(str).values.tolist(),
        "signature": segmentation.metadata.get_input_schema().input_names(),
    }
    out["modules"] = sorted(m for m in sys.modules if m.startswith("pipelines."))
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int, int]:
    settings = Settings(home=tmp_path_factory.mktemp("pyfunc-registry") / "home")
    curated_shop(settings, SHOP)
    recommender = train_model(settings, "recommender", END)
    segmentation = train_model(settings, "segmentation", END)
    return settings, recommender.version, segmentation.version


def model_dir(settings: Settings, name: str, version: int) -> Path:
    import mlflow

    registry.mlflow_client(settings)
    return Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))


def test_registered_models_load_and_score_with_mlflow_alone_in_a_fresh_process(
    trained: tuple[Settings, int, int],
) -> None:
    settings, recommender_version, segmentation_version = trained
    users = sorted(registry.load_version(settings, "recommender", recommender_version).user_ids_)
    users = [*users[:4], "someone-new"]
    activity = pd.read_parquet(
        settings.feast_offline_dir / "user_activity" / f"date={END.isoformat()}"
    ).head(6)
    request = {
        "recommender": f"models:/recommender/{recommender_version}",
        "segmentation": f"models:/segmentation/{segmentation_version}",
        "users": users,
        # what a caller outside the platform sends: the documented inputs, nothing else
        "activity": activity[["user_id", *INPUT_COLUMNS]].to_dict(orient="list"),
    }
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, settings.mlflow_tracking_uri, json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    recs = out["recommender"]
    assert recs["columns"] == ["user_id", "rank", "item_id", "score"]
    assert recs["signature"] == ["user_id"] and recs["params"] == ["k"]
    frame = pd.DataFrame(recs["rows"], columns=recs["columns"])
    assert len(frame) == 3 * len(users)  # k = 3 for everyone, the new user included
    assert frame.groupby("user_id")["rank"].apply(list).to_dict() == {
        u: ["1", "2", "3"] for u in users
    }
    native = registry.load_version(settings, "recommender", recommender_version)
    expected = native.recommend(users, k=3)
    assert frame["item_id"].tolist() == expected["item_id"].astype(str).tolist()

    segments = out["segmentation"]
    assert segments["columns"] == ["user_id", "segment_id"]
    assert segments["signature"] == ["user_id", *INPUT_COLUMNS]
    labels = pd.DataFrame(segments["rows"], columns=segments["columns"])
    assert labels["user_id"].tolist() == activity["user_id"].astype(str).tolist()
    segmentation = registry.load_version(settings, "segmentation", segmentation_version)
    assert labels["segment_id"].tolist() == [str(s) for s in segmentation.predict(activity)]
    # only what unpickling the shells and rebuilding the models imports, no platform wiring
    assert not [m for m in out["modules"] if m.split(".")[1] not in ("models", "data")], out


def test_the_artifacts_hold_plain_files_and_no_dense_user_by_item_matrix(
    trained: tuple[Settings, int, int],
) -> None:
    settings, recommender_version, segmentation_version = trained
    native = registry.load_version(settings, "recommender", recommender_version)
    dense_bytes = native.user_ids_.size * native.catalogue_.size * 8
    for name, version in (
        ("recommender", recommender_version),
        ("segmentation", segmentation_version),
    ):
        directory = model_dir(settings, name, version)
        flavors = (directory / "MLmodel").read_text()
        assert "python_function" in flavors and "sklearn" not in flavors
        state = directory / "artifacts" / STATE_ARTIFACT
        assert (state / MANIFEST).is_file()
        assert {p.suffix for p in state.iterdir()} <= PLAIN_SUFFIXES
        pickles = [p for p in directory.rglob("*") if p.suffix in (".pkl", ".pickle")]
        assert [p.name for p in pickles] == ["python_model.pkl"], pickles
        assert pickles[0].stat().st_size < 4096  # the shell: a reference to the class
        # what the model is made of (MLflow also copies the project's uv.lock beside it)
        largest = max(p.stat().st_size for p in state.iterdir())
        assert largest < dense_bytes / 4, (name, largest, dense_bytes)
    state = model_dir(settings, "recommender", recommender_version) / "artifacts" / STATE_ARTIFACT
    interactions = [p for p in state.iterdir() if p.name.endswith("X.npz")]
    assert interactions, sorted(p.name for p in state.iterdir())


def test_gate_publish_and_the_next_fit_use_the_loaded_native_models(
    trained: tuple[Settings, int, int],
) -> None:
    settings, recommender_version, segmentation_version = trained
    for name, version in (
        ("recommender", recommender_version),
        ("segmentation", segmentation_version),
    ):
        record = gate_version(settings, name, version)
        assert record.decision in ("blessed", "rejected"), record
        if record.decision == "blessed":
            carry_out_gate(settings, record)
    if registry.aliases(settings, "segmentation").get(registry.CHAMPION) is None:
        pytest.fail("the first segmentation was not blessed: nothing to match the next one to")
    assert publish_segments(settings, END)["published"] > 0
    assert "retrain" in monitor_model(settings, "segmentation", END)  # drift on its labels
    # the next segmentation matches its ids to the champion loaded from its files
    retrained = train_model(settings, "segmentation", END)
    record = gate_version(settings, "segmentation", retrained.version)
    assert record.champion_version == segmentation_version
    agreement = [c for c in record.checks if c.metric == "label_agreement"]
    assert agreement and agreement[0].challenger == pytest.approx(1.0), record.checks
