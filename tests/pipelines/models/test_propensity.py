"""The propensity model on the quickstart shop, scored against the shop's true probabilities."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.data.generator import ShopSpec
from pipelines.models.classification import roc_auc
from pipelines.models.propensity import (
    CANDIDATES,
    SKOPS_TRUSTED_TYPES,
    fewest_snapshot_days,
    fit_propensity,
    fit_propensity_on_events,
    heuristic_scores,
    label_complete_days,
    oracle_auc,
    propensity_frame,
    purchase_labels,
    split_fits,
    temporal_split,
    unsupported_features,
    with_oracle,
)
from pipelines.models.testing import synthetic_shop

UTC = "UTC"
EMPTY_COLUMNS = ("segment_id", "segment_name", "rt_views_1h", "rt_carts_1h")
# small enough for a shared 2-core machine; one thread avoids OpenMP contention there
FAST = {"max_candidates": 2, "importance_repeats": 1, "importance_rows": 2000, "n_threads": 1}


def feast_like(frame: pd.DataFrame) -> pd.DataFrame:
    """What the Feast training set of propensity_v1 returns: nullable ints, None strings, and the
    segment / real-time columns entirely null before segmentation runs and serving pushes."""
    ints = [c for c in frame.columns if frame[c].dtype == "int64" and c != "label"]
    null_int = pd.array([None] * len(frame), dtype="Int64")
    return frame.astype(dict.fromkeys(ints, "Int64")).assign(
        segment_id=null_int,
        segment_name=pd.Series([None] * len(frame), dtype=object, index=frame.index),
        rt_views_1h=null_int,
        rt_carts_1h=null_int,
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return synthetic_shop(tmp_path_factory.mktemp("shop"), ShopSpec())


@pytest.fixture(scope="module")
def truth(shop) -> pd.DataFrame:
    return pd.read_parquet(shop.truth_dir / "purchase_probability_7d.parquet")


@pytest.fixture(scope="module")
def labels(shop) -> pd.DataFrame:
    return purchase_labels(
        shop.events, shop.users, label_complete_days(shop.days[-1], shop.days[0])
    )


@pytest.fixture(scope="module")
def frame(shop, labels) -> pd.DataFrame:
    joined = labels.merge(
        shop.user_activity, on=["user_id", "event_timestamp"], how="left", validate="one_to_one"
    )
    return feast_like(joined)


@pytest.fixture(scope="module")
def result(frame, truth):
    return fit_propensity(frame, truth=truth, time_budget_s=60, **FAST)


# ---- labels -----------------------------------------------------------------------------------


def test_label_complete_days_stop_a_horizon_before_the_data_ends():
    days = label_complete_days(date(2026, 1, 30), date(2026, 1, 1))
    assert days[0] == date(2026, 1, 1)
    assert days[-1] == date(2026, 1, 23)  # its label reads Jan 24 .. Jan 30, the last data day
    assert len(days) == 23
    assert label_complete_days(date(2026, 1, 5), date(2026, 1, 1)) == []
    with pytest.raises(ValueError, match="horizon_days=0"):
        label_complete_days(date(2026, 1, 30), date(2026, 1, 1), horizon_days=0)


def test_purchase_labels_by_hand():
    end = pd.Timestamp("2026-01-06", tz=UTC)  # end of snapshot day Jan 5
    users = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "late", "a"],  # a's later row wins: still one row
            "signup_ts": pd.to_datetime(
                [*["2025-06-01"] * 3, "2026-01-05T23:00", "2026-01-06", "2025-07-01"],
                utc=True,
                format="ISO8601",
            ),
        }
    )
    events = pd.DataFrame(
        {
            "user_id": ["a", "b", "b", "c", "d", "late"],
            "event_type": ["purchase", "purchase", "view", "purchase", "add_to_cart", "purchase"],
            "event_ts": [
                end,  # exactly at the start of the horizon: counts
                end + pd.Timedelta(days=7),  # exactly at its end: the next window's
                end + pd.Timedelta(days=1),  # a view is not a purchase
                end - pd.Timedelta(seconds=1),  # before the snapshot: a feature, not a label
                end + pd.Timedelta(days=2),
                end + pd.Timedelta(days=1),
            ],
        }
    )
    labels = purchase_labels(events, users, [date(2026, 1, 5)])
    # "late" signed up at the end of the day: it has no feature row for Jan 5, so no label row
    assert labels["user_id"].tolist() == ["a", "b", "c", "d"]
    assert labels["label"].tolist() == [1, 0, 0, 0]
    assert (labels["event_timestamp"] == end).all()
    assert str(labels["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert labels["label"].dtype == np.int64

    # the next day's snapshot sees b's purchase (Jan 13 00:00 < Jan 14 00:00) and "late"
    two = purchase_labels(events, users, [date(2026, 1, 6), date(2026, 1, 5)])
    day6 = two[two["event_timestamp"] == end + pd.Timedelta(days=1)].set_index("user_id")
    assert day6["label"].to_dict() == {"a": 0, "b": 1, "c": 0, "d": 0, "late": 1}
    assert two["event_timestamp"].is_monotonic_increasing


def test_purchase_labels_refuse_bad_arguments():
    users = pd.DataFrame({"user_id": ["a"], "signup_ts": pd.to_datetime(["2025-01-01"], utc=True)})
    events = pd.DataFrame({"user_id": [], "event_type": [], "event_ts": []})
    with pytest.raises(ValueError, match="snapshot_days is empty"):
        purchase_labels(events, users, [])
    with pytest.raises(ValueError, match="horizon_days=-1"):
        purchase_labels(events, users, [date(2026, 1, 1)], horizon_days=-1)
    with pytest.raises(ValueError, match=r"events lacks column\(s\) \['event_ts'\]"):
        purchase_labels(events.drop(columns="event_ts"), users, [date(2026, 1, 1)])


def test_labels_cover_exactly_the_feature_rows_and_the_truths_users(shop, labels, truth):
    keys = ["user_id", "event_timestamp"]
    snapshots = set(labels["event_timestamp"])
    activity = shop.user_activity[shop.user_activity["event_timestamp"].isin(snapshots)]
    assert len(labels) == len(activity)
    assert labels[keys].merge(activity[keys], on=keys).shape[0] == len(labels)
    true = truth.rename(columns={"snapshot_ts": "event_timestamp"})
    true = true[true["event_timestamp"].isin(snapshots)]
    assert labels[keys].merge(true[keys], on=keys).shape[0] == len(labels) == len(true)
    # ~20% of users buy within a week on the quickstart shop
    assert 0.1 < labels["label"].mean() < 0.35


# ---- split ------------------------------------------------------------------------------------


def test_split_is_temporal_with_a_label_horizon_before_valid(frame):
    split = temporal_split(frame, valid_days=3, test_days=3)
    train, valid, test = (s["event_timestamp"] for s in (split.train, split.valid, split.test))
    assert train.max() < valid.min() <= valid.max() < test.min()
    # every training label window [t, t + 7d) closes before the first valid snapshot
    assert train.max() + pd.Timedelta(days=7) <= valid.min()
    # the latest snapshots are test
    assert test.max() == frame["event_timestamp"].max()
    assert test.nunique() == 3 and valid.nunique() == 3
    assert split.dates.test == (test.min(), test.max())
    assert split.dates.to_dict()["split_gap_days"] == 7


def test_split_without_gaps_keeps_every_row_once(frame):
    split = temporal_split(frame, valid_days=2, test_days=2, gap_days=0)
    assert len(split.train) + len(split.valid) + len(split.test) == len(frame)
    assert split.train["event_timestamp"].max() < split.valid["event_timestamp"].min()


def test_split_refuses_what_the_days_cannot_hold(frame):
    with pytest.raises(ValueError, match="cannot hold"):
        temporal_split(frame, valid_days=10, test_days=10)
    with pytest.raises(ValueError, match=r"valid_fraction=1\.5"):
        temporal_split(frame, valid_fraction=1.5)


def test_split_fits_says_what_temporal_split_will_do_for_a_window_of_snapshot_days():
    # the train spec asks this before it reads a window: a window the split cannot cut is a
    # skipped retrain (NotEnoughHistory), not a failed train DAG
    start = date(2026, 3, 1)
    verdicts = {n: split_fits([start + timedelta(days=i) for i in range(n)]) for n in range(13)}
    assert [n for n, fits in verdicts.items() if fits] == [9, 11, 12]  # 10 needs 2 valid + 2 test
    assert fewest_snapshot_days() == 11
    assert fewest_snapshot_days(gap_days=0) == 3
    assert not split_fits([])


# ---- the fitted model -------------------------------------------------------------------------


def test_model_reaches_what_the_features_allow(result, frame, truth):
    """The true probabilities rank better than anything the features can tell; the fair bar is
    a regressor fitted to those true probabilities themselves from the same training rows: the
    best ranking these features can give. The model must get nearly all of it."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    from pipelines.models.propensity import _preparation, feature_kinds

    truth_keyed = truth.rename(columns={"snapshot_ts": "event_timestamp"})
    stamps = frame["event_timestamp"]
    first, last = result.split.train
    train = frame[(stamps >= first) & (stamps <= last)].merge(
        truth_keyed, on=["user_id", "event_timestamp"]
    )
    test = result.test_predictions.merge(
        frame, on=["user_id", "event_timestamp", "label"], how="left"
    )
    kinds = feature_kinds(train, list(result.feature_columns))
    prepare = _preparation(kinds, "trees").fit(train)
    with threadpool_limits(1):
        ceiling = HistGradientBoostingRegressor(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=50, random_state=0
        ).fit(prepare.transform(train), train["p_purchase_7d"])
        predicted = ceiling.predict(prepare.transform(test))
    ceiling_auc = roc_auc(test["label"], np.clip(predicted, 0, 1))
    model_auc = result.test_metrics["roc_auc"]
    assert model_auc >= 0.97 * ceiling_auc, (model_auc, ceiling_auc)


# The ceiling of the user_activity features on the quickstart shop's first month: a regressor
# fitted to the true probabilities themselves (test_model_reaches_what_the_features_allow)
# reaches 0.7225 = 0.901 x oracle (0.8015) on this split; 0.9 x oracle is therefore unreachable
# for any honest model of these features (only a split without the label-horizon gap passes,
# through leakage). The bound is 97% of that ceiling: 0.97 x 0.901 = 0.874 x oracle.
FEATURE_CEILING_VS_ORACLE = 0.901
SHARE_OF_CEILING = 0.97


def test_test_auc_reaches_the_features_ceiling_share_of_the_oracle_on_the_first_month(result):
    """Not 0.9 x oracle (the former xfail): the features themselves cap this split at 0.901 x
    oracle; the model must get 97% of that, 0.874 x oracle (it reaches 0.892, see docs/)."""
    metrics = result.metrics()
    bound = SHARE_OF_CEILING * FEATURE_CEILING_VS_ORACLE
    assert metrics["test_roc_auc"] >= bound * metrics["oracle_test_roc_auc"], metrics


def test_test_auc_reaches_nine_tenths_of_the_oracle_once_windows_are_full(tmp_path_factory):
    """The quickstart shop as the platform trains on it after its live weeks (issue 8: 30 days
    of history + 3 weeks): 2,000 users, 500 items, 51 days, the last 30 the training window, so
    every snapshot's 30-day features cover 30 days. Here the bound holds (0.92 x oracle)."""
    shop = synthetic_shop(tmp_path_factory.mktemp("shop51"), ShopSpec(days=51))
    truth = pd.read_parquet(shop.truth_dir / "purchase_probability_7d.parquet")
    days = label_complete_days(shop.days[-1], shop.days[-30])
    labels = purchase_labels(shop.events, shop.users, days)
    frame = feast_like(
        labels.merge(shop.user_activity, on=["user_id", "event_timestamp"], how="left")
    )
    metrics = fit_propensity(frame, truth=truth, time_budget_s=20, **FAST).metrics()
    assert metrics["test_roc_auc"] >= 0.9 * metrics["oracle_test_roc_auc"], metrics
    assert metrics["test_roc_auc"] >= metrics["baseline_test_roc_auc"] - 0.01


def test_model_beats_or_matches_the_logistic_baseline(result):
    metrics = result.metrics()
    assert metrics["test_roc_auc"] >= metrics["baseline_test_roc_auc"] - 0.01
    # the oracle is better than both: it knows every user's true probability
    assert metrics["oracle_test_roc_auc"] > metrics["test_roc_auc"]
    assert 0.5 < metrics["test_roc_auc_vs_oracle"] < 1.0


def test_probabilities_are_calibrated_on_test(result):
    metrics = result.metrics()
    assert metrics["test_ece"] < 0.03
    assert abs(metrics["test_mean_score"] - metrics["test_base_rate"]) < 0.03
    assert metrics["test_brier"] < metrics["baseline_test_brier"]
    # targeting the top tenth by score finds well over twice the buyers of random targeting
    assert metrics["test_lift_top_decile"] > 2.0


def test_metrics_are_flat_finite_floats_with_the_expected_names(result):
    metrics = result.metrics()
    for name in (
        "test_roc_auc",
        "test_pr_auc",
        "test_brier",
        "test_ece",
        "test_lift_top_decile",
        "baseline_test_roc_auc",
        "baseline_test_brier",
        "valid_roc_auc",
        "oracle_test_roc_auc",
        "test_roc_auc_vs_oracle",
        "train_rows",
    ):
        assert name in metrics
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    tables = result.tables()
    assert set(tables) == {"importance.csv", "candidates.csv", "test_predictions.parquet"}
    assert tables["candidates.csv"]["params"].map(type).eq(str).all()  # csv-safe
    params = result.log_params()
    assert params["candidate"] in CANDIDATES
    assert params["calibration"] in ("sigmoid", "isotonic")
    assert all(isinstance(v, str | int | float | bool) for v in params.values())


def test_candidates_and_importance_are_reported(result):
    table = result.candidates
    assert table["candidate"].tolist()[0] == "logistic"
    assert set(table["candidate"]) == set(CANDIDATES)
    assert table["chosen"].sum() == 1
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["valid_roc_auc"] == table["valid_roc_auc"].max()
    assert not result.search_truncated

    importance = result.importance
    assert list(importance.columns) == ["feature", "importance_mean", "importance_std"]
    assert set(importance["feature"]) == set(result.feature_columns)
    assert importance["importance_mean"].is_monotonic_decreasing
    # what drives a purchase forecast is the purchase history
    assert importance["feature"].iloc[0].startswith("purchases_")
    assert importance["importance_mean"].iloc[0] > 0.02


def test_test_predictions_are_the_latest_snapshots_with_labels_and_scores(result, frame):
    predictions = result.test_predictions
    assert {"user_id", "event_timestamp", "label", "score", "baseline_score"} <= set(predictions)
    assert len(predictions) == result.rows["test"]
    assert predictions["event_timestamp"].min() == result.split.test[0]
    assert predictions["event_timestamp"].max() == frame["event_timestamp"].max()
    assert predictions["score"].between(0, 1).all()
    assert roc_auc(predictions["label"], predictions["score"]) == pytest.approx(
        result.test_metrics["roc_auc"]
    )


def test_empty_columns_and_none_strings_are_handled(result, frame):
    assert set(result.empty_columns) == set(EMPTY_COLUMNS)
    assert not set(EMPTY_COLUMNS) & set(result.feature_columns)
    assert {"top_category_1", "top_category_2", "top_category_3"} <= set(result.feature_columns)

    rows = frame.tail(200).copy()
    # serving later: segments exist, counters arrive, a category never seen, values missing
    rows["segment_id"] = pd.array([3] * len(rows), dtype="Int64")
    rows["segment_name"] = "bargain hunters"
    rows["rt_views_1h"] = pd.array([5] * len(rows), dtype="Int64")
    rows["top_category_1"] = ["not-a-category", None] * (len(rows) // 2)
    rows.loc[rows.index[:50], "views_30d"] = pd.NA
    rows.loc[rows.index[:50], "days_since_last_purchase"] = np.nan
    scores = result.model.predict_proba(rows)[:, 1]
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    # an online row with nothing stored yet: every feature None, numbers as objects too
    blank = pd.DataFrame({c: [None, None] for c in result.feature_columns}, dtype=object)
    for model in (result.model, result.baseline):
        blank_scores = model.predict_proba(blank)[:, 1]
        assert np.isfinite(blank_scores).all()

    # feature columns only, in another order, as plain floats / objects: same scores
    columns = list(reversed(result.feature_columns))
    as_floats = {c: "float64" for c in columns if str(rows[c].dtype) == "Int64"}
    shuffled = rows[columns].astype(as_floats)
    assert result.model.predict_proba(shuffled)[:, 1] == pytest.approx(scores)


def test_model_is_one_pipeline_that_pickles(result, frame):
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    assert isinstance(result.model, Pipeline)
    assert [name for name, _ in result.model.steps] == ["prepare", "classify"]
    check_is_fitted(result.model)
    rows = frame.head(100)
    restored = pickle.loads(pickle.dumps(result.model))
    assert restored.predict_proba(rows)[:, 1] == pytest.approx(
        result.model.predict_proba(rows)[:, 1]
    )


@pytest.fixture(scope="module")
def small_frame(frame) -> pd.DataFrame:
    """A quarter of the users: cheap enough to fit several times."""
    users = sorted(frame["user_id"].unique())[::4]
    return frame[frame["user_id"].isin(users)]


@pytest.fixture(scope="module")
def boosted(small_frame):
    """Boosting only, with a budget that runs out after the first setting."""
    return fit_propensity(
        small_frame,
        candidates=["hist_gradient_boosting"],
        time_budget_s=1e-6,
        **{**FAST, "max_candidates": 5, "importance_repeats": 0},
    )


def test_a_time_budget_cuts_the_search_and_says_so(boosted):
    assert boosted.candidates["candidate"].tolist() == ["hist_gradient_boosting"]
    assert boosted.search_truncated
    assert boosted.log_params()["search_truncated"] is True
    assert boosted.importance.empty  # importance_repeats=0 skips it
    # the baseline is reported even when it is not searched
    assert math.isfinite(boosted.metrics()["baseline_test_roc_auc"])


@pytest.mark.parametrize("kind", ["result", "boosted"])
def test_every_kind_of_model_loads_with_skops_trusting_the_listed_types(kind, request, frame):
    import skops.io as sio

    from pipelines.models.runs import skops_trusted_types

    model = request.getfixturevalue(kind).model
    payload = sio.dumps(model)
    untrusted = set(sio.get_untrusted_types(data=payload))
    assert untrusted <= set(SKOPS_TRUSTED_TYPES), untrusted - set(SKOPS_TRUSTED_TYPES)
    # the check run before logging to MLflow accepts every kind too (boosting keeps a partial)
    assert set(skops_trusted_types(model)) == untrusted
    loaded = sio.loads(payload, trusted=list(untrusted))
    rows = frame.head(100)
    assert loaded.predict_proba(rows)[:, 1] == pytest.approx(model.predict_proba(rows)[:, 1])


def test_fixed_seed_gives_identical_metrics(small_frame):
    rows = small_frame[small_frame["user_id"].isin(small_frame["user_id"].unique()[::2])]
    settings = {**FAST, "max_candidates": 1, "importance_rows": 1000, "seed": 7}
    first = fit_propensity(rows, **settings)
    second = fit_propensity(rows, **settings)

    def untimed(metrics: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in metrics.items() if k != "fit_s"}

    assert untimed(first.metrics()) == untimed(second.metrics())
    assert first.params == second.params
    pd.testing.assert_frame_equal(first.test_predictions, second.test_predictions)
    pd.testing.assert_frame_equal(first.importance, second.importance)


def test_figures_compare_model_baseline_and_oracle(result):
    import matplotlib.pyplot as plt

    figures = result.figures()
    assert set(figures) == {"roc.png", "precision_recall.png", "calibration.png", "gains.png"}
    legend = [t.get_text() for t in figures["roc.png"].axes[0].get_legend().get_texts()]
    assert [t.split(" ")[0] for t in legend[:3]] == ["model", "baseline", "oracle"]
    for figure in figures.values():
        plt.close(figure)


# ---- the oracle -------------------------------------------------------------------------------


def test_oracle_auc_by_hand():
    stamp = pd.Timestamp("2026-01-10", tz=UTC)
    predictions = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "event_timestamp": [stamp] * 4,
            "label": [1, 0, 1, 0],
            "score": [0.5] * 4,
        }
    )
    truth = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "e"],
            "snapshot_ts": [stamp] * 5,
            "p_purchase_7d": [0.9, 0.1, 0.2, 0.3, 0.99],
        }
    )
    # positives .9, .2 vs negatives .1, .3: three pairs of four ranked right
    assert oracle_auc(predictions, truth) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no p_purchase_7d for 1 of 4"):
        oracle_auc(predictions, truth[truth["user_id"] != "c"])
    with pytest.raises(ValueError, match="snapshot_ts"):
        oracle_auc(predictions, truth.drop(columns="snapshot_ts"))


def test_with_oracle_adds_ratios_that_match_oracle_auc(result, truth):
    plain = replace(result, oracle_metrics={})
    assert "oracle_test_roc_auc" not in plain.metrics()
    again = with_oracle(plain, truth)
    assert again.oracle_metrics["oracle_test_roc_auc"] == pytest.approx(
        oracle_auc(result.test_predictions, truth)
    )
    assert again.metrics()["test_roc_auc_vs_oracle"] == pytest.approx(
        result.test_metrics["roc_auc"] / oracle_auc(result.test_predictions, truth)
    )


# ---- refusals ---------------------------------------------------------------------------------


def test_fit_refuses_frames_it_cannot_learn_from(small_frame):
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['label'\]"):
        fit_propensity(small_frame.drop(columns="label"))
    with pytest.raises(ValueError, match="must be 0/1"):
        fit_propensity(small_frame.assign(label=2))
    with pytest.raises(ValueError, match="must not include keys or the label"):
        fit_propensity(small_frame, feature_columns=["views_7d", "label"])
    with pytest.raises(ValueError, match="holds times"):
        fit_propensity(small_frame.assign(seen=small_frame["event_timestamp"]))
    with pytest.raises(ValueError, match="candidates="):
        fit_propensity(small_frame, candidates=["random_forest"])
    with pytest.raises(ValueError, match="every feature column is empty"):
        fit_propensity(small_frame, feature_columns=list(EMPTY_COLUMNS))
    with pytest.raises(ValueError, match="single label value"):
        fit_propensity(small_frame.assign(label=0))


# ---- logs with purchases only, heuristics, the horizon setting --------------------------------

VIEW_AND_CART_COLUMNS = {
    "views_1d",
    "views_7d",
    "views_30d",
    "view_to_cart_rate_30d",
    "avg_view_price_1d",
    "avg_view_price_7d",
    "carts_1d",
    "carts_7d",
    "carts_30d",
    "cart_to_purchase_rate_30d",
}


@pytest.fixture(scope="module")
def purchases_only(shop, truth):
    """The quickstart shop as an order-line export: its purchases, nothing else."""
    events = shop.events[shop.events["event_type"].astype(str) == "purchase"]
    return fit_propensity_on_events(
        events, shop.users, shop.items, truth=truth, time_budget_s=30, **FAST
    )


def test_heuristic_scores_by_hand():
    frame = pd.DataFrame(
        {
            "days_since_last_purchase": [1.0, np.nan, 10.0, 3.0],
            "purchases_30d": pd.array([2, 0, None, 5], dtype="Int64"),
        }
    )
    scores = heuristic_scores(frame)
    # recency: most recent first, never bought last; frequency: null counts as 0 (a tie)
    assert np.argsort(-scores["recency"]).tolist() == [0, 3, 2, 1]
    assert scores["frequency"].tolist() == pytest.approx([0.75, 0.375, 0.375, 1.0])
    assert heuristic_scores(frame.drop(columns="purchases_30d")).keys() == {"recency"}


def test_heuristics_are_scored_on_the_model_test_rows(result, frame):
    predictions = result.test_predictions
    y = predictions["label"]
    days = predictions.merge(frame, on=["user_id", "event_timestamp", "label"], how="left")
    metrics = result.metrics()
    assert len(days) == len(predictions)
    by_hand = roc_auc(y, (-days["days_since_last_purchase"].fillna(1e9)).rank(pct=True))
    assert metrics["recency_heuristic_test_roc_auc"] == pytest.approx(by_hand)
    by_hand = roc_auc(y, days["purchases_30d"].astype(float).fillna(0).rank(pct=True))
    assert metrics["frequency_heuristic_test_roc_auc"] == pytest.approx(by_hand)
    assert metrics["best_heuristic_test_roc_auc"] == max(
        metrics["recency_heuristic_test_roc_auc"], metrics["frequency_heuristic_test_roc_auc"]
    )
    assert 0.6 < metrics["recency_heuristic_test_roc_auc"] < metrics["test_roc_auc"]


@pytest.mark.parametrize("kind", ["result", "purchases_only"])
def test_model_beats_the_recency_and_frequency_rules(kind, request):
    metrics = request.getfixturevalue(kind).metrics()
    assert metrics["test_roc_auc"] > metrics["recency_heuristic_test_roc_auc"], metrics
    assert metrics["test_roc_auc"] > metrics["frequency_heuristic_test_roc_auc"], metrics
    assert metrics["test_roc_auc_minus_best_heuristic"] > 0


def test_a_log_without_views_or_carts_drops_their_features_and_says_so(purchases_only, result):
    assert set(purchases_only.absent_event_types) == {"view", "add_to_cart"}
    assert set(purchases_only.unsupported_columns) >= VIEW_AND_CART_COLUMNS
    assert purchases_only.unsupported_columns["views_30d"] == "no view events in training"
    assert not VIEW_AND_CART_COLUMNS & set(purchases_only.feature_columns)
    assert {"purchases_30d", "days_since_last_purchase"} <= set(purchases_only.feature_columns)
    params = purchases_only.log_params()  # what the MLflow run records
    assert "views_30d" in params["unsupported_feature_columns"].split(",")
    assert params["absent_event_types"] == "view,add_to_cart"
    assert purchases_only.metrics()["unsupported_features"] >= len(VIEW_AND_CART_COLUMNS)
    # the full shop has views and carts: nothing of theirs is dropped
    assert result.absent_event_types == ()
    assert not VIEW_AND_CART_COLUMNS & set(result.unsupported_columns)
    assert result.log_params()["absent_event_types"] == "-"


def test_unsupported_features_are_judged_on_the_rows_given():
    rows = pd.DataFrame(
        {
            "views_30d": [0, 0, 0],
            "carts_30d": [0, 1, 0],
            "cart_to_purchase_rate_30d": [0.0, 0.5, 0.0],
            "device_share_web_30d": [0.0, 0.0, 0.0],
            "days_since_last_purchase": [np.nan, np.nan, 2.0],
        }
    )
    found = unsupported_features(rows, list(rows.columns))
    assert found == {
        "views_30d": "no view events in training",
        "device_share_web_30d": "constant 0.0 in training",
    }


def test_the_horizon_comes_from_the_settings(shop, monkeypatch):
    from pipelines.config import Settings

    assert Settings().propensity_horizon_days == 7
    monkeypatch.setenv("PERSONALIZE_PROPENSITY_HORIZON_DAYS", "3")
    horizon = Settings().propensity_horizon_days
    assert horizon == 3
    users = sorted(shop.users["user_id"])[::8]
    events = shop.events[shop.events["user_id"].isin(users)]
    three = propensity_frame(events, shop.users, shop.items, horizon_days=horizon)
    seven = propensity_frame(events, shop.users, shop.items)
    # snapshots stop a horizon before the data ends, and fewer users buy within 3 days
    assert three["event_timestamp"].max() - seven["event_timestamp"].max() == pd.Timedelta(days=4)
    assert three["label"].mean() < seven["label"].mean()
