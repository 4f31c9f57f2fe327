"""What every model's training run shares: the window, the run to log, its card, its MLflow
model, and the models at use time (the champion, its recommendations, its holdout scores)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.registry import CHAMPION

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import HoldoutScores
    from pipelines.registry import Lineage, TrainingRun

log = logging.getLogger(__name__)

HOLDOUT_DIR = "holdout"
REFERENCE_ROWS = 20_000
REFERENCE_USERS = 2000  # the monitor's sample of active users, same size
RECOMMEND_K = 10
SKOPS_TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "pipelines.models.")


class TrainingError(Exception):
    """A model that cannot be trained as asked, with what to do about it."""


class NotEnoughHistory(TrainingError):
    """The window holds too few days for the model's split: a young shop, not a broken run."""


def last_feature_day(settings: Settings) -> date:
    """The last day whose features were computed: where a training window ends by default."""
    from pipelines.data.partitions import partition_days

    days = partition_days(settings.feast_offline_dir, "user_activity")
    if not days:
        raise TrainingError(
            f"no features under {settings.feast_offline_dir}: ingest and compute some days first "
            "(`personalize backfill ingest --start D1 --end D2 --follow`)"
        )
    return days[-1]


def training_window(settings: Settings, end: date) -> tuple[date, date]:
    """``train_window_days`` ending with ``end``, starting no earlier than the first curated
    events: before them there is no data, and labels there would read as "no purchase"."""
    from pipelines.data.partitions import partition_days

    first = end - timedelta(days=settings.train_window_days - 1)
    known = [d for d in partition_days(settings.curated_dir, "events") if first <= d <= end]
    if not known:
        raise TrainingError(
            f"no curated events between {first} and {end}: ingest those days first "
            f"(`personalize backfill ingest --start {first} --end {end} --follow`)"
        )
    return known[0], end


def generator_truth(settings: Settings, name: str) -> pd.DataFrame | None:
    import pandas as pd

    path = settings.truth_dir / name
    return pd.read_parquet(path) if path.exists() else None


def training_run(
    settings: Settings,
    model: str,
    purpose: str,
    *,
    log_model: Any,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    figures: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    card_rows: list[tuple[str, float | None, float | None]],
    caveats: list[str],
    reference: pd.DataFrame,
    training_frame: pd.DataFrame,
    lineage: Lineage,
    extra_tags: Mapping[str, str] | None = None,
) -> TrainingRun:
    from pipelines.registry import TrainingRun

    card = model_card(model, purpose, lineage, card_rows, [c for c in caveats if c])
    return TrainingRun(
        model=model,
        log_model=log_model,
        params={**params, "seed": settings.train_seed, "window_days": settings.train_window_days},
        metrics=metrics,
        figures=figures,
        tables=tables,
        model_card=card,
        reference_sample=reference,
        training_frame=training_frame,
        lineage=lineage,
        tags={"profile": settings.profile, **(extra_tags or {})},
    )


def model_card(
    model: str,
    purpose: str,
    lineage: Lineage,
    rows: list[tuple[str, float | None, float | None]],
    caveats: list[str],
) -> str:
    """A short markdown card: purpose, data window, metrics vs baseline, caveats."""
    lines = [
        f"# {model}",
        "",
        f"**Purpose.** {purpose}",
        "",
        f"**Data.** Curated days {lineage.window_start} .. {lineage.window_end} "
        f"({len(lineage.partitions)} partitions, content hash `{lineage.content_hash[:12]}`, "
        f"{len(lineage.gx_run_ids)} GX validation runs)"
        + (
            f"; features from Feast service `{lineage.feature_service}`."
            if lineage.feature_service
            else "."
        ),
        "",
        "| metric (test) | model | baseline |",
        "|---|---|---|",
    ]
    for name, value, baseline in rows:
        lines.append(f"| {name} | {_fmt(value)} | {_fmt(baseline)} |")
    lines += ["", "**Caveats.**", *[f"- {c}" for c in caveats]]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def oracle_note(oracle: float | None, value: float | None, metric: str) -> str:
    if oracle is None or value is None or not oracle:
        return ""
    return (
        f"Synthetic data: the true process reaches {metric} {oracle:.3f}; "
        f"this model {value / oracle:.0%} of it."
    )


def input_example(frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """An input example MLflow can validate against the signature: rows without nulls if any."""
    complete = frame.dropna()
    return (complete if len(complete) else frame).head(rows)


def window_params(first: date, end: date) -> dict[str, str]:
    return {"window_start": first.isoformat(), "window_end": end.isoformat()}


def sample_rows(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)


def sample_users(history: pd.DataFrame, settings: Settings, users: int = 2000) -> list[str]:
    import numpy as np

    ids = np.sort(history["user_id"].astype(str).unique())
    if len(ids) <= users:
        return list(ids)
    return list(np.random.default_rng(settings.train_seed).choice(ids, users, replace=False))


def sklearn_logger(estimator: Any, example: pd.DataFrame | None, *, skops: bool) -> Any:
    """``log_model(name)`` for the registry: sklearn flavour, pinned requirements, signature."""

    def log_model(name: str) -> Any:
        import mlflow

        from pipelines.registry import pinned_requirements

        options: dict[str, Any] = {"serialization_format": "cloudpickle"}
        if skops:
            options = {
                "serialization_format": "skops",
                "skops_trusted_types": skops_trusted_types(estimator),
            }
        signature = None
        if example is not None:
            from mlflow.models import infer_signature

            output = (
                estimator.predict_proba(example)[:, 1]
                if hasattr(estimator, "predict_proba")
                else estimator.predict(example)
            )
            signature = infer_signature(example, output)
        return mlflow.sklearn.log_model(
            estimator,
            name=name,
            signature=signature,
            input_example=example,
            pip_requirements=pinned_requirements(),
            **options,
        )

    return log_model


def skops_trusted_types(estimator: Any) -> list[str]:
    """The types skops must be told to trust to load ``estimator``: only ours and the stack's.

    skops refuses to load any type not on its default list; rather than keep a hand-written
    list in step with sklearn's internals, ask skops which types this model uses and trust
    those from sklearn, numpy, scipy and this package — anything else fails loudly.
    """
    import skops.io

    from pipelines.models.propensity import SKOPS_TRUSTED_TYPES

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    # reviewed one by one (HistGradientBoosting keeps a functools.partial of check_array)
    reviewed = set(SKOPS_TRUSTED_TYPES)
    foreign = [
        t for t in untrusted if not t.startswith(SKOPS_TRUSTED_MODULES) and t not in reviewed
    ]
    if foreign:
        raise TrainingError(
            f"the model uses types outside sklearn/numpy/scipy/pipelines: {foreign}; "
            "log it with cloudpickle or extend SKOPS_TRUSTED_MODULES after review"
        )
    return sorted(untrusted)


def champion_model(settings: Settings, model: str) -> Any | None:
    """``model@champion`` as a native object, resolved now; None when there is none."""
    from pipelines.registry import aliases, load_version

    version = aliases(settings, model).get(CHAMPION)
    return None if version is None else load_version(settings, model, version)


def current_segments(settings: Settings, day: date) -> pd.Series | None:
    """user -> segment as published on or before ``day`` (for new users' popularity)."""
    from pipelines.data.partitions import partition_days
    from pipelines.features.offline import read_offline_partition

    days = [d for d in partition_days(settings.feast_offline_dir, "user_segment") if d <= day]
    if not days:
        return None
    labels = read_offline_partition(settings.feast_offline_dir, "user_segment", days[-1])
    if labels is None or labels.empty:
        return None
    return labels.set_index("user_id")["segment_id"]


def recommended_categories(model: Any, items: pd.DataFrame, users: list[str]) -> pd.DataFrame:
    """Long frame user_id, rank, item_id, category of ``model``'s top-k: what drift compares."""
    recs = model.recommend(users, k=RECOMMEND_K)
    categories = items.drop_duplicates("item_id", keep="last").set_index("item_id")["category"]
    return recs.assign(category=recs["item_id"].map(categories).astype("string").fillna("unknown"))


def load_holdout(settings: Settings, model: str, run_id: str) -> dict[str, pd.DataFrame]:
    import mlflow
    import pandas as pd

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=HOLDOUT_DIR, tracking_uri=settings.mlflow_tracking_uri
    )
    return {path.stem: pd.read_parquet(path) for path in sorted(Path(local).glob("*.parquet"))}


def ranking_evidence(
    estimator: Any, users: list[str], seen: pd.DataFrame, truth: pd.DataFrame
) -> HoldoutScores:
    """Per-user metrics@10 of ``estimator``'s unseen top-10 against ``truth``, for the gate."""
    from pipelines.gates import HoldoutScores
    from pipelines.models.ranking import per_user_ranking_metrics

    recs = recommend_unseen(estimator, users, seen, RECOMMEND_K)
    per_user = per_user_ranking_metrics(recs, truth, k_values=(RECOMMEND_K,))
    per_unit = {c: per_user[c].to_numpy() for c in per_user.columns if c != "user_id"}
    return HoldoutScores(
        metrics={c: float(v.mean()) for c, v in per_unit.items()},
        per_unit=per_unit,
        unit_ids=per_user["user_id"].to_numpy(),
    )


def recommend_unseen(estimator: Any, users: list[str], seen: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-k per user leaving out what the *holdout* says they have seen, whatever the model
    itself was trained on: an older champion is judged on the same lists as the challenger."""
    seen_per_user = seen.groupby("user_id").size()
    extra = int(seen_per_user.max()) if len(seen_per_user) else 0
    recs = estimator.recommend(users, k=k + min(extra, 200))
    recs = recs.assign(user_id=recs["user_id"].astype(str), item_id=recs["item_id"].astype(str))
    marked = recs.merge(seen.assign(_seen=True), on=["user_id", "item_id"], how="left")
    fresh = marked[marked["_seen"].isna()].drop(columns="_seen")
    fresh = fresh.sort_values(["user_id", "rank"], kind="stable")
    fresh["rank"] = fresh.groupby("user_id").cumcount() + 1
    return fresh[fresh["rank"] <= k].reset_index(drop=True)


def first_feature_day(settings: Settings) -> date:
    """The first day with computed features: where every window's history begins."""
    from pipelines.data.partitions import partition_days

    return partition_days(settings.feast_offline_dir, "user_activity")[0]
