"""Customer segments on a generated shop: distinct profiles, true user types, stable ids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pipelines.data.generator import ShopSpec
from pipelines.features.schema import FEATURE_TABLES
from pipelines.models.segmentation import (
    FEATURES,
    SegmentationError,
    SegmentationModel,
    label_agreement,
    population_reference,
    segment_labels,
    segment_names,
    segment_profile_figure,
    segment_profiles,
)
from pipelines.models.testing import ShopData, synthetic_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopData:
    return synthetic_shop(tmp_path_factory.mktemp("shop"), ShopSpec())


def _day(shop: ShopData, back: int) -> pd.DataFrame:
    stamps = sorted(shop.user_activity["event_timestamp"].unique())
    frame = shop.user_activity
    return frame[frame["event_timestamp"] == stamps[-1 - back]].reset_index(drop=True)


@pytest.fixture(scope="module")
def last(shop: ShopData) -> pd.DataFrame:
    return _day(shop, 0)


@pytest.fixture(scope="module")
def day_before(shop: ShopData) -> pd.DataFrame:
    return _day(shop, 1)


@pytest.fixture(scope="module")
def model(last: pd.DataFrame) -> SegmentationModel:
    return SegmentationModel().fit(last)


@pytest.fixture(scope="module")
def rich(last: pd.DataFrame) -> SegmentationModel:
    """Many segments, so name rules and qualifiers get exercised."""
    return SegmentationModel(k_range=(8, 8)).fit(last)


@pytest.fixture(scope="module")
def user_types(shop: ShopData) -> pd.Series:
    truth = pd.read_parquet(shop.truth_dir / "users.parquet")
    return truth.set_index("user_id")["user_type"]


# ---- what the segments say --------------------------------------------------------------------


def test_k_is_chosen_by_silhouette_and_metrics_are_flat_numbers(model: SegmentationModel):
    assert set(model.silhouette_by_k_) == set(range(3, 9))
    assert model.silhouette_ == max(model.silhouette_by_k_.values())
    assert model.k_ == max(model.silhouette_by_k_, key=model.silhouette_by_k_.get)
    assert model.silhouette_ > 0.2
    metrics = model.metrics()
    assert set(metrics) == {"silhouette", "davies_bouldin", "k", "smallest_segment_share"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["k"] == model.k_ == len(model.sizes_) == len(model.centroids_)
    assert 0 < metrics["smallest_segment_share"] <= 1 / model.k_
    assert metrics["davies_bouldin"] > 0


def test_segments_differ_in_spend_and_activity(
    model: SegmentationModel, rich: SegmentationModel, last: pd.DataFrame
):
    for fitted in (model, rich):
        profile = segment_profiles(fitted, last).set_index("segment_id")
        spend = profile["spend_30d"].sort_values()
        assert spend.iloc[-1] > 100 and spend.iloc[-1] >= 5 * max(spend.iloc[0], 1.0)
        # the inactive users (never acted in 30 days) get a segment of their own
        inactive = profile[profile["never_active"] > 0.9]
        assert len(inactive) == 1
        assert inactive["views_30d"].iloc[0] == 0
        assert inactive["size"].iloc[0] == last["days_since_last_event"].isna().sum()


def test_centroids_are_in_the_features_own_units(rich: SegmentationModel, last: pd.DataFrame):
    centroids = rich.centroids_
    assert list(centroids.columns) == list(FEATURES)
    assert list(centroids.index) == sorted(rich.segment_ids_)
    assert (centroids >= 0).all().all()
    assert centroids[["never_active", "never_purchased"]].le(1).all().all()
    assert centroids["days_since_last_event"].max() <= rich.recency_cap_days
    # log-scale centres come back as money, within what users actually spent
    assert 0 < centroids["spend_30d"].max() <= last["spend_30d"].max()
    top = centroids["spend_30d"].idxmax()
    assert rich.z_centroids_.loc[top, "spend_30d"] > 1


def test_true_buyers_concentrate_in_spend_heavy_segments(
    model: SegmentationModel, rich: SegmentationModel, last: pd.DataFrame, user_types: pd.Series
):
    population = user_types.loc[last["user_id"]].to_numpy()
    for fitted in (model, rich):
        labels = segment_labels(fitted, last)
        segment_spend = segment_profiles(fitted, last).set_index("segment_id")["spend_30d"]
        # the average spend of the segment each user lands in, by true type
        by_type = labels["segment_id"].map(segment_spend).groupby(population).mean()
        assert by_type["buyer"] > 3 * by_type["browser"]
        assert by_type["buyer"] > by_type["regular"] > by_type["browser"]
        top = labels["segment_id"] == segment_spend.idxmax()
        assert (population[top] == "buyer").mean() > 1.5 * (population == "buyer").mean()
    # browsers (many views, few carts) are the bulk of the "window shoppers"
    labels = segment_labels(rich, last).assign(
        user_type=lambda f: user_types.loc[f["user_id"]].to_numpy()
    )
    shoppers = labels[labels["segment_name"].str.startswith("window shoppers")]
    assert len(shoppers) > 100
    assert (shoppers["user_type"] == "browser").mean() > 0.6


def test_names_are_unique_and_follow_the_profiles(rich: SegmentationModel, model):
    for fitted in (model, rich):
        names = list(fitted.segment_names_.values())
        assert sorted(fitted.segment_names_) == sorted(fitted.segment_ids_.tolist())
        assert len(set(names)) == len(names) == fitted.k_
    names = rich.segment_names_
    inactive = int(rich.centroids_["never_active"].idxmax())
    assert names[inactive] == "new / low activity"
    top = int(rich.centroids_["spend_30d"].idxmax())
    assert names[top] == "loyal high spenders"
    assert any(n.startswith("window shoppers") for n in names.values())


def test_coinciding_names_get_qualifiers():
    # three browsing segments (never bought, few carts), differing mostly in views
    centroids = pd.DataFrame(
        [[3, 60, v, 0.5, 0, 0, 6, 0, 0.02, 6, 0, 1] for v in (30.0, 40.0, 50.0)],
        columns=list(FEATURES),
        index=pd.Index([0, 1, 2], name="segment_id"),
    )
    population = pd.DataFrame(
        {name: np.linspace(0, 1, 5) for name in FEATURES}
        | {
            "views_30d": [0, 10, 20, 30, 40],
            "carts_30d": [0, 1, 2, 3, 4],
            "view_to_cart_rate_30d": [0, 0.1, 0.1, 0.2, 0.3],
            "purchases_30d": [0, 0, 1, 2, 3],
            "never_active": [1, 0, 0, 0, 0],
        }
    )
    reference = population_reference(population)
    names = segment_names(centroids, reference)
    assert len(set(names.values())) == 3
    assert names[0] == "window shoppers, fewer views"
    assert names[2] == "window shoppers, more views"
    assert names[1].startswith("window shoppers, ")


# ---- reproducible and stable ------------------------------------------------------------------


def test_same_data_and_seed_give_identical_segments(model: SegmentationModel, last):
    again = SegmentationModel().fit(last)
    np.testing.assert_array_equal(again.predict(last), model.predict(last))
    assert again.segment_names_ == model.segment_names_
    np.testing.assert_array_equal(model.predict(last), model.labels_)


def test_refit_with_previous_keeps_segment_ids(last: pd.DataFrame, day_before: pd.DataFrame):
    old = SegmentationModel(k_range=(6, 6)).fit(day_before)
    # another seed: K-Means numbers the same clusters differently, matching must undo that
    new = SegmentationModel(k_range=(6, 6), random_state=7).fit(last, previous=old)
    fresh = SegmentationModel(k_range=(6, 6), random_state=7).fit(last)
    old_labels, new_labels = segment_labels(old, day_before), segment_labels(new, last)
    assert label_agreement(old_labels, new_labels) > 0.9
    assert label_agreement(old_labels, segment_labels(fresh, last)) < 0.5  # ids did move
    assert label_agreement(old_labels, new_labels, method="ari") > 0.8
    assert sorted(new.segment_ids_) == sorted(old.segment_ids_)
    same_name = [old.segment_names_[i] == new.segment_names_[i] for i in new.segment_names_]
    assert sum(same_name) >= 5


def test_extra_segments_get_ids_never_used_before(last: pd.DataFrame, day_before: pd.DataFrame):
    four = SegmentationModel(k_range=(4, 4)).fit(day_before)
    five = SegmentationModel(k_range=(5, 5)).fit(last, previous=four)
    assert set(five.segment_ids_) == {0, 1, 2, 3, 4}
    three = SegmentationModel(k_range=(3, 3)).fit(last, previous=five)
    assert set(three.segment_ids_) < {0, 1, 2, 3, 4}
    # a segment retired by `three` is never handed to a new, different segment
    four_again = SegmentationModel(k_range=(4, 4)).fit(last, previous=three)
    assert 5 in set(four_again.segment_ids_)
    assert four_again.next_segment_id_ == 6


def test_previous_k_is_kept_unless_another_is_clearly_better(last: pd.DataFrame):
    previous = SegmentationModel(k_range=(5, 5)).fit(last)
    sticky = SegmentationModel(k_tolerance=1.0).fit(last, previous=previous)
    assert sticky.k_ == 5
    strict = SegmentationModel(k_tolerance=0.0).fit(last, previous=previous)
    assert strict.k_ == max(strict.silhouette_by_k_, key=strict.silhouette_by_k_.get)


# ---- outputs ----------------------------------------------------------------------------------


def test_segment_labels_fit_the_user_segment_feature_table(model: SegmentationModel, last):
    labels = segment_labels(model, last)
    table = FEATURE_TABLES["user_segment"]
    assert list(labels.columns) == ["user_id", "event_timestamp", *table.feature_names]
    assert len(labels) == len(last)
    assert labels["segment_id"].dtype == np.int64
    assert labels["event_timestamp"].dtype == last["event_timestamp"].dtype
    assert labels["user_id"].tolist() == last["user_id"].tolist()
    assert (labels["event_timestamp"] == last["event_timestamp"]).all()
    expected = labels["segment_id"].map(model.segment_names_)
    assert (labels["segment_name"] == expected).all()
    assert labels["segment_name"].map(type).eq(str).all()


def test_profiles_sum_to_the_population(rich: SegmentationModel, last: pd.DataFrame):
    profile = segment_profiles(rich, last)
    assert list(profile.columns[:4]) == ["segment_id", "segment_name", "size", "share"]
    assert profile["size"].sum() == len(last)
    assert profile["share"].sum() == pytest.approx(1.0)
    assert profile.set_index("segment_id")["size"].to_dict() == rich.sizes_.to_dict()
    # per-segment means of the raw features, weighted by size, give back the population mean
    weighted = (profile["spend_30d"] * profile["size"]).sum() / len(last)
    assert weighted == pytest.approx(last["spend_30d"].mean())


def test_profile_figure_shows_every_segment_by_name(rich: SegmentationModel, tmp_path: Path):
    figure = segment_profile_figure(rich)
    axes = figure.axes[0]
    rows = [t.get_text() for t in axes.get_yticklabels()]
    assert len(rows) == rich.k_
    for name in rich.segment_names_.values():
        assert any(name in row for row in rows)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_label_agreement_counts_users_in_common():
    a = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "segment_id": [0, 1, 1, 2]})
    b = pd.DataFrame({"user_id": ["u2", "u3", "u4", "u9"], "segment_id": [1, 1, 0, 5]})
    assert label_agreement(a, b) == pytest.approx(2 / 3)
    renamed = a.assign(segment_id=a["segment_id"].map({0: 7, 1: 8, 2: 9}))
    assert label_agreement(a, renamed) == 0.0
    assert label_agreement(a, renamed, method="ari") == pytest.approx(1.0)
    with pytest.raises(SegmentationError, match="share no user_id"):
        label_agreement(a, b.assign(user_id=["x", "y", "z", "w"]))
    with pytest.raises(SegmentationError, match="method='rand'"):
        label_agreement(a, b, method="rand")


# ---- contract and errors ----------------------------------------------------------------------


def test_follows_the_scikit_learn_contract(last: pd.DataFrame):
    model = SegmentationModel(k_range=(3, 4), n_init=2)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(last)
    assert model.fit(last.head(300)) is model
    assert model.fit_predict(last.head(300)).shape == (300,)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k_range": (1, 4)}, "k_range=\\(1, 4\\)"),
        ({"k_range": (5, 3)}, "k_range=\\(5, 3\\)"),
        ({"k_range": "many"}, "k_range='many'"),
        ({"n_init": 0}, "n_init=0"),
        ({"silhouette_sample": 5}, "silhouette_sample=5"),
        ({"recency_cap_days": 0}, "recency_cap_days=0"),
        ({"n_threads": 0}, "n_threads=0"),
    ],
)
def test_bad_settings_are_named(params: dict, match: str, last: pd.DataFrame):
    with pytest.raises(ValueError, match=match):
        SegmentationModel(**params).fit(last.head(50))


def test_bad_input_is_named(last: pd.DataFrame, model: SegmentationModel):
    with pytest.raises(ValueError, match="spend_30d"):
        SegmentationModel().fit(last.drop(columns=["spend_30d"]))
    broken = last.head(50).copy()
    broken.loc[3, "views_30d"] = np.nan
    with pytest.raises(ValueError, match="'views_30d' has 1 null"):
        model.predict(broken)
    with pytest.raises(ValueError, match="8 user rows cannot make"):
        SegmentationModel().fit(last.head(8))
    with pytest.raises(ValueError, match="previous=str"):
        SegmentationModel().fit(last, previous="yesterday")


def test_a_shop_without_buyers_still_gets_named_segments(last: pd.DataFrame):
    nobody_bought = last.assign(
        purchases_30d=0, spend_30d=0.0, avg_order_value_30d=0.0, days_since_last_purchase=np.nan
    )
    model = SegmentationModel(k_range=(4, 4)).fit(nobody_bought)
    names = list(model.segment_names_.values())
    assert len(set(names)) == 4
    assert not any("buyer" in n or "spender" in n or "customer" in n for n in names)
