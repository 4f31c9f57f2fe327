"""Ranking metrics at k for top-k recommendation lists, and the figure that compares models.

A recommender is judged on what a user sees: the first k items of their list. Every metric here
takes the same two frames, so any model (or an oracle) is scored the same way:

* ``recs``  — ``user_id, item_id, rank`` (1 = top; extra columns such as ``score`` are ignored);
* ``truth`` — ``user_id, item_id`` the user turned out to want (optional ``relevance`` for graded
  NDCG). The users of ``truth`` are the users evaluated: a user with relevant items but no
  recommendations counts as a miss, never as absent, so a model cannot look better by staying
  silent. Recommendations for users outside ``truth`` only count towards catalogue coverage.

Definitions (per user, then averaged over the evaluated users; ``R`` = relevant items, ``rel_i`` =
1 if the item at rank i is relevant):

* ``precision_at_k`` = hits in the top k / k (a short list is not padded in its favour);
* ``recall_at_k``    = hits in the top k / |R|;
* ``hit_rate_at_k``  = 1 if the top k holds any relevant item;
* ``map_at_k``       = sum_{i<=k} precision@i * rel_i / min(k, |R|) (so a perfect list scores 1
  even when |R| > k);
* ``ndcg_at_k``      = DCG / ideal DCG with DCG = sum_{i<=k} gain_i / log2(i + 1); gain is 1 for
  a relevant item (binary) or its ``relevance`` value when ``graded=True`` (linear gains);
* ``coverage_at_k``  = distinct items in anyone's top k / catalogue size (only with
  ``n_catalogue``): a model that shows everyone the same ten items scores 10 / n_catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_K_VALUES: tuple[int, ...] = (5, 10, 20)
METRIC_FAMILIES: tuple[str, ...] = (
    "ndcg",
    "map",
    "precision",
    "recall",
    "hit_rate",
    "coverage",
)
_METRIC_NAME = re.compile(r"^(?P<family>[a-z_]+)_at_(?P<k>\d+)$")


def _require_columns(frame: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {missing}; it has {list(frame.columns)} "
            "(expected user_id, item_id and, for recs, rank)"
        )


def ranking_metrics(
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    k_values: Iterable[int] = DEFAULT_K_VALUES,
    n_catalogue: int | None = None,
    *,
    graded: bool = False,
    per_user_values: bool = False,
) -> dict[str, float] | pd.DataFrame:
    """Precision, recall, NDCG, MAP and hit rate at each k (and coverage given the catalogue size).

    Returns ``{"ndcg_at_10": ..., ...}``; an empty ``truth`` raises, because an average over no
    users would read as a model scoring zero.
    """
    ks = sorted({int(k) for k in k_values})
    if not ks or ks[0] < 1:
        raise ValueError(f"k_values must be positive integers, got {list(k_values)}")
    _require_columns(recs, "recs", ("user_id", "item_id", "rank"))
    _require_columns(truth, "truth", ("user_id", "item_id"))
    if graded and "relevance" not in truth.columns:
        raise ValueError("graded=True needs a 'relevance' column in truth")
    if n_catalogue is not None and n_catalogue < 1:
        raise ValueError(f"n_catalogue must be at least 1, got {n_catalogue}")

    relevance = (
        truth["relevance"].astype(float)
        if graded
        else pd.Series(1.0, index=truth.index, dtype=float)
    )
    truth = (
        pd.DataFrame(
            {
                "user_id": truth["user_id"].astype(str).to_numpy(),
                "item_id": truth["item_id"].astype(str).to_numpy(),
                "gain": relevance.to_numpy(),
            }
        )
        .groupby(["user_id", "item_id"], as_index=False, sort=False)["gain"]
        .max()
    )
    truth = truth[truth["gain"] > 0]
    if truth.empty:
        raise ValueError("truth has no relevant (user_id, item_id) pairs to evaluate against")

    k_max = ks[-1]
    top = pd.DataFrame(
        {
            "user_id": recs["user_id"].astype(str).to_numpy(),
            "item_id": recs["item_id"].astype(str).to_numpy(),
            "rank": recs["rank"].to_numpy(),
        }
    )
    if top.duplicated(["user_id", "item_id"]).any():
        raise ValueError("recs list an item twice for the same user; each list must be unique")
    ranks = top["rank"].to_numpy()
    if (ranks < 1).any() or not np.array_equal(ranks, np.round(ranks)):
        raise ValueError("recs ranks must be whole numbers from 1 (the top of the list)")
    if top.duplicated(["user_id", "rank"]).any():
        raise ValueError("recs give two items the same rank for one user")
    top = top[top["rank"] <= k_max]

    users = pd.Index(truth["user_id"].unique())
    n_users = users.size
    row = users.get_indexer(top["user_id"])
    evaluated = top[row >= 0].assign(row=row[row >= 0])
    evaluated = evaluated.merge(truth, on=["user_id", "item_id"], how="left")
    gains = np.zeros((n_users, k_max))
    position = evaluated["rank"].to_numpy().astype(np.int64) - 1
    gains[evaluated["row"].to_numpy(), position] = evaluated["gain"].fillna(0.0).to_numpy()
    hits = gains > 0

    truth_row = users.get_indexer(truth["user_id"])
    n_relevant = np.bincount(truth_row, minlength=n_users)
    ideal = np.zeros((n_users, k_max))
    ordered = truth.assign(row=truth_row).sort_values(["row", "gain"], ascending=[True, False])
    ideal_position = ordered.groupby("row").cumcount().to_numpy()
    keep = ideal_position < k_max
    ideal[ordered["row"].to_numpy()[keep], ideal_position[keep]] = ordered["gain"].to_numpy()[keep]

    discount = 1.0 / np.log2(np.arange(2, k_max + 2))
    cumulative_hits = np.cumsum(hits, axis=1)
    precision_at_i = cumulative_hits / np.arange(1, k_max + 1)
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        hits_k = cumulative_hits[:, k - 1]
        dcg = (gains[:, :k] * discount[:k]).sum(axis=1)
        idcg = (ideal[:, :k] * discount[:k]).sum(axis=1)
        average_precision = (precision_at_i[:, :k] * hits[:, :k]).sum(axis=1) / np.minimum(
            k, n_relevant
        )
        per_user[f"precision_at_{k}"] = hits_k / k
        per_user[f"recall_at_{k}"] = hits_k / n_relevant
        per_user[f"ndcg_at_{k}"] = dcg / idcg
        per_user[f"map_at_{k}"] = average_precision
        per_user[f"hit_rate_at_{k}"] = (hits_k > 0).astype(float)
    if per_user_values:
        return pd.DataFrame({"user_id": users.to_numpy(dtype=object), **per_user})
    result: dict[str, float] = {}
    for k in ks:
        for family in ("precision", "recall", "ndcg", "map", "hit_rate"):
            result[f"{family}_at_{k}"] = float(per_user[f"{family}_at_{k}"].mean())
        if n_catalogue is not None:
            shown = top.loc[top["rank"] <= k, "item_id"].nunique()
            result[f"coverage_at_{k}"] = shown / n_catalogue
    return result


def per_user_ranking_metrics(
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    k_values: Iterable[int] = DEFAULT_K_VALUES,
    *,
    graded: bool = False,
) -> pd.DataFrame:
    """One row per evaluated user with their precision, recall, NDCG, MAP and hit rate at each k.

    The mean of a column is :func:`ranking_metrics`' value; the gate resamples users from this
    to judge whether one model's lead over another is more than noise.
    """
    return ranking_metrics(recs, truth, k_values, graded=graded, per_user_values=True)


def metrics_at_k_figure(
    metrics_by_model: Mapping[str, Mapping[str, float]], *, title: str | None = None
) -> Figure:
    """One panel per metric family, metric against k, a line per model (popularity dashed).

    Reading the curves side by side shows whether a model's lead over the baseline holds at every
    list length or only at the k it was selected for.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not metrics_by_model:
        raise ValueError("metrics_by_model is empty: nothing to plot")
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for model, metrics in metrics_by_model.items():
        for name, value in metrics.items():
            match = _METRIC_NAME.match(name)
            if match is None or match["family"] not in METRIC_FAMILIES:
                continue
            family = match["family"]
            curves.setdefault(family, {}).setdefault(model, []).append(
                (int(match["k"]), float(value))
            )
    if not curves:
        raise ValueError(
            "no '<metric>_at_<k>' entries found; expected names such as 'ndcg_at_10' "
            f"for metrics {', '.join(METRIC_FAMILIES)}"
        )
    families = [f for f in METRIC_FAMILIES if f in curves]
    columns = min(3, len(families))
    rows = -(-len(families) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False, layout="constrained"
    )
    for axis, family in zip(axes.ravel(), families, strict=False):
        for model, points in curves[family].items():
            ks, values = zip(*sorted(points), strict=True)
            baseline = model == "popularity"
            axis.plot(
                ks,
                values,
                marker="o",
                label=model,
                linestyle="--" if baseline else "-",
                color="grey" if baseline else None,
            )
        axis.set_xticks(sorted({k for points in curves[family].values() for k, _ in points}))
        axis.set_title(family.replace("_", " "))
        axis.set_xlabel("k")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    for axis in axes.ravel()[len(families) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    return figure
