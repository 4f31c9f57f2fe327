"""Purchase propensity: the probability that a user buys within the next N days.

N is ``Settings.propensity_horizon_days`` (env ``PERSONALIZE_PROPENSITY_HORIZON_DAYS``, default
7); the pure functions here take it as ``horizon_days`` and the train and monitor pipelines pass
the setting.

Pure functions from frames to a fitted model and its evaluation; no MLflow, Feast or Airflow here
(the train DAG reads the Feast training set, calls :func:`fit_propensity` and logs what it returns).

* :func:`purchase_labels` -- one row per (user known at the end of day d, d), ``label`` = 1 if the
  user purchases in ``[end of d, end of d + horizon)``, stamped ``event_timestamp`` = end of d, so
  a point-in-time join gives the features known when the prediction would have been made.
* :func:`temporal_split` -- train, a gap of one label horizon, valid, test (the latest snapshots):
  no training label overlaps a valid or test label in time.
* :func:`fit_propensity` -- a plain logistic-regression baseline, sparse (L1) logistic regressions
  on log counts and a small, time-bounded random search over ``HistGradientBoostingClassifier``
  (early stopping on valid); the best on valid ROC AUC is calibrated on valid (sigmoid or
  isotonic, chosen by out-of-fold Brier score) and evaluated once on test, beside the baseline,
  with permutation importance.
* :func:`unsupported_features` -- features a log cannot support (no views or carts in training),
  left out and recorded; :func:`heuristic_scores` -- the RFM-recency and purchase-frequency rules
  scored beside the model on the same test rows.
* :func:`fit_propensity_on_events` -- all of it from an events frame (:func:`propensity_frame`).
* :func:`oracle_auc` / :func:`with_oracle` -- on synthetic data the true probabilities are known:
  how much of the best achievable ranking the model reaches.

The fitted model is one scikit-learn ``Pipeline``: ``prepare`` (a ``ColumnTransformer`` that takes
the raw Feast frame -- nullable ints, NaN, ``None`` strings; columns it does not use are ignored)
then ``classify`` (``CalibratedClassifierCV`` around the frozen classifier). Only scikit-learn
classes and numpy ufuncs, so it pickles, and skops loads it after trusting
:data:`SKOPS_TRUSTED_TYPES`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.config import Settings
from pipelines.days import epoch_micros, epoch_micros_array
from pipelines.features.compute import day_end
from pipelines.features.schema import TIMESTAMP

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from sklearn.pipeline import Pipeline

USER_ID = "user_id"
LABEL = "label"
KEY_COLUMNS = (USER_ID, TIMESTAMP)
# one definition of the label horizon: the settings' default (PERSONALIZE_PROPENSITY_HORIZON_DAYS)
DEFAULT_HORIZON_DAYS: int = Settings.model_fields["propensity_horizon_days"].default
CALIBRATION_METHODS = ("sigmoid", "isotonic")
CANDIDATES = ("logistic", "sparse_logistic", "hist_gradient_boosting")
# L1 strengths tried (smaller keeps fewer features); weaker ones kept ~all 30 features, scored
# no better on valid and cost the most (liblinear: 5 s on 100k rows vs 1-2 s for these)
SPARSE_LOGISTIC_C = (0.003, 0.01)
MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 categories per feature

# Types inside a fitted model that skops does not trust by default -- pass them as
# ``skops_trusted_types`` to ``mlflow.sklearn.log_model`` / ``skops.io.load`` (a test dumps each
# kind of model this module can return and checks that this list covers it).
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "functools.partial",  # HistGradientBoosting's categorical preprocessor: partial(check_array)
    "numpy.dtype",  # SimpleImputer's fitted dtype (logistic candidates)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)


# ---- labels -----------------------------------------------------------------------------------


def label_complete_days(
    last_data_day: date, first_day: date, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> list[date]:
    """Snapshot days from ``first_day`` whose whole label horizon lies inside the data.

    The label of day d looks at ``[end of d, end of d + horizon)``, i.e. days d+1 .. d+horizon,
    so d is complete when ``d + horizon <= last_data_day``. A later snapshot would count users
    who buy after the data ends as non-buyers: labels that look like lost customers but are
    only missing data.
    """
    _check_horizon(horizon_days)
    last = last_data_day - timedelta(days=horizon_days)
    return [first_day + timedelta(days=i) for i in range((last - first_day).days + 1)]


def purchase_labels(
    events: pd.DataFrame,
    users: pd.DataFrame,
    snapshot_days: Iterable[date],
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """``[user_id, event_timestamp, label]``: did each known user buy within the horizon?

    One row per user signed up before the end of each snapshot day d -- the users that have a
    ``user_activity`` row for d (the last row per ``user_id`` of ``users`` wins) -- stamped
    ``event_timestamp`` = end of d (``datetime64[us, UTC]``), ``label`` = 1 if the user has a
    ``purchase`` event in ``[end of d, end of d + horizon_days)``. Pass only days whose horizon
    the events cover (:func:`label_complete_days`): no purchase and no data look the same here.
    Rows are ordered by time, then user. The frame is the ``entity_df`` of a Feast training set.
    """
    _check_horizon(horizon_days)
    days = sorted(set(snapshot_days))
    if not days:
        raise ValueError("snapshot_days is empty: pass at least one day to label")
    for frame, name, columns in (
        (events, "events", ("user_id", "event_type", "event_ts")),
        (users, "users", ("user_id", "signup_ts")),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")

    known = users.drop_duplicates("user_id", keep="last")
    user_ids = known["user_id"].astype(str).to_numpy(dtype=object)
    # no sign-up time: not known yet (as for user_activity, where NaT < end is False)
    signup_us = np.where(
        known["signup_ts"].isna().to_numpy(),
        np.iinfo(np.int64).max,
        epoch_micros_array(known["signup_ts"]),
    )
    order = np.argsort(user_ids, kind="stable")
    user_ids, signup_us = user_ids[order], signup_us[order]

    bought = events[events["event_type"].astype(str).to_numpy() == "purchase"]
    # every purchase as the position of its buyer among the known users (-1: unknown buyer);
    # integer positions keep this linear -- np.isin on object arrays is quadratic in practice
    buyer = pd.Index(user_ids).get_indexer(bought["user_id"].astype(str).to_numpy(dtype=object))
    bought_us = epoch_micros_array(bought["event_ts"])
    horizon_us = horizon_days * 86_400_000_000

    parts = []
    for day in days:
        end_us = epoch_micros(day_end(day))
        member = signup_us < end_us
        in_window = (bought_us >= end_us) & (bought_us < end_us + horizon_us) & (buyer >= 0)
        bought_in_window = np.zeros(len(user_ids), dtype=bool)
        bought_in_window[buyer[in_window]] = True
        stamps = np.full(int(member.sum()), end_us, dtype=np.int64).view("datetime64[us]")
        parts.append(
            pd.DataFrame(
                {
                    USER_ID: user_ids[member],
                    TIMESTAMP: pd.DatetimeIndex(stamps).tz_localize("UTC"),
                    LABEL: bought_in_window[member].astype(np.int64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _check_horizon(horizon_days: int) -> None:
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r}: expected a whole number of days >= 1")


# ---- split ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitDates:
    """First and last snapshot (``event_timestamp``) of each part, and the gaps between parts."""

    train: tuple[pd.Timestamp, pd.Timestamp]
    valid: tuple[pd.Timestamp, pd.Timestamp]
    test: tuple[pd.Timestamp, pd.Timestamp]
    gap_days: int
    test_gap_days: int

    def to_dict(self) -> dict[str, str | int]:
        """ISO strings and day counts, ready for ``mlflow.log_params``."""
        out: dict[str, str | int] = {}
        for part in ("train", "valid", "test"):
            first, last = getattr(self, part)
            out[f"{part}_first_snapshot"] = first.isoformat()
            out[f"{part}_last_snapshot"] = last.isoformat()
        out["split_gap_days"] = self.gap_days
        out["split_test_gap_days"] = self.test_gap_days
        return out


@dataclass(frozen=True)
class SnapshotSplit:
    """Labelled snapshot rows cut by snapshot time into train, valid and test (see
    :func:`temporal_split`), with the dates of each part."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    dates: SplitDates


def temporal_split(
    frame: pd.DataFrame,
    *,
    valid_days: int | None = None,
    test_days: int | None = None,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    gap_days: int = DEFAULT_HORIZON_DAYS,
    test_gap_days: int = 0,
) -> SnapshotSplit:
    """Train | gap | valid | test by snapshot time (``event_timestamp``), never shuffled.

    Test is the last ``test_days`` distinct snapshots (else ``test_fraction`` of them, at least
    one); valid the ``valid_days`` (else ``valid_fraction``) before it, ending at least
    ``test_gap_days`` before the first test snapshot; train every snapshot at least
    ``gap_days`` before the first valid one.

    Why a gap of one label horizon (the default) before valid: a row's label looks ``horizon``
    days ahead and a user's rows on adjacent days are near-copies whose labels count the same
    purchase. Without the gap the model is trained on the very purchases it is then scored on:
    measured on the quickstart shop, a split without gaps gives a test Brier score *below the
    true probabilities'* -- impossible without leakage. With the gap every training label was
    known before the first valid (and so test) snapshot was taken, as in production, where the
    newest complete labels are a horizon old.

    Why no gap between valid and test by default: valid only picks among candidates, stops the
    boosting and fits the (monotone, two-parameter or step) calibrator; nothing there can learn
    a user. What leaks through the overlap is the base rate of the overlapping days, so test
    Brier/ECE may be slightly optimistic when the rate shifts (test AUC is not affected).
    ``test_gap_days=horizon`` removes that too, when there are enough days to afford it (with
    30 days of data it leaves train only the first, short-history days).
    """
    for name, value in (("valid_days", valid_days), ("test_days", test_days)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise ValueError(f"{name}={value!r}: expected a number of snapshot days >= 1")
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"{name}={value!r}: expected a share in (0, 1)")
    for name, value in (("gap_days", gap_days), ("test_gap_days", test_gap_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r}: expected a whole number of days >= 0")
    if TIMESTAMP not in frame.columns:
        raise ValueError(f"frame lacks {TIMESTAMP!r}, the snapshot time to split on")
    if frame.empty:
        raise ValueError("frame is empty: nothing to split")

    stamps = pd.to_datetime(frame[TIMESTAMP], utc=True)
    snapshots = pd.DatetimeIndex(stamps.unique()).sort_values()
    n = len(snapshots)
    n_test = test_days or max(1, round(test_fraction * n))
    n_valid = valid_days or max(1, round(valid_fraction * n))

    test_stamps = snapshots[-n_test:] if n_test <= n else snapshots[:0]
    valid_stamps = train_stamps = snapshots[:0]
    if len(test_stamps):
        before = snapshots[_before(snapshots, test_stamps[0], test_gap_days)]
        valid_stamps = before[-n_valid:] if n_valid <= len(before) else before[:0]
    if len(valid_stamps):
        train_stamps = snapshots[_before(snapshots, valid_stamps[0], gap_days)]
    if len(test_stamps) < n_test or len(valid_stamps) < n_valid or len(train_stamps) == 0:
        raise ValueError(
            f"{n} snapshot(s) ({snapshots[0].isoformat()} .. {snapshots[-1].isoformat()}) cannot "
            f"hold >= 1 train + gap_days={gap_days} + {n_valid} valid + test_gap_days="
            f"{test_gap_days} + {n_test} test; pass fewer valid/test days, smaller gaps or "
            "more snapshot days"
        )

    def rows(chosen: pd.DatetimeIndex) -> pd.DataFrame:
        return frame[stamps.isin(chosen).to_numpy()]

    dates = SplitDates(
        train=(train_stamps[0], train_stamps[-1]),
        valid=(valid_stamps[0], valid_stamps[-1]),
        test=(test_stamps[0], test_stamps[-1]),
        gap_days=gap_days,
        test_gap_days=test_gap_days,
    )
    return SnapshotSplit(rows(train_stamps), rows(valid_stamps), rows(test_stamps), dates)


def split_fits(snapshot_days: Sequence[date], gap_days: int = DEFAULT_HORIZON_DAYS) -> bool:
    """Whether :func:`temporal_split` (default shares) can cut daily snapshots on
    ``snapshot_days`` with a ``gap_days`` gap. Not monotone in the count: with a 7-day gap 9 days
    fit (1 valid + 1 test) but 10 do not (2 + 2), so ask this rather than compare a minimum."""
    if not snapshot_days:
        return False
    stamps = pd.DataFrame({TIMESTAMP: pd.to_datetime(list(snapshot_days), utc=True)})
    try:
        temporal_split(stamps, gap_days=gap_days)
    except ValueError:
        return False
    return True


def fewest_snapshot_days(gap_days: int = DEFAULT_HORIZON_DAYS) -> int:
    """The count of consecutive daily snapshots from which every larger count fits the split."""
    start = date(2000, 1, 1)
    fits = [
        split_fits([start + timedelta(days=i) for i in range(n)], gap_days)
        for n in range(1, 4 * gap_days + 12)
    ]
    last_miss = max((n for n, ok in enumerate(fits, start=1) if not ok), default=0)
    return last_miss + 1


def _before(snapshots: pd.DatetimeIndex, first_later: pd.Timestamp, gap_days: int) -> np.ndarray:
    """Snapshots strictly before ``first_later`` and at least ``gap_days`` days before it."""
    return (snapshots < first_later) & (snapshots <= first_later - pd.Timedelta(days=gap_days))


# ---- features and estimators ------------------------------------------------------------------


# ---- which features a log can support ---------------------------------------------------------

# The user_activity columns that are computed from one event type, and the count column that says
# whether that type occurs at all. A shop that exports order lines only has no views and no carts:
# their counts are 0 for everyone and the rates built on them are 0 by convention -- zero-filled
# noise, not information. Which types a log has is read from the training rows themselves.
EVENT_TYPE_EVIDENCE = {"view": "views_30d", "add_to_cart": "carts_30d"}
FEATURE_SOURCES: dict[str, tuple[str, ...]] = {
    "view": (
        "views_1d",
        "views_7d",
        "views_30d",
        "view_to_cart_rate_30d",
        "avg_view_price_1d",
        "avg_view_price_7d",
    ),
    "add_to_cart": (
        "carts_1d",
        "carts_7d",
        "carts_30d",
        "view_to_cart_rate_30d",
        "cart_to_purchase_rate_30d",
    ),
}


def absent_event_types(train: pd.DataFrame) -> tuple[str, ...]:
    """Event types that never occur in the training rows' features (their 30-day count is 0 or
    null on every row); a type whose count column is not in the frame is not judged."""
    absent = []
    for event_type, column in EVENT_TYPE_EVIDENCE.items():
        if column in train.columns:
            counts = pd.to_numeric(train[column], errors="coerce").fillna(0)
            if not (counts > 0).any():
                absent.append(event_type)
    return tuple(absent)


def unsupported_features(train: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """``{column: reason}`` for the feature columns the training rows cannot support.

    * a column built from an event type that never occurs in training (:func:`absent_event_types`:
      a log of purchases only has no views or carts) -- ``"no view events in training"``;
    * any other column holding one single value on every training row (e.g. device shares of an
      export without devices) -- ``"constant 0 in training"``: it cannot rank anyone.

    Columns without any value are not listed here (they are ``FeatureKinds.empty``).
    """
    reasons: dict[str, str] = {}
    for event_type in absent_event_types(train):
        for column in FEATURE_SOURCES[event_type]:
            if column in columns and column not in reasons:
                reasons[column] = f"no {event_type} events in training"
    for column in columns:
        if column in reasons:
            continue
        values = train[column]
        if values.isna().any() or values.isna().all():
            continue  # missingness is information (never bought, no views); all-null is empty
        distinct = values.astype(object).unique()
        if len(distinct) == 1:
            reasons[column] = f"constant {distinct[0]!r} in training"
    return reasons


# ---- simple heuristics the model must beat ----------------------------------------------------

# score = -days since the last purchase (never bought: last), and score = purchases in the
# feature window (30 days): the RFM recency and frequency rules a shop uses without any model
HEURISTIC_COLUMNS = {"recency": "days_since_last_purchase", "frequency": "purchases_30d"}
HEURISTIC_METRICS = ("roc_auc", "pr_auc", "lift_top_decile")


def heuristic_scores(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{"recency": ..., "frequency": ...}``: each heuristic's score on every row, in [0, 1].

    ``recency`` ranks by -``days_since_last_purchase`` (users who never bought come last),
    ``frequency`` by ``purchases_30d`` (null = 0). The raw scores are turned into their rank
    share (ties share a rank), which orders the rows exactly as the raw score does -- so ROC
    AUC, average precision and lift are the heuristic's -- and fits the [0, 1] the metrics
    check. A heuristic whose column is not in ``frame`` is left out.
    """
    out: dict[str, np.ndarray] = {}
    days_column, count_column = HEURISTIC_COLUMNS["recency"], HEURISTIC_COLUMNS["frequency"]
    if days_column in frame.columns:
        days = pd.to_numeric(frame[days_column], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        out["recency"] = _rank_share(np.where(np.isnan(days), -np.inf, -days))
    if count_column in frame.columns:
        counts = pd.to_numeric(frame[count_column], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        out["frequency"] = _rank_share(np.nan_to_num(counts, nan=0.0))
    return out


def _rank_share(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return values.astype("float64")
    return pd.Series(values).rank(method="average", pct=True).to_numpy(dtype="float64")


@dataclass(frozen=True)
class FeatureKinds:
    """How each feature column is prepared; ``empty`` ones (all null in training) are left out."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    empty: tuple[str, ...]
    nonnegative: tuple[str, ...]  # numeric columns >= 0 in training: counts, money, days, shares

    @property
    def used(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def feature_kinds(frame: pd.DataFrame, feature_columns: Sequence[str]) -> FeatureKinds:
    """Sort the feature columns of the training rows into numeric, categorical and empty.

    Numbers (nullable ints too) are numeric, strings categorical. A column without a single
    value in training carries no information -- and HistGradientBoosting cannot bin it (it
    raises) -- so it is left out: the model ignores it at prediction time whatever it holds, and
    it starts to count at the first training run where it has values (``segment_*`` before the
    first segmentation, the ``rt_*`` counters that only serving pushes).
    """
    numeric, categorical, empty, nonnegative = [], [], [], []
    for name in feature_columns:
        column = frame[name]
        if column.isna().all():
            empty.append(name)
        elif pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            numeric.append(name)
            if column.min() >= 0:
                nonnegative.append(name)
        elif pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(
            column
        ):
            raise ValueError(
                f"feature column {name!r} holds times ({column.dtype}); turn it into a number "
                "(e.g. days since) or leave it out of feature_columns"
            )
        else:
            categorical.append(name)
    return FeatureKinds(tuple(numeric), tuple(categorical), tuple(empty), tuple(nonnegative))


def _preparation(kinds: FeatureKinds, style: str):
    """The ``ColumnTransformer`` that turns the raw frame into numbers for one kind of estimator.

    ``trees``: numerics through ``StandardScaler``, which turns nullable ``Int64``/``pd.NA`` into
    float NaN and keeps NaN -- the trees' "missing" -- and changes no split; strings as ordinal
    codes, NaN for None and for unseen values, for native categorical splits.
    ``linear`` (the baseline): median-imputed numerics plus missing-indicators, standardised;
    strings one-hot, None its own category, unseen values all zeros.
    ``log_linear``: as ``linear``, but non-negative numerics (counts, money, days) go through
    ``log1p`` first -- purchase behaviour is multiplicative (sessions x conversion), so a
    logistic model is right on the log scale, and it extrapolates sensibly to the longer
    histories of later snapshots, where trees saturate. ``abs`` before ``log1p`` keeps a stray
    negative value at prediction time finite.
    Columns not named (keys, label, empty features, anything added later) are dropped.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )

    def imputed(*steps) -> Pipeline:
        # an identity scaler first: it turns whatever arrives (Int64 with pd.NA, an all-None
        # object column from an empty online row) into float with NaN, which the imputer needs
        as_float = StandardScaler(with_mean=False, with_std=False)
        impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        return Pipeline(
            [("as_float", as_float), ("impute", impute), *steps, ("scale", StandardScaler())]
        )

    transformers = []
    logged = set(kinds.nonnegative) if style == "log_linear" else set()
    plain = [c for c in kinds.numeric if c not in logged]
    if style == "trees":
        if kinds.numeric:
            transformers.append(("numeric", StandardScaler(), list(kinds.numeric)))
    else:
        if plain:
            transformers.append(("numeric", imputed(), plain))
        if logged:
            log_steps = (
                ("abs", FunctionTransformer(np.abs, feature_names_out="one-to-one")),
                ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
            )
            columns = [c for c in kinds.numeric if c in logged]
            transformers.append(("log_numeric", imputed(*log_steps), columns))
    if kinds.categorical:
        strings = (
            OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
                max_categories=MAX_CATEGORIES,
            )
            if style == "trees"
            else OneHotEncoder(handle_unknown="ignore")
        )
        transformers.append(("categorical", strings, list(kinds.categorical)))
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )


@dataclass(frozen=True)
class Candidate:
    """One fitted classifier (before calibration) and how it did on valid."""

    name: str
    params: dict[str, Any]
    prepare: Any
    classifier: Any
    valid_scores: dict[str, float]
    fit_s: float

    def pipeline(self) -> Pipeline:
        from sklearn.pipeline import Pipeline

        return Pipeline([("prepare", self.prepare), ("classify", self.classifier)])


def _valid_scores(y_valid: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from pipelines.models.classification import log_loss, pr_auc, roc_auc

    return {
        "roc_auc": roc_auc(y_valid, score),
        "pr_auc": pr_auc(y_valid, score),
        "log_loss": log_loss(y_valid, score),
    }


def _logistic_candidates(
    kinds: FeatureKinds,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    *,
    seed: int,
    sparse: bool,
) -> list[Candidate]:
    """The plain baseline (L2, C=1) first, then (``sparse``) L1 fits on log counts, one per C.

    The L1 fits keep only the few columns that carry signal (on the quickstart shop: purchases
    and carts over 30 and 7 days) -- less variance than any model that uses every column.
    """
    from sklearn.linear_model import LogisticRegression

    y_train, y_valid = train[LABEL].to_numpy(), valid[LABEL].to_numpy()
    settings = [("logistic", "linear", {"C": 1.0, "l1_ratio": 0.0, "solver": "newton-cholesky"})]
    if sparse:
        settings += [
            ("sparse_logistic", "log_linear", {"C": c, "l1_ratio": 1.0, "solver": "liblinear"})
            for c in SPARSE_LOGISTIC_C
        ]
    prepared: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    candidates = []
    for name, style, params in settings:
        started = time.perf_counter()
        if style not in prepared:
            prepare = _preparation(kinds, style).fit(train)
            prepared[style] = (prepare, prepare.transform(train), prepare.transform(valid))
        prepare, x_train, x_valid = prepared[style]
        classifier = LogisticRegression(**params, max_iter=2000, random_state=seed)
        classifier.fit(x_train, y_train)
        fit_s = time.perf_counter() - started
        score = classifier.predict_proba(x_valid)[:, 1]
        candidates.append(
            Candidate(name, params, prepare, classifier, _valid_scores(y_valid, score), fit_s)
        )
    return candidates


def boosting_settings(seed: int, count: int) -> list[dict[str, Any]]:
    """A reproducible list of HistGradientBoosting settings: a sound default, then random draws.

    Only what matters at this size is searched; the number of trees comes from early stopping
    on valid, so learning rate and tree shape trade off freely.
    """
    rng = np.random.default_rng(seed)
    settings: list[dict[str, Any]] = [
        {
            "learning_rate": 0.05,
            "max_leaf_nodes": 7,
            "min_samples_leaf": 100,
            "l2_regularization": 1.0,
            "max_features": 0.8,
        }
    ]
    while len(settings) < count:
        settings.append(
            {
                "learning_rate": float(np.round(10 ** rng.uniform(-1.7, -0.85), 4)),
                "max_leaf_nodes": int(rng.choice([4, 7, 15, 31])),
                "min_samples_leaf": int(rng.choice([50, 100, 200, 400])),
                "l2_regularization": float(rng.choice([0.0, 0.1, 1.0, 10.0])),
                "max_features": float(rng.choice([0.5, 0.8, 1.0])),
            }
        )
    return settings[:count]


def _boosting_candidate(
    kinds: FeatureKinds,
    prepare: Any,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    seed: int,
    params: dict[str, Any],
) -> Candidate:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_train, y_train, x_valid, y_valid = data
    categorical = np.zeros(x_train.shape[1], dtype=bool)
    categorical[len(kinds.numeric) :] = True
    started = time.perf_counter()
    classifier = HistGradientBoostingClassifier(
        **params,
        max_iter=1000,
        early_stopping=True,
        n_iter_no_change=20,
        scoring="loss",
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )
    classifier.fit(x_train, y_train, X_val=x_valid, y_val=y_valid)
    fit_s = time.perf_counter() - started
    score = classifier.predict_proba(x_valid)[:, 1]
    return Candidate(
        "hist_gradient_boosting",
        {**params, "n_iter": int(classifier.n_iter_)},
        prepare,
        classifier,
        _valid_scores(y_valid, score),
        fit_s,
    )


def _calibrated(
    candidate: Candidate, valid: pd.DataFrame, *, seed: int, folds: int = 5
) -> tuple[Pipeline, str, dict[str, float]]:
    """Calibrate on valid; the method is the one with the lower out-of-fold Brier on valid.

    The classifier never saw valid, but the calibrator is fitted on it, so the same rows cannot
    also judge it: each method is cross-validated over stratified folds of valid and the winner
    is refitted on the whole of valid. Isotonic can follow any monotone distortion but needs
    rows; sigmoid has two parameters -- on few rows it usually wins, as it should.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import Pipeline

    from pipelines.models.classification import brier

    x_valid = candidate.prepare.transform(valid)
    y_valid = valid[LABEL].to_numpy()
    n_folds = int(min(folds, np.bincount(y_valid, minlength=2).min()))
    scores: dict[str, float] = {}
    for method in CALIBRATION_METHODS:
        if n_folds < 2:  # too few positives to cross-validate: sigmoid, the safe choice
            scores[method] = math.nan
            continue
        calibrator = CalibratedClassifierCV(FrozenEstimator(candidate.classifier), method=method)
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        out_of_fold = cross_val_predict(
            calibrator, x_valid, y_valid, cv=splitter, method="predict_proba"
        )[:, 1]
        scores[method] = brier(y_valid, out_of_fold)
    method = "sigmoid"
    if n_folds >= 2 and scores["isotonic"] < scores["sigmoid"]:
        method = "isotonic"
    calibrated = CalibratedClassifierCV(FrozenEstimator(candidate.classifier), method=method)
    calibrated.fit(x_valid, y_valid)
    model = Pipeline([("prepare", candidate.prepare), ("classify", calibrated)])
    return model, method, scores


# ---- the result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropensityResult:
    """A fitted propensity model and what is needed to judge and log it (test figures on test)."""

    model: Pipeline  # prepare -> calibrated classifier; predict_proba on the raw feature frame
    baseline: Pipeline  # the plain logistic regression, uncalibrated, for comparison
    candidate: str  # "hist_gradient_boosting", "sparse_logistic" or "logistic"
    params: dict[str, Any]  # of the chosen classifier (n_iter found by early stopping)
    calibration: str  # "sigmoid" or "isotonic"
    calibration_scores: dict[str, float]  # out-of-fold Brier on valid per method
    candidates: pd.DataFrame  # every candidate tried: name, params, valid scores, fit_s, chosen
    test_metrics: dict[str, float]
    baseline_test_metrics: dict[str, float]
    test_predictions: pd.DataFrame  # user_id, event_timestamp, label, score, baseline_score
    importance: pd.DataFrame  # feature, importance_mean, importance_std (ROC AUC drop, test)
    split: SplitDates
    feature_columns: tuple[str, ...]  # what the model uses
    empty_columns: tuple[str, ...]  # all null in training, ignored
    rows: dict[str, int]  # train / valid / test
    search_truncated: bool  # the time budget stopped the search before every setting was tried
    fit_s: float
    oracle_metrics: dict[str, float] = field(default_factory=dict)
    # left out because the training rows cannot support them: column -> reason
    unsupported_columns: dict[str, str] = field(default_factory=dict)
    absent_event_types: tuple[str, ...] = ()  # e.g. ("view", "add_to_cart") for order lines only
    # heuristic -> {roc_auc, pr_auc, lift_top_decile} on the test rows (see heuristic_scores)
    heuristic_test_metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat ``{name: float}`` for ``mlflow.log_metrics``.

        ``test_*`` (chosen model), ``baseline_test_*`` (logistic baseline), ``valid_*`` (the
        chosen candidate before calibration), ``valid_calibration_brier_*``, row counts, and,
        once :func:`with_oracle` ran, ``oracle_test_*`` and ``test_roc_auc_vs_oracle``.
        The heuristics on the same test rows: ``recency_heuristic_test_*``,
        ``frequency_heuristic_test_*``, ``best_heuristic_test_roc_auc`` and
        ``test_roc_auc_minus_best_heuristic`` (> 0: the model ranks better than either rule);
        ``unsupported_features`` counts the columns left out as unsupported.
        """
        out: dict[str, float] = {}
        out.update({f"test_{k}": float(v) for k, v in self.test_metrics.items()})
        out.update({f"baseline_test_{k}": float(v) for k, v in self.baseline_test_metrics.items()})
        chosen = self.candidates[self.candidates["chosen"]].iloc[0]
        for name in ("roc_auc", "pr_auc", "log_loss"):
            out[f"valid_{name}"] = float(chosen[f"valid_{name}"])
        for method, value in self.calibration_scores.items():
            out[f"valid_calibration_brier_{method}"] = float(value)
        out.update({k: float(v) for k, v in self.oracle_metrics.items()})
        for name, found in self.heuristic_test_metrics.items():
            out.update({f"{name}_heuristic_test_{k}": float(v) for k, v in found.items()})
        aucs = [found["roc_auc"] for found in self.heuristic_test_metrics.values()]
        if aucs:
            out["best_heuristic_test_roc_auc"] = float(max(aucs))
            out["test_roc_auc_minus_best_heuristic"] = float(
                self.test_metrics["roc_auc"] - max(aucs)
            )
        out["unsupported_features"] = float(len(self.unsupported_columns))
        out.update({f"{k}_rows": float(v) for k, v in self.rows.items()})
        out["candidates_tried"] = float(len(self.candidates))
        out["fit_s"] = float(self.fit_s)
        return out

    def log_params(self) -> dict[str, Any]:
        """Flat ``{name: value}`` for ``mlflow.log_params``: the choice, its settings, the split."""
        return {
            "candidate": self.candidate,
            "calibration": self.calibration,
            **{f"model_{k}": v for k, v in self.params.items()},
            **self.split.to_dict(),
            "n_features": len(self.feature_columns),
            "empty_feature_columns": ",".join(self.empty_columns) or "-",
            "unsupported_feature_columns": ",".join(self.unsupported_columns) or "-",
            "absent_event_types": ",".join(self.absent_event_types) or "-",
            "search_truncated": self.search_truncated,
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """File name -> frame, for the run's artifacts: importance, the search, test scores."""
        searched = self.candidates.assign(params=self.candidates["params"].map(repr))
        return {
            "importance.csv": self.importance,
            "candidates.csv": searched,
            "test_predictions.parquet": self.test_predictions,
        }

    def figures(self) -> dict[str, Figure]:
        """ROC, precision-recall, reliability and gains on test: model, baseline (and oracle)."""
        from pipelines.models.classification import (
            plot_calibration,
            plot_gains,
            plot_precision_recall,
            plot_roc,
        )

        y = self.test_predictions[LABEL].to_numpy()
        scores = {
            "model": self.test_predictions["score"].to_numpy(),
            "baseline": self.test_predictions["baseline_score"].to_numpy(),
        }
        if "oracle_score" in self.test_predictions.columns:
            scores["oracle"] = self.test_predictions["oracle_score"].to_numpy()
        # the heuristics rank but are no probabilities: on the ranking plots only
        ranked = dict(scores)
        for name in self.heuristic_test_metrics:
            ranked[f"{name} rule"] = self.test_predictions[f"{name}_score"].to_numpy()
        return {
            "roc.png": plot_roc(y, ranked, title="ROC on test"),
            "precision_recall.png": plot_precision_recall(
                y, ranked, title="Precision-recall on test"
            ),
            "calibration.png": plot_calibration(y, scores, title="Calibration on test"),
            "gains.png": plot_gains(y, ranked, title="Gains on test"),
        }


def fit_propensity(
    frame: pd.DataFrame,
    *,
    feature_columns: Sequence[str] | None = None,
    seed: int = 42,
    time_budget_s: float = 60.0,
    max_candidates: int = 12,
    candidates: Sequence[str] = CANDIDATES,
    valid_days: int | None = None,
    test_days: int | None = None,
    gap_days: int = DEFAULT_HORIZON_DAYS,
    test_gap_days: int = 0,
    importance_repeats: int = 3,
    importance_rows: int = 10_000,
    n_threads: int | None = None,
    truth: pd.DataFrame | None = None,
) -> PropensityResult:
    """Fit, choose, calibrate and evaluate a propensity model on a labelled feature frame.

    ``frame``: the Feast training set of :func:`purchase_labels`' rows -- ``user_id``,
    ``event_timestamp``, ``label`` and the feature columns (default: every other column).

    1. split by time (:func:`temporal_split` with ``valid_days``, ``test_days``, the gaps);
    2. fit the logistic baseline and the sparse log-count logistic regressions;
    3. try HistGradientBoosting settings (:func:`boosting_settings`, early stopping on valid)
       until ``max_candidates`` are done or ``time_budget_s`` (counted from the first
       candidate's fit, the logistic ones included) has passed -- one always runs;
    4. keep the candidate with the best valid ROC AUC, calibrate it on valid;
    5. score it, the baseline and the recency / frequency rules (:func:`heuristic_scores`) once
       on test; permutation importance on test.

    Before any fit, the feature columns the training rows cannot support are left out
    (:func:`unsupported_features`: built from an event type that never occurs in training, such
    as views and carts in an order-line log, or constant): ``result.unsupported_columns``.

    ``candidates`` restricts the families searched (names in :data:`CANDIDATES`); the baseline
    is fitted and reported whatever is searched. ``importance_repeats=0`` skips permutation
    importance (each repeat predicts ``importance_rows`` rows once per feature).

    Reproducible: the same frame and ``seed`` give the same model and metrics as long as the
    time budget does not cut the search (``search_truncated`` says whether it did). ``truth``
    (the generator's ``purchase_probability_7d``) adds the oracle figures (:func:`with_oracle`).
    ``n_threads`` caps the OpenMP/BLAS threads while fitting (None: the libraries' default, all
    cores); on a machine shared with other jobs 1 is often faster -- measured here, boosting
    took 0.5 s on one thread and 3 s on two busy cores.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_threads):
        return _fit_propensity(
            frame,
            feature_columns=feature_columns,
            seed=seed,
            time_budget_s=time_budget_s,
            max_candidates=max_candidates,
            candidates=tuple(candidates),
            valid_days=valid_days,
            test_days=test_days,
            gap_days=gap_days,
            test_gap_days=test_gap_days,
            importance_repeats=importance_repeats,
            importance_rows=importance_rows,
            truth=truth,
        )


def _fit_propensity(
    frame: pd.DataFrame,
    *,
    feature_columns: Sequence[str] | None,
    seed: int,
    time_budget_s: float,
    max_candidates: int,
    candidates: tuple[str, ...],
    valid_days: int | None,
    test_days: int | None,
    gap_days: int,
    test_gap_days: int,
    importance_repeats: int,
    importance_rows: int,
    truth: pd.DataFrame | None,
) -> PropensityResult:
    from pipelines.models.classification import classification_metrics

    if not time_budget_s > 0:
        raise ValueError(f"time_budget_s={time_budget_s!r}: expected seconds > 0")
    if isinstance(max_candidates, bool) or max_candidates < 1:
        raise ValueError(f"max_candidates={max_candidates!r}: expected at least 1")
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown or not candidates:
        raise ValueError(f"candidates={list(candidates)}: choose one or more of {CANDIDATES}")
    if isinstance(importance_repeats, bool) or importance_repeats < 0:
        raise ValueError(f"importance_repeats={importance_repeats!r}: expected 0 (skip) or more")
    missing = [c for c in (*KEY_COLUMNS, LABEL) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; it has {list(frame.columns)}")
    labels = frame[LABEL]
    if labels.isna().any() or not labels.isin((0, 1)).all():
        bad = labels[labels.isna() | ~labels.isin((0, 1))].unique()[:5].tolist()
        raise ValueError(f"column {LABEL!r} must be 0/1 without nulls; found {bad}")
    columns = _feature_columns(frame, feature_columns)

    started = time.perf_counter()
    split = temporal_split(
        frame,
        valid_days=valid_days,
        test_days=test_days,
        gap_days=gap_days,
        test_gap_days=test_gap_days,
    )
    train, valid, test = split.train, split.valid, split.test
    for name, part in (("train", train), ("valid", valid)):
        if part[LABEL].nunique() < 2:
            raise ValueError(
                f"the {name} part ({len(part)} rows, {split.dates.to_dict()}) has a single "
                "label value; a classifier needs buyers and non-buyers: use more snapshot days"
            )
    # decided on the training rows only: what the log holds before valid and test
    unsupported = unsupported_features(train, columns)
    kinds = feature_kinds(train, [c for c in columns if c not in unsupported])
    if not kinds.used:
        raise ValueError(
            f"every feature column is empty or unsupported in training: empty "
            f"{list(kinds.empty)}, unsupported {unsupported}"
        )
    y_train = train[LABEL].to_numpy().astype(np.int64)
    y_valid = valid[LABEL].to_numpy().astype(np.int64)
    train = train.assign(**{LABEL: y_train})
    valid = valid.assign(**{LABEL: y_valid})

    search_started = time.perf_counter()  # the budget covers every candidate's fit
    linear = _logistic_candidates(
        kinds, train, valid, seed=seed, sparse="sparse_logistic" in candidates
    )
    baseline = linear[0]  # fitted whatever is searched: it is what the model must beat
    tried = [c for c in linear if c.name in candidates]
    boosted: list[Candidate] = []
    settings = boosting_settings(seed, max_candidates)
    if "hist_gradient_boosting" in candidates:
        prepare = _preparation(kinds, "trees").fit(train)
        data = (prepare.transform(train), y_train, prepare.transform(valid), y_valid)
        for params in settings:
            boosted.append(_boosting_candidate(kinds, prepare, data, seed=seed, params=params))
            if time.perf_counter() - search_started > time_budget_s:
                break
    truncated = bool(boosted) and len(boosted) < len(settings)
    tried += boosted
    # ties go to the candidate tried first (the simpler one)
    best = max(tried, key=lambda c: (c.valid_scores["roc_auc"], -tried.index(c)))
    model, method, calibration_scores = _calibrated(best, valid, seed=seed)

    baseline_model = baseline.pipeline()
    y_test = test[LABEL].to_numpy().astype(np.int64)
    score = model.predict_proba(test)[:, 1]
    baseline_score = baseline_model.predict_proba(test)[:, 1]
    heuristics = heuristic_scores(test)  # the same test rows as the model
    predictions = pd.DataFrame(
        {
            USER_ID: test[USER_ID].astype(str).to_numpy(dtype=object),
            TIMESTAMP: pd.to_datetime(test[TIMESTAMP], utc=True).astype("datetime64[us, UTC]"),
            LABEL: y_test,
            "score": score,
            "baseline_score": baseline_score,
            **{f"{name}_score": values for name, values in heuristics.items()},
        }
    ).reset_index(drop=True)
    heuristic_metrics = {}
    for name, values in heuristics.items():
        found = classification_metrics(y_test, values)
        heuristic_metrics[name] = {k: found[k] for k in HEURISTIC_METRICS}
    importance = permutation_importance_frame(
        model,
        test.assign(**{LABEL: y_test}),
        kinds.used,
        seed=seed,
        repeats=importance_repeats,
        max_rows=importance_rows,
    )
    table = pd.DataFrame(
        [
            {
                "candidate": c.name,
                "params": dict(c.params),
                **{f"valid_{k}": v for k, v in c.valid_scores.items()},
                "fit_s": round(c.fit_s, 3),
                "chosen": c is best,
            }
            for c in tried
        ]
    )
    result = PropensityResult(
        model=model,
        baseline=baseline_model,
        candidate=best.name,
        params=dict(best.params),
        calibration=method,
        calibration_scores=calibration_scores,
        candidates=table,
        test_metrics=classification_metrics(y_test, score),
        baseline_test_metrics=classification_metrics(y_test, baseline_score),
        test_predictions=predictions,
        importance=importance,
        split=split.dates,
        feature_columns=kinds.used,
        empty_columns=kinds.empty,
        unsupported_columns=unsupported,
        absent_event_types=absent_event_types(train),
        heuristic_test_metrics=heuristic_metrics,
        rows={"train": len(train), "valid": len(valid), "test": len(test)},
        search_truncated=truncated,
        fit_s=time.perf_counter() - started,
    )
    return with_oracle(result, truth) if truth is not None else result


def _feature_columns(frame: pd.DataFrame, requested: Sequence[str] | None) -> list[str]:
    if requested is None:
        return [c for c in frame.columns if c not in (*KEY_COLUMNS, LABEL)]
    requested = list(requested)
    if not requested:
        raise ValueError("feature_columns is empty: name at least one feature, or pass None")
    missing = [c for c in requested if c not in frame.columns]
    if missing:
        raise ValueError(f"feature_columns {missing} are not columns of frame")
    reserved = [c for c in requested if c in (*KEY_COLUMNS, LABEL)]
    if reserved:
        raise ValueError(f"feature_columns must not include keys or the label: {reserved}")
    return requested


def permutation_importance_frame(
    model: Any,
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    seed: int = 42,
    repeats: int = 3,
    max_rows: int = 10_000,
) -> pd.DataFrame:
    """Drop in ROC AUC when each column is shuffled: ``feature, importance_mean, importance_std``.

    Measured on held-out rows (a seeded sample of at most ``max_rows``), so it says what the
    model relies on for unseen snapshots, not what it memorised. Most important first;
    ``repeats=0`` gives the empty frame (importance skipped).
    """
    from sklearn.inspection import permutation_importance

    if repeats == 0:
        return pd.DataFrame(
            {
                "feature": pd.Series(dtype=object),
                "importance_mean": pd.Series(dtype=float),
                "importance_std": pd.Series(dtype=float),
            }
        )
    sample = frame.sample(max_rows, random_state=seed) if len(frame) > max_rows else frame
    y = sample[LABEL].to_numpy()
    if len(np.unique(y)) < 2:  # AUC undefined on one class: say so rather than guess
        values = np.full(len(columns), np.nan)
        return pd.DataFrame(
            {"feature": list(columns), "importance_mean": values, "importance_std": values}
        )
    found = permutation_importance(
        model,
        sample[list(columns)],
        y,
        scoring="roc_auc",
        n_repeats=repeats,
        random_state=seed,
        n_jobs=1,
    )
    importance = pd.DataFrame(
        {
            "feature": list(columns),
            "importance_mean": found.importances_mean,
            "importance_std": found.importances_std,
        }
    )
    return importance.sort_values(
        ["importance_mean", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


# ---- the oracle -------------------------------------------------------------------------------


def _with_truth(test_predictions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The test rows with the true ``p_purchase_7d`` of each (user, snapshot) as oracle_score."""
    needed = {"user_id", "snapshot_ts", "p_purchase_7d"}
    if not needed <= set(truth.columns):
        raise ValueError(
            f"truth lacks column(s) {sorted(needed - set(truth.columns))}; expected the "
            "generator's truth/purchase_probability_7d.parquet"
        )
    for column in (USER_ID, TIMESTAMP, LABEL):
        if column not in test_predictions.columns:
            raise ValueError(f"test_predictions lack column {column!r}")
    keyed = pd.DataFrame(
        {
            USER_ID: truth["user_id"].astype(str).to_numpy(dtype=object),
            TIMESTAMP: pd.to_datetime(truth["snapshot_ts"], utc=True).astype("datetime64[us, UTC]"),
            "oracle_score": truth["p_purchase_7d"].to_numpy(dtype=float),
        }
    ).drop_duplicates([USER_ID, TIMESTAMP])
    rows = test_predictions.drop(columns=["oracle_score"], errors="ignore").assign(
        **{
            USER_ID: test_predictions[USER_ID].astype(str).to_numpy(dtype=object),
            TIMESTAMP: pd.to_datetime(test_predictions[TIMESTAMP], utc=True).astype(
                "datetime64[us, UTC]"
            ),
        }
    )
    joined = rows.merge(keyed, on=[USER_ID, TIMESTAMP], how="left", validate="many_to_one")
    missing = int(joined["oracle_score"].isna().sum())
    if missing:
        raise ValueError(
            f"truth has no p_purchase_7d for {missing} of {len(joined)} test rows (joined on "
            "user_id and snapshot_ts == event_timestamp); is it the truth of the same shop?"
        )
    return joined


def oracle_auc(test_predictions: pd.DataFrame, truth: pd.DataFrame) -> float:
    """ROC AUC of the true purchase probabilities on the same test rows and labels.

    The best ranking any model could reach on these rows (label noise is all that is left);
    ``model AUC / oracle AUC`` is the share of the achievable that the model gets.
    """
    from pipelines.models.classification import roc_auc

    joined = _with_truth(test_predictions, truth)
    return roc_auc(joined[LABEL].to_numpy(), joined["oracle_score"].to_numpy())


def with_oracle(result: PropensityResult, truth: pd.DataFrame) -> PropensityResult:
    """``result`` plus the oracle's test metrics, the AUC ratios and an ``oracle_score`` column."""
    from pipelines.models.classification import classification_metrics

    joined = _with_truth(result.test_predictions, truth)
    oracle = classification_metrics(joined[LABEL].to_numpy(), joined["oracle_score"].to_numpy())
    kept = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile")
    metrics = {f"oracle_test_{k}": oracle[k] for k in kept}
    metrics["test_roc_auc_vs_oracle"] = result.test_metrics["roc_auc"] / oracle["roc_auc"]
    metrics["baseline_test_roc_auc_vs_oracle"] = (
        result.baseline_test_metrics["roc_auc"] / oracle["roc_auc"]
    )
    return replace(result, oracle_metrics=metrics, test_predictions=joined)


# ---- from an events frame ---------------------------------------------------------------------

OPTIONAL_EVENT_COLUMNS = ("item_id", "price", "quantity", "session_id", "device")


def propensity_frame(
    events: pd.DataFrame,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    snapshot_days: int | None = None,
) -> pd.DataFrame:
    """The labelled training frame of a shop's event log, as the train DAG would build it.

    ``events`` needs ``user_id``, ``event_type`` (``view``/``add_to_cart``/``purchase``) and
    ``event_ts``; ``item_id``, ``price``, ``quantity``, ``session_id``, ``device`` are used when
    present (an order-line export has purchases only, maybe no sessions or devices). ``users``
    (``user_id``, ``signup_ts``) defaults to every user known from their first event; ``items``
    (``item_id``, ``category``) to none (no category features).

    ``user_activity`` is computed for every day from the first event day (30-day windows, recency
    carried over day to day, as the features DAG does), and labelled by :func:`purchase_labels`
    on every day whose ``horizon_days`` label lies inside the log (the last ``snapshot_days`` of
    them if given: a year of a few thousand customers is ~1.4M rows otherwise).
    """
    from pipelines.features.compute import HISTORY_DAYS, user_activity

    _check_horizon(horizon_days)
    missing = [c for c in ("user_id", "event_type", "event_ts") if c not in events.columns]
    if missing:
        raise ValueError(f"events lacks column(s) {missing}; it has {list(events.columns)}")
    if events.empty:
        raise ValueError("events is empty: nothing to learn from")
    if snapshot_days is not None and (isinstance(snapshot_days, bool) or snapshot_days < 1):
        raise ValueError(f"snapshot_days={snapshot_days!r}: expected a number of days >= 1")
    stamps = pd.to_datetime(events["event_ts"], utc=True)
    events = events.assign(
        event_ts=stamps,
        **{
            c: pd.Series(None, index=events.index, dtype=object)
            for c in OPTIONAL_EVENT_COLUMNS
            if c not in events.columns
        },
    )
    if users is None:
        users = (
            events.groupby(events["user_id"].astype(str), sort=True)["event_ts"]
            .min()
            .rename("signup_ts")
            .reset_index()
        )
    first_day, last_day = stamps.min().date(), stamps.max().date()
    days = label_complete_days(last_day, first_day, horizon_days)
    if snapshot_days is not None:
        days = days[-snapshot_days:]
    if not days:
        raise ValueError(
            f"the log spans {first_day}..{last_day}: no snapshot day has a complete "
            f"{horizon_days}-day label; pass a longer log or a shorter horizon"
        )
    wanted = set(days)
    order = np.argsort(epoch_micros_array(events["event_ts"]), kind="stable")
    events = events.iloc[order]
    us = epoch_micros_array(events["event_ts"])
    activity, previous = [], None
    for offset in range((days[-1] - first_day).days + 1):
        day = first_day + timedelta(days=offset)
        end_us = epoch_micros(day_end(day))
        start_us = end_us - HISTORY_DAYS * 86_400_000_000
        lo, hi = np.searchsorted(us, [start_us, end_us])
        previous = user_activity(events.iloc[lo:hi], users, items, day, previous=previous)
        if day in wanted:
            activity.append(previous)
    labels = purchase_labels(events, users, days, horizon_days)
    features = pd.concat(activity, ignore_index=True)
    return labels.merge(features, on=[USER_ID, TIMESTAMP], how="left", validate="one_to_one")


def fit_propensity_on_events(
    events: pd.DataFrame,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    snapshot_days: int | None = None,
    **fit_options: Any,
) -> PropensityResult:
    """:func:`propensity_frame` then :func:`fit_propensity`, split with a gap of one horizon.

    ``result.metrics()`` holds the model's ``test_roc_auc`` beside
    ``recency_heuristic_test_roc_auc`` and ``frequency_heuristic_test_roc_auc`` (the same test
    rows); ``result.unsupported_columns`` says which features the log could not support.
    ``fit_options`` go to :func:`fit_propensity` (``time_budget_s``, ``n_threads``, ``truth``...).
    """
    frame = propensity_frame(
        events, users, items, horizon_days=horizon_days, snapshot_days=snapshot_days
    )
    fit_options.setdefault("gap_days", horizon_days)
    return fit_propensity(frame, **fit_options)
