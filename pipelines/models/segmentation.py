"""Customer segments: K-Means on recency, frequency, money and engagement, with stable ids.

Marketing reads segments by id and by name ("window shoppers", "loyal high spenders") day after
day, so a retrain must not reshuffle them. :class:`SegmentationModel` therefore

* builds its inputs from one day's ``user_activity`` rows: recency in days (never = a cap, plus a
  "never" indicator, so new users are not mistaken for loyal ones), counts and money on a log
  scale (a few heavy buyers would otherwise own the distance), rates as they are;
* picks ``k`` by silhouette over ``k_range`` (on a fixed-size sample: the exact score is
  quadratic in users), several K-Means initialisations, one fixed seed — the same data always
  gives the same segments;
* when given the ``previous`` model, matches the new centroids to the old ones (Hungarian
  assignment on centroids standardised the same way) so a segment keeps its id; segments with
  no counterpart get ids never used before, and the previous ``k`` is kept unless another ``k``
  is clearly better (``k_tolerance``);
* names each segment from its centroid by a few readable rules, judged against the users who
  acted (engagement) and those who bought (money) — not against everyone, where the many
  zero-spend users would make any buyer look big.

Everything here is pure: frames in, frames/arrays out. MLflow logging, the ``user_segment``
feature table and the DAG wiring live elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    from matplotlib.figure import Figure

USER_KEY = "user_id"
TIMESTAMP = "event_timestamp"

# Model inputs, in the order of the centroid columns.
RECENCY_FEATURES: tuple[str, ...] = ("days_since_last_event", "days_since_last_purchase")
LOG_FEATURES: tuple[str, ...] = (
    "views_30d",
    "carts_30d",
    "purchases_30d",
    "spend_30d",
    "sessions_30d",
    "avg_order_value_30d",
)
PLAIN_FEATURES: tuple[str, ...] = ("view_to_cart_rate_30d", "distinct_categories_30d")
# 1 where the recency above is null: the user never acted / never bought
INDICATORS: dict[str, str] = {
    "never_active": "days_since_last_event",
    "never_purchased": "days_since_last_purchase",
}
INPUT_COLUMNS: tuple[str, ...] = (*RECENCY_FEATURES, *LOG_FEATURES, *PLAIN_FEATURES)
FEATURES: tuple[str, ...] = (*INPUT_COLUMNS, *INDICATORS)

# How a qualifier reads when two segments would get the same name: (lower, higher) value.
_QUALIFIERS: dict[str, tuple[str, str]] = {
    "days_since_last_event": ("recently active", "less recently active"),
    "days_since_last_purchase": ("bought recently", "bought longer ago"),
    "views_30d": ("fewer views", "more views"),
    "carts_30d": ("fewer carts", "more carts"),
    "purchases_30d": ("fewer orders", "more orders"),
    "spend_30d": ("lower spend", "higher spend"),
    "sessions_30d": ("fewer visits", "more visits"),
    "avg_order_value_30d": ("smaller baskets", "bigger baskets"),
    "view_to_cart_rate_30d": ("rarely add to cart", "often add to cart"),
    "distinct_categories_30d": ("few categories", "many categories"),
    "never_active": ("active", "mostly inactive"),
    "never_purchased": ("mostly buyers", "mostly non-buyers"),
}


class SegmentationError(ValueError):
    """Segmentation input or settings that cannot be used, with what to change."""


class SegmentationModel(ClusterMixin, BaseEstimator):
    """K-Means customer segments from ``user_activity`` rows, with ids stable across retrains.

    Parameters
    ----------
    k_range:
        Smallest and largest number of segments tried (inclusive); the best silhouette wins.
    n_init:
        K-Means initialisations per ``k``; the lowest-inertia one is kept.
    random_state:
        Seed of K-Means and of the silhouette sample: same data and seed, same segments.
    silhouette_sample:
        Users drawn (once, reused for every ``k``) to score silhouettes; all users if fewer.
    recency_cap_days:
        Recency is clipped here, and a user who never acted / bought sits at the cap (with the
        ``never_*`` indicator set), so a 400-day-old purchase and "never" are both "long ago".
    k_tolerance:
        With ``previous``, its ``k`` is kept while its silhouette is within this of the best:
        a tiny silhouette gain is not worth re-cutting every segment.
    max_iter:
        K-Means iterations per initialisation.
    n_threads:
        OpenMP/BLAS threads while fitting; ``None`` leaves the libraries' default (all cores).
        One is the default because K-Means' threads spin against other busy processes:
        measured on a shared 2-core box, 40k users fit in 2.2 s on one thread and 27.7 s on
        the default two.
    """

    def __init__(
        self,
        *,
        k_range: tuple[int, int] = (3, 8),
        n_init: int = 4,
        random_state: int = 0,
        silhouette_sample: int = 4000,
        recency_cap_days: float = 60.0,
        k_tolerance: float = 0.02,
        max_iter: int = 300,
        n_threads: int | None = 1,
    ) -> None:
        self.k_range = k_range
        self.n_init = n_init
        self.random_state = random_state
        self.silhouette_sample = silhouette_sample
        self.recency_cap_days = recency_cap_days
        self.k_tolerance = k_tolerance
        self.max_iter = max_iter
        self.n_threads = n_threads

    # ---- fitting ------------------------------------------------------------------------------

    def fit(
        self, X: pd.DataFrame, y: object = None, *, previous: SegmentationModel | None = None
    ) -> SegmentationModel:
        """Fit on one snapshot of ``user_activity`` (one row per user); ``y`` is ignored.

        ``previous`` is the model this one replaces: matching segments keep its ids.
        """
        from threadpoolctl import threadpool_limits

        k_low, k_high = self._check_params(len(X))
        if previous is not None:
            if not isinstance(previous, SegmentationModel):
                raise SegmentationError(
                    f"previous={type(previous).__name__}: pass the SegmentationModel this one "
                    "replaces (or None for fresh ids)"
                )
            check_is_fitted(previous, "cluster_centers_")
        with threadpool_limits(self.n_threads):
            return self._fit(X, k_low, k_high, previous)

    def _fit(
        self, X: pd.DataFrame, k_low: int, k_high: int, previous: SegmentationModel | None
    ) -> SegmentationModel:
        from sklearn.cluster import KMeans
        from sklearn.metrics import davies_bouldin_score, silhouette_score

        raw = segment_features(X, self.recency_cap_days)
        values = _log_scale(raw).to_numpy(dtype="float64")
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        scale[scale == 0] = 1.0  # a constant feature (e.g. nobody never-active) stays 0
        scaled = (values - mean) / scale

        sample = _sample_rows(len(scaled), self.silhouette_sample, self.random_state)
        fits: dict[int, Any] = {}
        silhouettes: dict[int, float] = {}
        for k in range(k_low, k_high + 1):
            kmeans = KMeans(
                n_clusters=k,
                n_init=self.n_init,
                max_iter=self.max_iter,
                random_state=self.random_state,
            ).fit(scaled)
            fits[k] = kmeans
            labels = kmeans.labels_[sample]
            silhouettes[k] = (
                float(silhouette_score(scaled[sample], labels))
                if np.unique(labels).size > 1
                else -1.0
            )
        best = max(silhouettes, key=lambda k: (silhouettes[k], -k))  # ties: fewer segments
        if (
            previous is not None
            and previous.k_ in silhouettes
            and silhouettes[previous.k_] >= silhouettes[best] - self.k_tolerance
        ):
            best = previous.k_
        kmeans = fits[best]

        self.mean_ = mean
        self.scale_ = scale
        self.features_ = list(FEATURES)
        self.n_features_in_ = len(INPUT_COLUMNS)
        self.k_ = best
        self.silhouette_by_k_ = silhouettes
        self.silhouette_ = silhouettes[best]
        self.davies_bouldin_ = float(davies_bouldin_score(scaled, kmeans.labels_))
        # centres on the log scale, unstandardised: the next model re-standardises them its way
        self.cluster_centers_ = kmeans.cluster_centers_ * scale + mean
        self.inertia_ = float(kmeans.inertia_)

        if previous is None:
            ids = np.arange(best, dtype=np.int64)
            self.next_segment_id_ = best
        else:
            ids, self.next_segment_id_ = _matched_ids(
                kmeans.cluster_centers_, (previous.cluster_centers_ - mean) / scale, previous
            )
        self.segment_ids_ = ids

        order = np.argsort(ids)
        index = pd.Index(ids[order], name="segment_id")
        z_centroids = kmeans.cluster_centers_[order]
        self.centroids_ = pd.DataFrame(
            _from_log_scale(self.cluster_centers_[order]), index=index, columns=self.features_
        )
        self.z_centroids_ = pd.DataFrame(z_centroids, index=index, columns=self.features_)
        counts = np.bincount(kmeans.labels_, minlength=best)
        self.sizes_ = pd.Series(counts[order], index=index, name="size", dtype="int64")
        self.reference_ = population_reference(raw)
        self.segment_names_ = segment_names(self.centroids_, self.reference_, self.z_centroids_)
        self.labels_ = ids[kmeans.labels_]
        return self

    def _check_params(self, n_rows: int) -> tuple[int, int]:
        try:
            k_low, k_high = (int(k) for k in self.k_range)
        except (TypeError, ValueError):
            raise SegmentationError(
                f"k_range={self.k_range!r}: give (smallest, largest) number of segments, "
                "e.g. (3, 8)"
            ) from None
        if not 2 <= k_low <= k_high:
            raise SegmentationError(
                f"k_range={self.k_range!r}: need 2 <= smallest <= largest (silhouette needs "
                "at least two segments)"
            )
        if n_rows <= k_high:
            raise SegmentationError(
                f"{n_rows} user rows cannot make k_range={self.k_range!r} segments: pass a "
                "day of user_activity with more users than the largest k, or lower k_range"
            )
        if not isinstance(self.n_init, int | np.integer) or self.n_init < 1:
            raise SegmentationError(f"n_init={self.n_init!r}: need a positive integer")
        if not isinstance(self.silhouette_sample, int | np.integer) or self.silhouette_sample < (
            k_high + 1
        ):
            raise SegmentationError(
                f"silhouette_sample={self.silhouette_sample!r}: need an integer above the "
                f"largest k ({k_high}); 2000-10000 users score silhouettes well"
            )
        if not self.recency_cap_days > 0:
            raise SegmentationError(
                f"recency_cap_days={self.recency_cap_days!r}: need a positive number of days"
            )
        if self.n_threads is not None and (
            not isinstance(self.n_threads, int | np.integer) or self.n_threads < 1
        ):
            raise SegmentationError(
                f"n_threads={self.n_threads!r}: need a positive integer, or None for all cores"
            )
        if not self.k_tolerance >= 0:
            raise SegmentationError(f"k_tolerance={self.k_tolerance!r}: need >= 0")
        return k_low, k_high

    # ---- using ------------------------------------------------------------------------------

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment id (int64) of each row of ``X`` (``user_activity`` rows, any days)."""
        from sklearn.metrics import pairwise_distances_argmin

        check_is_fitted(self, "cluster_centers_")
        raw = segment_features(X, self.recency_cap_days)
        scaled = (_log_scale(raw).to_numpy(dtype="float64") - self.mean_) / self.scale_
        centres = (self.cluster_centers_ - self.mean_) / self.scale_
        # nearest centre, as K-Means assigns (chunked); no KMeans object needed to serve it
        return self.segment_ids_[pairwise_distances_argmin(scaled, centres)]

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: fit quality and how small the smallest segment is."""
        check_is_fitted(self, "cluster_centers_")
        return {
            "silhouette": float(self.silhouette_),
            "davies_bouldin": float(self.davies_bouldin_),
            "k": float(self.k_),
            "smallest_segment_share": float(self.sizes_.min() / self.sizes_.sum()),
        }


# ---- features ---------------------------------------------------------------------------------


def segment_features(frame: pd.DataFrame, cap: float = 60.0) -> pd.DataFrame:
    """The model's inputs (``FEATURES``) in their own units, before the log and the scaling.

    Recency is clipped to ``cap`` days and "never" sits at the cap with its ``never_*`` flag
    set; other nulls are refused, since a silent zero would move users between segments. The
    same frame is what to watch for drift in the segmentation's inputs.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SegmentationError(
            f"got {type(frame).__name__}: pass user_activity rows as a pandas DataFrame"
        )
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise SegmentationError(
            f"user_activity frame lacks column(s) {missing}: pass rows of the user_activity "
            "feature table (pipelines/features/schema.py USER_ACTIVITY)"
        )
    columns: dict[str, np.ndarray] = {}
    for name in INPUT_COLUMNS:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        if name in RECENCY_FEATURES:
            values = np.where(np.isnan(values), cap, np.clip(values, 0.0, cap))
        else:
            nulls = int(np.isnan(values).sum())
            if nulls:
                raise SegmentationError(
                    f"user_activity column {name!r} has {nulls} null/non-numeric value(s): "
                    "only the days_since_* columns may be null; recompute the features"
                )
            if name in LOG_FEATURES and (values < 0).any():
                raise SegmentationError(
                    f"user_activity column {name!r} has negative values: counts and money "
                    "must be >= 0; recompute the features"
                )
        columns[name] = values
    for flag, source in INDICATORS.items():
        columns[flag] = frame[source].isna().to_numpy(dtype="float64")
    return pd.DataFrame(columns, index=frame.index)


def _log_scale(features: pd.DataFrame) -> pd.DataFrame:
    logged = list(LOG_FEATURES)
    return features.assign(**{c: np.log1p(features[c].to_numpy()) for c in logged})


def _from_log_scale(centres: np.ndarray) -> np.ndarray:
    """Centres back in the features' own units (a log feature's centre is a geometric mean)."""
    out = centres.copy()
    for position, name in enumerate(FEATURES):
        if name in LOG_FEATURES:
            out[:, position] = np.expm1(out[:, position])
    # float noise around the bounds (-0.0, 1.0000001) would read oddly in profiles
    out = np.clip(out, 0.0, None)
    for position, name in enumerate(FEATURES):
        if name in INDICATORS:
            out[:, position] = np.clip(out[:, position], 0.0, 1.0)
    return out


def _sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _matched_ids(
    new_centres: np.ndarray, old_centres: np.ndarray, previous: SegmentationModel
) -> tuple[np.ndarray, int]:
    """Ids for the new centres: the matched old centre's id, else a never-used one."""
    from scipy.optimize import linear_sum_assignment

    distance = np.linalg.norm(new_centres[:, None, :] - old_centres[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(distance)
    ids = np.full(len(new_centres), -1, dtype=np.int64)
    ids[rows] = previous.segment_ids_[cols]
    next_id = int(previous.next_segment_id_)
    for position in np.flatnonzero(ids < 0):
        ids[position] = next_id
        next_id += 1
    return ids, next_id


# ---- names ------------------------------------------------------------------------------------

ACTIVE, BUYERS = "active users", "recent buyers"


def population_reference(features: pd.DataFrame) -> pd.DataFrame:
    """Medians and upper quartiles the names are judged against, in the features' own units.

    ``features`` is :func:`segment_features` output. Engagement is compared with users who
    acted at all and money with users who bought in the last 30 days: against everyone, half
    the shop's zero spend would make any buyer "big".
    """
    groups = {
        ACTIVE: features[features["never_active"] < 0.5],
        BUYERS: features[features["purchases_30d"] > 0],
    }
    rows = {
        (group, q): (
            members[list(FEATURES)].quantile(q)
            if len(members)
            else pd.Series(np.nan, index=list(FEATURES))
        )
        for group, members in groups.items()
        for q in (0.5, 0.75)
    }
    frame = pd.DataFrame(rows).T.reindex(columns=list(FEATURES))
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["population", "quantile"])
    return frame


def segment_names(
    centroids: pd.DataFrame, reference: pd.DataFrame, z_centroids: pd.DataFrame | None = None
) -> dict[int, str]:
    """A readable, unique name per segment from its centroid against the population.

    ``centroids`` are in the features' own units (one row per segment id), ``reference`` is
    :func:`population_reference` of the data. The first rule that fits wins (see
    :func:`_base_name`). Segments that land on the same name get a qualifier from the feature
    that separates them most (``z_centroids``, else the centroids themselves), e.g.
    "window shoppers, more visits" / "window shoppers, fewer visits".
    """
    names = {int(sid): _base_name(row, reference) for sid, row in centroids.iterrows()}
    spread = z_centroids if z_centroids is not None else centroids
    groups: dict[str, list[int]] = {}
    for sid, name in names.items():
        groups.setdefault(name, []).append(sid)
    for name, members in groups.items():
        if len(members) == 1:
            continue
        block = spread.loc[members]
        feature = str((block.max() - block.min()).idxmax())
        low, high = _QUALIFIERS.get(feature, (f"lower {feature}", f"higher {feature}"))
        ordered = block[feature].sort_values(kind="stable").index.tolist()
        for rank, sid in enumerate(ordered):
            if rank == 0:
                qualifier = low
            elif rank == len(ordered) - 1:
                qualifier = high
            else:
                qualifier = f"{high} ({rank + 1} of {len(ordered)})"
            names[int(sid)] = f"{name}, {qualifier}"
    return names


def _base_name(c: pd.Series, reference: pd.DataFrame) -> str:
    """The rule-based name of one centroid ``c`` (features' own units)."""

    def ref(group: str, q: float, feature: str) -> float:
        return float(reference.loc[(group, q), feature])

    if c["never_active"] >= 0.5 or c["sessions_30d"] < 1.0:
        return "new / low activity"
    if c["never_purchased"] < 0.5:  # most members have bought at some point
        if c["purchases_30d"] < 0.5 or (
            c["days_since_last_event"] > ref(ACTIVE, 0.75, "days_since_last_event")
            and c["days_since_last_purchase"] > ref(BUYERS, 0.75, "days_since_last_purchase")
        ):
            return "lapsed customers"
        if c["spend_30d"] >= 1.5 * ref(BUYERS, 0.5, "spend_30d") and c[
            "purchases_30d"
        ] >= 1.5 * ref(BUYERS, 0.5, "purchases_30d"):
            return "loyal high spenders"
        if c["avg_order_value_30d"] >= 1.25 * ref(BUYERS, 0.5, "avg_order_value_30d") and (
            c["days_since_last_purchase"] <= ref(BUYERS, 0.5, "days_since_last_purchase")
        ):
            return "recent big buyers"
        if c["view_to_cart_rate_30d"] >= ref(BUYERS, 0.75, "view_to_cart_rate_30d") and (
            c["views_30d"] < ref(ACTIVE, 0.5, "views_30d")
        ):
            return "decisive buyers"
        if c["purchases_30d"] < ref(BUYERS, 0.5, "purchases_30d"):
            return "occasional buyers"
        return "regular buyers"
    if c["carts_30d"] >= ref(ACTIVE, 0.5, "carts_30d") and (
        c["view_to_cart_rate_30d"] >= ref(ACTIVE, 0.75, "view_to_cart_rate_30d")
    ):
        return "cart abandoners"
    if c["views_30d"] >= ref(ACTIVE, 0.5, "views_30d"):
        return "window shoppers"
    return "occasional visitors"


# ---- outputs ----------------------------------------------------------------------------------


def segment_labels(model: SegmentationModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows for the ``user_segment`` feature table: user, snapshot time, segment id and name."""
    for column in (USER_KEY, TIMESTAMP):
        if column not in frame.columns:
            raise SegmentationError(
                f"user_activity frame lacks {column!r}: segment labels are keyed by user and "
                "stamped with the snapshot's event_timestamp"
            )
    ids = model.predict(frame)
    names = np.array([model.segment_names_[int(i)] for i in ids], dtype=object)
    return pd.DataFrame(
        {
            USER_KEY: frame[USER_KEY].to_numpy(dtype=object),
            TIMESTAMP: frame[TIMESTAMP].to_numpy(),
            "segment_id": ids.astype("int64"),
            "segment_name": names,
        }
    ).astype({TIMESTAMP: frame[TIMESTAMP].dtype})


def segment_profiles(model: SegmentationModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Per segment: name, size, share of users and the mean of each model feature.

    Means are in the features' own units with recency capped (never = ``recency_cap_days``)
    and the ``never_*`` columns as shares, so the table reads like the centroids.
    """
    check_is_fitted(model, "cluster_centers_")
    features = segment_features(frame, model.recency_cap_days)
    ids = pd.Series(model.predict(frame), index=features.index, name="segment_id")
    means = features.groupby(ids).mean()
    sizes = ids.value_counts().rename("size")
    profile = means.join(sizes).reindex(model.centroids_.index)
    profile["size"] = profile["size"].fillna(0).astype("int64")
    profile["share"] = profile["size"] / max(len(ids), 1)
    profile.insert(0, "segment_name", [model.segment_names_[int(i)] for i in profile.index])
    ordered = ["segment_name", "size", "share", *model.features_]
    return profile[ordered].rename_axis("segment_id").reset_index()


def label_agreement(
    labels_a: pd.DataFrame | pd.Series,
    labels_b: pd.DataFrame | pd.Series,
    *,
    method: str = "same_id",
) -> float:
    """How far two labellings agree on the users they share.

    ``same_id``: share of users with the same segment id — what a stable-id retrain should keep
    high. ``ari``: adjusted Rand index — agreement of the groupings whatever the ids.
    Frames are ``segment_labels`` output (one row per user); series are segment ids by user.
    """
    a, b = _ids_by_user(labels_a, "labels_a"), _ids_by_user(labels_b, "labels_b")
    common = a.index.intersection(b.index)
    if common.empty:
        raise SegmentationError(
            "labels_a and labels_b share no user_id: compare labellings of the same users"
        )
    left, right = a.loc[common].to_numpy(), b.loc[common].to_numpy()
    if method == "same_id":
        return float(np.mean(left == right))
    if method == "ari":
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(left, right))
    raise SegmentationError(f"method={method!r}: use 'same_id' or 'ari'")


def _ids_by_user(labels: pd.DataFrame | pd.Series, name: str) -> pd.Series:
    if isinstance(labels, pd.DataFrame):
        missing = {USER_KEY, "segment_id"} - set(labels.columns)
        if missing:
            raise SegmentationError(
                f"{name} lacks column(s) {sorted(missing)}: pass segment_labels(...) output"
            )
        series = labels.set_index(USER_KEY)["segment_id"]
    else:
        series = labels
    if series.index.has_duplicates:
        raise SegmentationError(
            f"{name} has several rows for some users: compare one snapshot (one day) at a time"
        )
    return series


def segment_profile_figure(
    model: SegmentationModel, *, features: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """Heatmap of the centroids in population z-scores, cells annotated in original units.

    Red = above the average user, blue = below (counts and money compared on the log scale the
    model uses); row labels carry id, name and share of users, which is what someone deciding
    whom to target needs from one picture. ``features`` picks and orders the columns.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    check_is_fitted(model, "cluster_centers_")
    columns = list(features) if features is not None else model.features_
    unknown = [c for c in columns if c not in model.features_]
    if unknown:
        raise SegmentationError(f"features {unknown} are not model features: pick from {FEATURES}")
    z = model.z_centroids_[columns]
    raw = model.centroids_[columns]
    share = model.sizes_ / model.sizes_.sum()
    rows = [f"{sid}: {model.segment_names_[int(sid)]} ({share[sid]:.0%})" for sid in z.index]
    figure = Figure(figsize=(1.1 * len(columns) + 4, 0.6 * len(rows) + 2.2), layout="constrained")
    axes = figure.add_subplot()
    # capped at 3: one extreme segment (the inactive users) would otherwise wash out the rest
    limit = min(3.0, max(1.0, float(np.abs(z.to_numpy()).max())))
    image = axes.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_xticks(
        range(len(columns)), [c.replace("_", " ") for c in columns], rotation=40, ha="right"
    )
    axes.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(columns)):
            strong = abs(z.iat[i, j]) > 0.6 * limit
            axes.text(
                j,
                i,
                _short(raw.iat[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if strong else "black",
            )
    figure.colorbar(image, ax=axes, label="z-score vs all users (log scale for counts, money)")
    axes.set_title(title or f"Customer segments (k={model.k_}, silhouette {model.silhouette_:.2f})")
    return figure


def _short(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
