"""Binary-classification metrics and plots, shared by every model that outputs a probability.

Every function takes the true labels ``y`` (0/1) and the scores ``p`` (probabilities in [0, 1]) of
the same rows, in that order, so two models are compared on the same rows by calling the same
function twice. Metrics are pure numpy (plus scikit-learn's ranking metrics); plots return a
matplotlib ``Figure`` built without pyplot, so nothing global is left open and a caller (the
registry) can log and close it.

What each number answers:

* ``roc_auc`` -- how well the scores *rank* buyers above non-buyers (0.5 = chance);
* ``pr_auc`` -- average precision: ranking quality where positives are rare;
* ``brier`` -- mean squared error of the probabilities (calibration and sharpness together);
* ``ece`` -- expected calibration error: mean |observed rate - mean score| over score bins;
* ``lift_top_decile`` -- how many times the base rate the top 10% of scores converts: what a
  campaign that targets the top tenth of users gains over targeting at random.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

EPSILON = 1e-15  # log loss clips probabilities away from 0 and 1


def _checked(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as 0/1 int and ``p`` as float arrays of one length; ValueError naming what is wrong."""
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(p, dtype=float).ravel()
    if y_arr.size == 0:
        raise ValueError("y is empty: metrics need at least one row")
    if y_arr.size != p_arr.size:
        raise ValueError(f"y has {y_arr.size} rows but p has {p_arr.size}; pass the same rows")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        bad = np.unique(y_arr[~np.isin(y_arr, (0.0, 1.0))])[:5]
        raise ValueError(f"y must be 0/1 labels; found {bad.tolist()}")
    if not np.isfinite(p_arr).all():
        raise ValueError(f"p has {int((~np.isfinite(p_arr)).sum())} NaN/inf score(s)")
    if (p_arr < 0).any() or (p_arr > 1).any():
        raise ValueError(
            f"p must be probabilities in [0, 1]; found range [{p_arr.min():g}, {p_arr.max():g}]"
        )
    return y_arr.astype(np.int64), p_arr


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def roc_auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve; NaN when ``y`` holds a single class (AUC is undefined there)."""
    from sklearn.metrics import roc_auc_score

    y_arr, p_arr = _checked(y, p)
    return float(roc_auc_score(y_arr, p_arr)) if _both_classes(y_arr) else math.nan


def pr_auc(y: ArrayLike, p: ArrayLike) -> float:
    """Average precision (step-wise area under the precision-recall curve); NaN without positives.

    Average precision rather than the trapezoidal area: the trapezoid interpolates linearly
    between precision-recall points, which is optimistic.
    """
    from sklearn.metrics import average_precision_score

    y_arr, p_arr = _checked(y, p)
    return float(average_precision_score(y_arr, p_arr)) if y_arr.sum() > 0 else math.nan


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (0 is perfect)."""
    from sklearn.metrics import brier_score_loss

    y_arr, p_arr = _checked(y, p)
    return float(brier_score_loss(y_arr, p_arr, labels=[0, 1]))


def log_loss(y: ArrayLike, p: ArrayLike) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15]."""
    from sklearn.metrics import log_loss as sklearn_log_loss

    y_arr, p_arr = _checked(y, p)
    q = np.clip(p_arr, EPSILON, 1 - EPSILON)
    return float(sklearn_log_loss(y_arr, q, labels=[0, 1]))


def calibration_bins(y: ArrayLike, p: ArrayLike, bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-width score bins on [0, 1]: count, mean score and observed rate of each bin.

    A score of exactly 1.0 falls in the last bin. Empty bins have count 0 and NaN means. This is
    the table behind both :func:`expected_calibration_error` and the reliability diagram.
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins={bins!r}: expected a positive integer")
    y_arr, p_arr = _checked(y, p)
    index = np.minimum((p_arr * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins).astype(float)
    score_sum = np.bincount(index, weights=p_arr, minlength=bins)
    positive_sum = np.bincount(index, weights=y_arr.astype(float), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.where(count > 0, score_sum / count, np.nan)
        observed = np.where(count > 0, positive_sum / count, np.nan)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {"edges": edges, "count": count, "mean_score": mean_score, "observed": observed}


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Sum over equal-width bins of (share of rows) x |observed rate - mean score|.

    0 means that, bin by bin, the scores are the rates that happen; a campaign that budgets on
    predicted probabilities needs this, not just a good ranking.
    """
    table = calibration_bins(y, p, bins)
    filled = table["count"] > 0
    weights = table["count"][filled] / table["count"].sum()
    gaps = np.abs(table["observed"][filled] - table["mean_score"][filled])
    return float(np.sum(weights * gaps))


def top_positives(y: ArrayLike, p: ArrayLike, k: float) -> float:
    """Expected number of positives among the ``k`` highest scores, ties shared out evenly.

    Scores tie a lot (isotonic calibration gives steps), and which tied row makes the cut is
    arbitrary; counting a tied group pro rata makes the answer independent of row order.
    ``k`` may be fractional (a point on the gains curve between two rows).
    """
    y_arr, p_arr = _checked(y, p)
    k = float(np.clip(k, 0, y_arr.size))
    if k == 0:
        return 0.0
    order = np.argsort(-p_arr, kind="stable")
    scores, labels = p_arr[order], y_arr[order]
    threshold = scores[math.ceil(k) - 1]
    above = scores > threshold
    tied = scores == threshold
    n_above = int(above.sum())
    share = (k - n_above) / int(tied.sum())
    return float(labels[above].sum() + share * labels[tied].sum())


def lift_at(y: ArrayLike, p: ArrayLike, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` of scores divided by the overall positive rate.

    2.0 means targeting the top tenth by score finds twice the buyers of targeting at random;
    NaN without positives. Ties at the cut are shared pro rata (see :func:`top_positives`).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r}: expected a share in (0, 1]")
    y_arr, p_arr = _checked(y, p)
    positives = int(y_arr.sum())
    if positives == 0:
        return math.nan
    k = fraction * y_arr.size
    return float((top_positives(y_arr, p_arr, k) / k) / (positives / y_arr.size))


def classification_metrics(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """All the numbers above for one set of rows, as a flat dict of floats (MLflow-ready)."""
    y_arr, p_arr = _checked(y, p)
    return {
        "roc_auc": roc_auc(y_arr, p_arr),
        "pr_auc": pr_auc(y_arr, p_arr),
        "brier": brier(y_arr, p_arr),
        "log_loss": log_loss(y_arr, p_arr),
        "ece": expected_calibration_error(y_arr, p_arr),
        "lift_top_decile": lift_at(y_arr, p_arr, 0.1),
        "base_rate": float(y_arr.mean()),
        "mean_score": float(p_arr.mean()),
        "rows": float(y_arr.size),
    }


# ---- plots ------------------------------------------------------------------------------------


def _named_scores(scores: ArrayLike | Mapping[str, ArrayLike]) -> dict[str, ArrayLike]:
    """One curve per name: a bare array is the curve called "model"."""
    if isinstance(scores, Mapping):
        if not scores:
            raise ValueError("scores is an empty mapping: pass at least one named score array")
        return dict(scores)
    return {"model": scores}


def _figure(ncols: int = 1, nrows: int = 1, **kwargs) -> tuple[Figure, np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * ncols, 4.5 * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False, **kwargs)
    return figure, axes


def plot_roc(
    y: ArrayLike, scores: ArrayLike | Mapping[str, ArrayLike], *, title: str = "ROC"
) -> Figure:
    """ROC curves of one or several score arrays (name -> scores) on the same rows, with AUCs
    (scikit-learn's ``RocCurveDisplay``)."""
    from sklearn.metrics import RocCurveDisplay

    figure, axes = _figure()
    ax = axes[0, 0]
    for name, p in _named_scores(scores).items():
        y_arr, p_arr = _checked(y, p)
        if not _both_classes(y_arr):
            raise ValueError("plot_roc needs both classes in y")
        RocCurveDisplay.from_predictions(y_arr, p_arr, ax=ax, name=name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return figure


def plot_precision_recall(
    y: ArrayLike, scores: ArrayLike | Mapping[str, ArrayLike], *, title: str = "Precision-recall"
) -> Figure:
    """Precision-recall curves with average precision (scikit-learn's
    ``PrecisionRecallDisplay``); the dashed line is the base rate."""
    from sklearn.metrics import PrecisionRecallDisplay

    figure, axes = _figure()
    ax = axes[0, 0]
    base_rate = None
    for name, p in _named_scores(scores).items():
        y_arr, p_arr = _checked(y, p)
        if y_arr.sum() == 0:
            raise ValueError("plot_precision_recall needs at least one positive in y")
        PrecisionRecallDisplay.from_predictions(y_arr, p_arr, ax=ax, name=name)
        base_rate = y_arr.mean()
    ax.axhline(base_rate, linestyle="--", color="grey", linewidth=1, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right")
    return figure


def plot_calibration(
    y: ArrayLike,
    scores: ArrayLike | Mapping[str, ArrayLike],
    *,
    bins: int = 10,
    title: str = "Calibration",
) -> Figure:
    """Reliability diagram (scikit-learn's ``CalibrationDisplay``, equal-width bins): observed
    rate against mean score per bin, and how many rows per bin.

    Points on the diagonal are calibrated; the lower panel shows where the scores live, since a
    bin with few rows says little.
    """
    from sklearn.calibration import CalibrationDisplay

    figure, axes = _figure(nrows=2, sharex=True, height_ratios=[3, 1])
    top, bottom = axes[0, 0], axes[1, 0]
    for number, (name, p) in enumerate(_named_scores(scores).items()):
        y_arr, p_arr = _checked(y, p)
        ece = expected_calibration_error(y_arr, p_arr, bins)
        CalibrationDisplay.from_predictions(
            y_arr,
            p_arr,
            n_bins=bins,
            strategy="uniform",
            ax=top,
            name=f"{name} (ECE {ece:.3f})",
            ref_line=number == 0,
        )
        table = calibration_bins(y_arr, p_arr, bins)
        centers = (table["edges"][:-1] + table["edges"][1:]) / 2
        bottom.step(centers, table["count"], where="mid", label=name)
    top.set(xlabel="", ylabel="observed rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    top.legend(loc="upper left")
    bottom.set(xlabel="mean predicted probability", ylabel="rows", yscale="symlog")
    return figure


def gains_curve(y: ArrayLike, p: ArrayLike, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """(share of rows targeted, share of all positives found) at ``points`` evenly spaced shares."""
    y_arr, p_arr = _checked(y, p)
    positives = y_arr.sum()
    shares = np.linspace(0.0, 1.0, points)
    found = np.array([top_positives(y_arr, p_arr, s * y_arr.size) for s in shares])
    return shares, found / positives if positives else np.full(points, np.nan)


def plot_gains(
    y: ArrayLike, scores: ArrayLike | Mapping[str, ArrayLike], *, title: str = "Gains and lift"
) -> Figure:
    """Cumulative gains (left) and lift (right) as the targeted share of users grows.

    The question a marketer asks: "if I target the top x% by score, what share of the buyers do
    I reach, and how many times better than random is that?".
    """
    figure, axes = _figure(ncols=2)
    gains_ax, lift_ax = axes[0, 0], axes[0, 1]
    for name, p in _named_scores(scores).items():
        shares, found = gains_curve(y, p)
        gains_ax.plot(shares, found, label=f"{name} (lift@10% {lift_at(y, p, 0.1):.2f})")
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = found[1:] / shares[1:]
        lift_ax.plot(shares[1:], lift, label=name)
    gains_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="random")
    gains_ax.set(
        xlabel="share of users targeted (by score)",
        ylabel="share of positives reached",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    gains_ax.legend(loc="lower right")
    lift_ax.axhline(1.0, linestyle="--", color="grey", linewidth=1)
    lift_ax.set(xlabel="share of users targeted (by score)", ylabel="lift", xlim=(0, 1))
    lift_ax.legend(loc="upper right")
    return figure
