"""Training runs of the three models, end to end: data in, registered and gated version out.

The ``train`` DAG calls one function per task: :func:`train_for_run` (build the training data,
fit, evaluate, log to MLflow, register as ``challenger``), :func:`gate_for_run` (score challenger
and champion on the challenger's fresh holdout and bless or reject), :func:`promote_for_run`
(carry the gate's decision out) and :func:`publish_segments_for_run`. The same functions back
``personalize train``. Every model resolves ``@champion`` at the moment it is used, so an alias
moved by hand in the MLflow UI is what the next gate compares against.

Each training run stores, beside the model, its *holdout* (``holdout/``: the test rows, or the
test interactions and the history they must be novel to) so that a gate — now or re-run later —
judges challenger and champion on exactly the same data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.models.windows import reference_days
from pipelines.registry import CHAMPION, MODEL_NAMES

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import GateRecord, HoldoutScores
    from pipelines.registry import Lineage, TrainingRun

log = logging.getLogger(__name__)

FEATURE_SERVICES = {"propensity": "propensity_v1", "recommender": "recommender_v1"}
HOLDOUT_DIR = "holdout"
REFERENCE_ROWS = 20_000
REFERENCE_USERS = 2000  # the monitor's sample of active users, same size
RECOMMEND_K = 10
# k = 3 has the best silhouette but only splits buyers from non-buyers; 4..8 gives segments a
# campaign can use (window shoppers, loyal high spenders, ...) at a silhouette still ~0.35.
IMPORTANCE_ROWS = 3000
SEGMENT_K_RANGE = (4, 8)
RECOMMENDER_VALID_DAYS = 7
RECOMMENDER_TEST_DAYS = 7
PURPOSE = {
    "propensity": "Probability that a customer purchases within the next N days "
    "(N = propensity_horizon_days, default 7), for targeting and budget allocation.",
    "recommender": "Top-k items a customer is most likely to be interested in next (interest "
    "prediction from views, carts and purchases), for on-site and e-mail recommendations.",
    "segmentation": "Customer segments from recency, frequency, monetary value and engagement, "
    "for reporting, campaign targeting and as a feature of the other models.",
}


class TrainingError(Exception):
    """A model that cannot be trained as asked, with what to do about it."""


class NotEnoughHistory(TrainingError):
    """The window holds too few days for the model's split: a young shop, not a broken run."""


@dataclass(frozen=True)
class TrainedModel:
    model: str
    version: int
    run_id: str
    end_day: date
    metrics: dict[str, float]

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "end_day": self.end_day.isoformat()}


# ---- days -------------------------------------------------------------------------------------


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


def model_requested(model: str, context: Mapping[str, Any]) -> bool:
    """A run's conf may name the models to train (``{"models": ["propensity"]}``); default all."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    wanted = conf.get("models") or list(MODEL_NAMES)
    if isinstance(wanted, str):  # a triggered run's templated conf: "propensity,recommender"
        wanted = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(MODEL_NAMES))
    if unknown:
        raise TrainingError(f"unknown model(s) {unknown} in the run conf; expected {MODEL_NAMES}")
    return model in wanted


def train_day(settings: Settings, context: Mapping[str, Any]) -> date:
    """The conf day, else the last day with features (a weekly run trains on all it has)."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("day"):
        from pipelines.days import parse_day

        return parse_day(conf["day"])
    return last_feature_day(settings)


# ---- DAG task bodies --------------------------------------------------------------------------


def train_for_run(model: str, context: Mapping[str, Any]) -> dict[str, Any] | None:
    from pipelines.config import get_settings

    if not model_requested(model, context):
        return None
    settings = get_settings()
    try:
        return train_model(settings, model, train_day(settings, context)).to_xcom()
    except NotEnoughHistory as young:
        from airflow.sdk.exceptions import AirflowSkipException

        # a retrain asked for on a shop with a week of history is not an incident: the task is
        # skipped with the reason, the champion stays, and the next run tries again
        raise AirflowSkipException(str(young)) from young


def gate_for_run(model: str, trained: Mapping[str, Any] | None) -> dict[str, Any] | None:
    from pipelines.config import get_settings

    if not trained:
        return None
    return gate_version(get_settings(), model, int(trained["version"])).to_dict()


def promote_for_run(model: str, gated: Mapping[str, Any] | None) -> dict[str, Any] | None:
    from pipelines.config import get_settings
    from pipelines.gates import GateRecord

    if not gated:
        return None
    return carry_out_gate(get_settings(), GateRecord.from_dict(dict(gated)))


def publish_segments_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    from pipelines.config import get_settings

    settings = get_settings()
    return publish_segments(settings, train_day(settings, context))


def models_event_extra(context: Mapping[str, Any]) -> dict[str, Any]:
    from pipelines.config import get_settings
    from pipelines.registry import aliases

    settings = get_settings()
    return {
        "day": train_day(settings, context).isoformat(),
        "champions": {m: aliases(settings, m).get(CHAMPION) for m in MODEL_NAMES},
    }


# ---- training ---------------------------------------------------------------------------------


def train_model(settings: Settings, model: str, end: date | None = None) -> TrainedModel:
    """Train ``model`` on the window ending with ``end`` and register it as ``challenger``."""
    from pipelines.registry import log_and_register

    trainers = {
        "propensity": propensity_run,
        "recommender": recommender_run,
        "segmentation": segmentation_run,
    }
    if model not in trainers:
        raise TrainingError(f"unknown model {model!r}; expected one of {', '.join(MODEL_NAMES)}")
    end = end or last_feature_day(settings)
    run = trainers[model](settings, end)
    registered = log_and_register(settings, run)
    log.info("registered %s v%s (run %s)", model, registered.version, registered.run_id)
    return TrainedModel(model, registered.version, registered.run_id, end, dict(run.metrics))


def _window(settings: Settings, end: date) -> tuple[date, date]:
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


def _truth(settings: Settings, name: str) -> pd.DataFrame | None:
    import pandas as pd

    path = settings.truth_dir / name
    return pd.read_parquet(path) if path.exists() else None


def propensity_run(settings: Settings, end: date) -> TrainingRun:
    from pipelines.data.generator import LABEL_HORIZON_DAYS as TRUTH_HORIZON_DAYS
    from pipelines.features.offline import read_curated_window
    from pipelines.features.training import features_at_days, training_set
    from pipelines.models.propensity import (
        KEY_COLUMNS,
        LABEL,
        fit_propensity,
        label_complete_days,
        purchase_labels,
        with_oracle,
    )
    from pipelines.registry import curated_lineage

    horizon = settings.propensity_horizon_days
    first, end = _window(settings, end)
    days = label_complete_days(end, first, horizon)
    if len(days) < 6:
        raise NotEnoughHistory(
            f"propensity: the window {first}..{end} leaves {len(days)} snapshot day(s) with "
            f"complete {horizon}-day labels; it needs at least 6 "
            f"(ingest more days, or set PERSONALIZE_TRAIN_WINDOW_DAYS higher)"
        )
    events, users, _ = read_curated_window(settings.curated_dir, end, days=(end - first).days + 1)
    labels = purchase_labels(events, users, days, horizon)
    frame = training_set(labels, FEATURE_SERVICES["propensity"], settings=settings)
    result = fit_propensity(
        frame,
        gap_days=horizon,
        seed=settings.train_seed,
        time_budget_s=settings.train_time_budget_seconds,
        # the ranking of features is stable on a few thousand rows; 10k cost ~6 s a retrain
        importance_rows=IMPORTANCE_ROWS,
    )
    # the generator's truth is a 7-day probability: no oracle for another horizon
    truth = _truth(settings, "purchase_probability_7d.parquet")
    if truth is not None and horizon == TRUTH_HORIZON_DAYS:
        try:
            result = with_oracle(result, truth)
        except ValueError as mismatch:  # a truth of another shop (or an imported log's state)
            log.warning("propensity: no oracle figures: %s", mismatch)
    keys = result.test_predictions[list(KEY_COLUMNS)]
    holdout = frame.merge(keys, on=list(KEY_COLUMNS), how="inner")
    features = list(result.feature_columns)
    # drift compares like with like: every user's features as a day of monitoring sees them,
    # with the model's scores, over the window's last whole week -- a day's 1-day counts then
    # meet every weekday's, not only the weekday the window happened to end on
    reference = features_at_days(
        settings, FEATURE_SERVICES["propensity"], reference_days(first, end)
    )
    reference = _sample(reference, REFERENCE_ROWS, settings.train_seed)
    reference = reference[[*KEY_COLUMNS, *features]].assign(
        score=result.model.predict_proba(reference)[:, 1]
    )
    metrics = result.metrics()
    chosen, baseline = result.test_metrics, result.baseline_test_metrics
    rows = [
        (name, chosen.get(name), baseline.get(name))
        for name in ("roc_auc", "pr_auc", "brier", "ece", "lift_top_decile")
    ]
    rows += [
        (f"roc_auc of the {name} rule", chosen.get("roc_auc"), found["roc_auc"])
        for name, found in result.heuristic_test_metrics.items()
    ]
    caveats = [
        f"Labels need {horizon} days to mature: snapshots stop at {days[-1]}.",
        f"Features left out, unsupported by this log: {', '.join(result.unsupported_columns)} "
        f"(event types absent from training: {', '.join(result.absent_event_types) or '-'})"
        if result.unsupported_columns
        else "",
        f"Empty feature columns ignored: {', '.join(result.empty_columns)}"
        if result.empty_columns
        else "",
        "The hyper-parameter search was cut by its time budget." if result.search_truncated else "",
        _oracle_note(metrics.get("oracle_roc_auc"), chosen.get("roc_auc"), "ROC-AUC"),
    ]
    lineage = curated_lineage(settings, first, end, feature_service=FEATURE_SERVICES["propensity"])
    return _training_run(
        settings,
        "propensity",
        log_model=_sklearn_logger(result.model, _example(frame[features]), skops=True),
        params={**result.log_params(), **_window_params(first, end)},
        metrics=metrics,
        figures=result.figures(),
        tables={
            "tables/candidates.csv": result.candidates,
            "tables/permutation_importance.csv": result.importance,
            "tables/test_predictions.parquet": result.test_predictions,
            f"{HOLDOUT_DIR}/rows.parquet": holdout[[*KEY_COLUMNS, LABEL, *features]],
        },
        card_rows=rows,
        caveats=caveats,
        reference=reference,
        training_frame=frame,
        lineage=lineage,
    )


def recommender_candidates(settings: Settings, items: pd.DataFrame | None) -> dict[str, Any]:
    """The candidates ``settings.recommender_candidates`` names (all of them when empty)."""
    from pipelines.models.recommender import default_candidates, label_family

    candidates = default_candidates(items)
    wanted = [n.strip() for n in settings.recommender_candidates.split(",") if n.strip()]
    if not wanted:
        return candidates
    family = {label: label_family(label) for label in candidates}
    unknown = sorted(set(wanted) - set(family.values()))
    if unknown:
        raise TrainingError(
            f"PERSONALIZE_RECOMMENDER_CANDIDATES names {', '.join(unknown)}; "
            f"known: {', '.join(sorted(set(family.values())))}"
        )
    return {label: model for label, model in candidates.items() if family[label] in wanted}


SEEN_EXCLUDED_NOTE = (
    "Seen items are excluded at recommendation time (repeat purchases are not recommended)."
)


def recommender_run(settings: Settings, end: date) -> TrainingRun:
    import pandas as pd

    from pipelines.features.offline import read_curated_window
    from pipelines.models.pyfunc import recommender_logger
    from pipelines.models.ranking import metrics_at_k_figure
    from pipelines.models.recommender import evaluate_events, split_interactions
    from pipelines.registry import curated_lineage

    first, end = _window(settings, end)
    needed = RECOMMENDER_VALID_DAYS + RECOMMENDER_TEST_DAYS + 1
    if (end - first).days + 1 < needed:
        raise NotEnoughHistory(
            f"recommender: the window {first}..{end} holds {(end - first).days + 1} day(s); "
            f"the split needs at least {needed} ({RECOMMENDER_VALID_DAYS} validation, "
            f"{RECOMMENDER_TEST_DAYS} test, and days to train on): ingest more days"
        )
    events, _, items = read_curated_window(settings.curated_dir, end, days=(end - first).days + 1)
    if events.empty:
        raise TrainingError(f"recommender: no curated events in {first}..{end}")
    truth_dir = settings.truth_dir if (settings.truth_dir / "scenario.json").exists() else None
    segments = current_segments(settings, end)
    protocol = {
        "items": items,
        "segments": segments,
        "candidates": recommender_candidates(settings, items),
        "valid_days": RECOMMENDER_VALID_DAYS,
        "test_days": RECOMMENDER_TEST_DAYS,
        "k": RECOMMEND_K,
        "seed": settings.train_seed,
        "exclude_seen": settings.recommender_exclude_seen,
    }
    try:
        evaluation = evaluate_events(events, truth_dir=truth_dir, **protocol)
    except ValueError as mismatch:
        if truth_dir is None:
            raise
        # the truth under <home>/truth is of another shop: evaluate without the oracle
        log.warning("recommender: no oracle figures: %s", mismatch)
        evaluation = evaluate_events(events, truth_dir=None, **protocol)
    include_seen = settings.recommender_exclude_seen != "true"  # the truth selection used
    split = split_interactions(
        events,
        valid_days=RECOMMENDER_VALID_DAYS,
        test_days=RECOMMENDER_TEST_DAYS,
        include_seen=include_seen,
    )
    model = evaluation.selection.model
    summary = evaluation.to_dict()
    chosen = evaluation.metrics[evaluation.selection.name]
    popularity = evaluation.metrics["popularity"]
    metrics = {f"test_{k}": v for k, v in chosen.items()}
    metrics.update({f"baseline_test_{k}": v for k, v in popularity.items()})
    if "buy_again" in evaluation.metrics:
        again = evaluation.metrics["buy_again"]
        metrics.update({f"buy_again_test_{k}": v for k, v in again.items()})
    if "oracle" in evaluation.metrics:
        metrics.update({f"oracle_{k}": v for k, v in evaluation.metrics["oracle"].items()})
        oracle = evaluation.metrics["oracle"].get("ndcg_at_10")
        if oracle:
            metrics["ndcg_at_10_vs_oracle"] = chosen["ndcg_at_10"] / oracle
    if summary.get("ndcg_at_10_lift") is not None:
        metrics["ndcg_at_10_vs_popularity"] = summary["ndcg_at_10_lift"]
    metrics.update({f"valid_{k}": v for k, v in evaluation.selection.scores.items()})
    history = split.train_and_valid
    seen = history[["user_id", "item_id"]].astype(str).drop_duplicates()
    if not evaluation.selection.exclude_seen:
        # the champion may show a customer their own items: the gate must judge challenger
        # and champion on the same lists, so nothing is left out of either
        seen = seen.iloc[:0]
    # what monitoring compares with: the categories recommended to the users active in the last
    # whole week of the window (a later day's active users get the same treatment)
    week_start = reference_days(first, end)[0]
    last_day = events[events["event_ts"] >= pd.Timestamp(week_start, tz="UTC")]
    active = sorted(last_day["user_id"].astype(str).unique())[:REFERENCE_USERS]
    reference = recommended_categories(model, items, active or _sample_users(history, settings))
    rows = [
        (name, chosen.get(name), popularity.get(name))
        for name in ("ndcg_at_10", "recall_at_10", "precision_at_10", "map_at_10", "hit_rate_at_10")
    ]
    caveats = [
        SEEN_EXCLUDED_NOTE
        if evaluation.selection.exclude_seen
        else f"Seen items may be recommended (buy again); setting "
        f"{settings.recommender_exclude_seen}, decided by validation when auto.",
        _oracle_note(metrics.get("oracle_ndcg_at_10"), chosen.get("ndcg_at_10"), "NDCG@10"),
        f"Test: interactions after {split.test_start.date()} with "
        + ("any item (repeats count)." if include_seen else "items new to the user."),
    ]
    lineage = curated_lineage(settings, first, end, feature_service=FEATURE_SERVICES["recommender"])
    return _training_run(
        settings,
        "recommender",
        log_model=recommender_logger(model, (active or _sample_users(history, settings))[:5]),
        params={
            "candidate": evaluation.selection.name,
            "winner": evaluation.selection.label,
            "exclude_seen": evaluation.selection.exclude_seen,
            **{f"model_{k}": v for k, v in evaluation.selection.params.items()},
            "selection_metric": evaluation.selection.metric,
            "test_users": evaluation.n_users,
            "catalogue": evaluation.n_catalogue,
            **_window_params(first, end),
        },
        metrics=metrics,
        figures={"metrics_at_k.png": metrics_at_k_figure(evaluation.metrics)},
        tables={
            "tables/test_recommendations.parquet": evaluation.recommendations,
            f"{HOLDOUT_DIR}/test_truth.parquet": split.test_truth,
            f"{HOLDOUT_DIR}/seen.parquet": seen,
        },
        card_rows=rows,
        caveats=caveats,
        reference=reference,
        training_frame=history,
        lineage=lineage,
    )


def segmentation_run(settings: Settings, end: date) -> TrainingRun:
    from pipelines.features.offline import read_offline_partition
    from pipelines.models.pyfunc import segmentation_logger
    from pipelines.models.segmentation import (
        SegmentationModel,
        segment_labels,
        segment_profile_figure,
        segment_profiles,
    )
    from pipelines.registry import curated_lineage

    frame = read_offline_partition(settings.feast_offline_dir, "user_activity", end)
    if frame is None or frame.empty:
        raise TrainingError(
            f"segmentation: no user_activity features for {end}; "
            f"run `personalize run features --date {end}` first"
        )
    previous = champion_model(settings, "segmentation")
    model = SegmentationModel(k_range=SEGMENT_K_RANGE, random_state=settings.train_seed).fit(
        frame, previous=previous
    )
    labels = segment_labels(model, frame)
    profiles = segment_profiles(model, frame)
    metrics = model.metrics()
    reference = _sample(frame, REFERENCE_ROWS, settings.train_seed).merge(
        labels[["user_id", "segment_id"]], on="user_id", how="left"
    )
    rows = [(name, metrics.get(name), None) for name in ("silhouette", "davies_bouldin", "k")]
    caveats = [
        f"Fitted on one snapshot (features as of the end of {end}).",
        "Segment ids are matched to the previous champion's segments."
        if previous is not None
        else "First segmentation: ids are new.",
        "Segments: "
        + "; ".join(
            f"{segment_id} = {name}" for segment_id, name in sorted(model.segment_names_.items())
        ),
    ]
    first = end
    lineage = curated_lineage(settings, end - timedelta(days=29), end)
    return _training_run(
        settings,
        "segmentation",
        log_model=segmentation_logger(model, frame),
        params={
            "k": model.k_,
            "k_range": list(model.k_range),
            "n_init": model.n_init,
            "matched_to_previous": previous is not None,
            "snapshot_day": end.isoformat(),
            **_window_params(first, end),
        },
        metrics={
            **metrics,
            **{f"silhouette_k{k}": v for k, v in dict(model.silhouette_by_k_).items()},
        },
        figures={"segment_profiles.png": segment_profile_figure(model)},
        tables={
            "tables/segment_profiles.csv": profiles,
            "tables/labels.parquet": labels,
            f"{HOLDOUT_DIR}/users.parquet": frame,
        },
        card_rows=rows,
        caveats=caveats,
        reference=reference,
        training_frame=frame,
        lineage=lineage,
        extra_tags={"feast.feature_view": "user_activity"},
    )


# ---- what every training run logs -------------------------------------------------------------


def _training_run(
    settings: Settings,
    model: str,
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

    card = model_card(model, lineage, card_rows, [c for c in caveats if c])
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
    lineage: Lineage,
    rows: list[tuple[str, float | None, float | None]],
    caveats: list[str],
) -> str:
    """A short markdown card: purpose, data window, metrics vs baseline, caveats."""
    lines = [
        f"# {model}",
        "",
        f"**Purpose.** {PURPOSE[model]}",
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


def _oracle_note(oracle: float | None, value: float | None, metric: str) -> str:
    if oracle is None or value is None or not oracle:
        return ""
    return (
        f"Synthetic data: the true process reaches {metric} {oracle:.3f}; "
        f"this model {value / oracle:.0%} of it."
    )


def _example(frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """An input example MLflow can validate against the signature: rows without nulls if any."""
    complete = frame.dropna()
    return (complete if len(complete) else frame).head(rows)


def _window_params(first: date, end: date) -> dict[str, str]:
    return {"window_start": first.isoformat(), "window_end": end.isoformat()}


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)


def _sample_users(history: pd.DataFrame, settings: Settings, users: int = 2000) -> list[str]:
    import numpy as np

    ids = np.sort(history["user_id"].astype(str).unique())
    if len(ids) <= users:
        return list(ids)
    return list(np.random.default_rng(settings.train_seed).choice(ids, users, replace=False))


def _sklearn_logger(estimator: Any, example: pd.DataFrame | None, *, skops: bool) -> Any:
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


SKOPS_TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "pipelines.models.")


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


# ---- models at use time -----------------------------------------------------------------------


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


# ---- gate and promotion -----------------------------------------------------------------------


def load_holdout(settings: Settings, model: str, run_id: str) -> dict[str, pd.DataFrame]:
    import mlflow
    import pandas as pd

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=HOLDOUT_DIR, tracking_uri=settings.mlflow_tracking_uri
    )
    return {path.stem: pd.read_parquet(path) for path in sorted(Path(local).glob("*.parquet"))}


def holdout_scores(
    model_name: str, estimator: Any, holdout: Mapping[str, pd.DataFrame]
) -> HoldoutScores:
    """What ``estimator`` does on a holdout, in the gate's terms (per row or per user)."""
    from pipelines.gates import HoldoutScores

    if model_name == "propensity":
        from pipelines.models.classification import classification_metrics
        from pipelines.models.propensity import LABEL

        rows = holdout["rows"]
        labels = rows[LABEL].to_numpy()
        scores = estimator.predict_proba(rows)[:, 1]
        return HoldoutScores(
            metrics=classification_metrics(labels, scores), labels=labels, scores=scores
        )
    if model_name == "recommender":
        truth, seen = holdout["test_truth"], holdout["seen"]
        users = sorted(truth["user_id"].astype(str).unique())
        return ranking_evidence(estimator, users, seen, truth)
    if model_name == "segmentation":
        return HoldoutScores(metrics=estimator.metrics())
    raise TrainingError(f"no holdout scoring for model {model_name!r}")


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


def gate_version(settings: Settings, model: str, version: int) -> GateRecord:
    """Bless or reject ``model`` v``version`` against thresholds and the current champion."""
    from pipelines import registry
    from pipelines.gates import bless, load_gate_config_for

    registry.reconcile_manual_moves(settings, model)
    challenger_run = registry.mlflow_client(settings).get_model_version(model, str(version)).run_id
    holdout = load_holdout(settings, model, challenger_run)
    challenger = registry.load_version(settings, model, version)
    challenger_scores = holdout_scores(model, challenger, holdout)
    champion_version = registry.aliases(settings, model).get(CHAMPION)
    champion_scores, stability = None, None
    if champion_version is not None and champion_version != version:
        champion = registry.load_version(settings, model, champion_version)
        champion_scores = holdout_scores(model, champion, holdout)
        if model == "segmentation":
            from pipelines.models.segmentation import label_agreement

            users = holdout["users"]
            stability = {
                "label_agreement": label_agreement(
                    _labels(challenger, users), _labels(champion, users)
                )
            }
    record = bless(
        model,
        load_gate_config_for(settings),
        challenger_scores,
        champion_scores,
        stability=stability,
        challenger_version=version,
        champion_version=champion_version if champion_version != version else None,
    )
    registry.tag_version(settings, model, version, record.to_tags())
    registry.describe_version(settings, model, version, record.to_markdown())
    return record


def _labels(estimator: Any, users: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {"user_id": users["user_id"].to_numpy(), "segment_id": estimator.predict(users)}
    )


def carry_out_gate(settings: Settings, record: GateRecord) -> dict[str, Any]:
    """Promote a blessed challenger (when auto-promotion is on), or say why not."""
    from pipelines import registry
    from pipelines.gates import load_gate_config_for, promotion_action

    config = load_gate_config_for(settings)[record.model]
    decision = promotion_action(record, config.auto_promote)
    outcome = {
        "model": record.model,
        "version": record.challenger_version,
        "action": decision.action,
        "reason": decision.reason,
    }
    if decision.action == "promote":
        move = registry.promote(
            settings,
            record.model,
            int(record.challenger_version),
            actor="train",
            reason=decision.reason,
            gate=record.to_dict(),
        )
        outcome["from_version"] = move.from_version if move else None
    return outcome


def publish_segments(settings: Settings, day: date) -> dict[str, Any]:
    """Write the segmentation champion's labels for ``day`` to the ``user_segment`` view."""
    from pipelines.days import end_of_day
    from pipelines.features.offline import read_offline_partition, write_offline_partition
    from pipelines.features.online import materialize_interval
    from pipelines.models.segmentation import segment_labels

    model = champion_model(settings, "segmentation")
    if model is None:
        return {"day": day.isoformat(), "published": 0, "reason": "no segmentation champion yet"}
    frame = read_offline_partition(settings.feast_offline_dir, "user_activity", day)
    if frame is None or frame.empty:
        return {"day": day.isoformat(), "published": 0, "reason": f"no user_activity for {day}"}
    labels = segment_labels(model, frame)
    write_offline_partition(settings.feast_offline_dir, "user_segment", day, labels)
    written = materialize_interval(
        settings,
        end_of_day(day) - timedelta(days=1),
        end_of_day(day) + timedelta(seconds=1),
        tables=["user_segment"],
    )
    return {"day": day.isoformat(), "published": int(written.get("user_segment", 0))}


def publish_recommendations(settings: Settings, day: date, k: int = RECOMMEND_K) -> dict[str, Any]:
    """Top-k of the recommender's champion for every known user, into ``user_recommendations``.

    Written as the day's offline partition (a record of what was served) and materialized
    online, where serving reads it through the ``recommendations_v1`` service.
    """
    import pandas as pd

    from pipelines.days import end_of_day
    from pipelines.features.offline import read_curated_window, write_offline_partition
    from pipelines.features.online import materialize_interval
    from pipelines.registry import RegistryError, aliases, load_version

    version = aliases(settings, "recommender").get(CHAMPION)
    if version is None:
        raise RegistryError("recommender has no champion yet: `personalize train recommender`")
    model = load_version(settings, "recommender", version)
    _, users, _ = read_curated_window(settings.curated_dir, day, days=1)
    user_ids = sorted(users["user_id"].astype(str).unique())
    if not user_ids:
        raise TrainingError(f"no curated users up to {day}: ingest some days first")
    recs = model.recommend(user_ids, k=k)
    recs = recs.assign(user_id=recs["user_id"].astype(str), item_id=recs["item_id"].astype(str))
    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    grouped = recs.groupby("user_id", sort=True)
    frame = pd.DataFrame(
        {
            "user_id": list(grouped.groups),
            "event_timestamp": pd.Timestamp(end_of_day(day)),
            "recommended_item_ids": grouped["item_id"].agg(",".join).to_numpy(),
            "recommended_scores": grouped["score"]
            .agg(lambda s: ",".join(f"{v:.5g}" for v in s))
            .to_numpy(),
            "recommender_version": version,
        }
    )
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    write_offline_partition(settings.feast_offline_dir, "user_recommendations", day, frame)
    written = materialize_interval(
        settings,
        end_of_day(day) - timedelta(days=1),
        end_of_day(day) + timedelta(seconds=1),
        tables=["user_recommendations"],
    )
    return {
        "day": day.isoformat(),
        "version": version,
        "users": len(frame),
        "online_rows": int(written.get("user_recommendations", 0)),
    }


def day_report(settings: Settings, day: date) -> list[str]:
    """After a train run for ``day``: per model, the version trained, the gate and the aliases."""
    from pipelines.registry import aliases, versions

    lines = []
    for model in MODEL_NAMES:
        trained = [
            v for v in versions(settings, model) if v.tags.get("data.window_end") == day.isoformat()
        ]
        if not trained:
            continue
        latest = trained[0]
        current = aliases(settings, model)
        gate = latest.tags.get("gate.decision", "not gated")
        reason = latest.tags.get("gate.reason", "")
        champion = current.get(CHAMPION)
        lines.append(
            f"{model} v{latest.version}: {gate} — {reason} | champion "
            + (f"v{champion}" if champion is not None else "none")
        )
    return lines
