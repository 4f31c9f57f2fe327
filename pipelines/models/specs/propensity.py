"""Purchase propensity: the probability that a customer buys within the next N days.

Trained on daily snapshots of every customer's ``propensity_v1`` features, labelled by whether
they bought in the N days after (N = ``propensity_horizon_days``); judged per row by the gate and,
once labels mature, live against the previous champion. The estimators are in
:mod:`pipelines.models.propensity`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.models.runs import (
    HOLDOUT_DIR,
    REFERENCE_ROWS,
    NotEnoughHistory,
    generator_truth,
    input_example,
    oracle_note,
    sample_rows,
    sklearn_logger,
    training_run,
    training_window,
    window_params,
)
from pipelines.models.spec import LiveEvidence, ModelSpec
from pipelines.monitoring.reference import reference_days

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import HoldoutScores
    from pipelines.registry import TrainingRun

log = logging.getLogger(__name__)

FEATURE_SERVICE = "propensity_v1"
PURPOSE = (
    "Probability that a customer purchases within the next N days "
    "(N = propensity_horizon_days, default 7), for targeting and budget allocation."
)
# the ranking of features is stable on a few thousand rows; 10k cost ~6 s a retrain
IMPORTANCE_ROWS = 3000
LIVE_SNAPSHOT_DAYS = 3  # matured snapshots scored per monitored day (more rows, more power)


def build_run(settings: Settings, end: date) -> TrainingRun:
    """Fit the candidates on daily snapshots whose labels matured, and evaluate on a later
    test span; the reference sample is every user's features over the window's last week."""
    from pipelines.data.generator import LABEL_HORIZON_DAYS as TRUTH_HORIZON_DAYS
    from pipelines.features.offline import read_curated_window
    from pipelines.features.training import features_at_days, training_set
    from pipelines.models.propensity import (
        KEY_COLUMNS,
        LABEL,
        fewest_snapshot_days,
        fit_propensity,
        label_complete_days,
        purchase_labels,
        split_fits,
        with_oracle,
    )
    from pipelines.registry import curated_lineage

    horizon = settings.propensity_horizon_days
    first, end = training_window(settings, end)
    days = label_complete_days(end, first, horizon)
    if not split_fits(days, gap_days=horizon):
        raise NotEnoughHistory(
            f"propensity: the window {first}..{end} leaves {len(days)} snapshot day(s) with "
            f"complete {horizon}-day labels, too few for train + a {horizon}-day gap + valid + "
            f"test; {fewest_snapshot_days(horizon)} or more always fit "
            f"(ingest more days, or set PERSONALIZE_TRAIN_WINDOW_DAYS higher)"
        )
    events, users, _ = read_curated_window(settings.curated_dir, end, days=(end - first).days + 1)
    labels = purchase_labels(events, users, days, horizon)
    frame = training_set(labels, FEATURE_SERVICE, settings=settings)
    result = fit_propensity(
        frame,
        gap_days=horizon,
        seed=settings.train_seed,
        time_budget_s=settings.train_time_budget_seconds,
        # the ranking of features is stable on a few thousand rows; 10k cost ~6 s a retrain
        importance_rows=IMPORTANCE_ROWS,
    )
    # the generator's truth is a 7-day probability: no oracle for another horizon
    truth = generator_truth(settings, "purchase_probability_7d.parquet")
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
    reference = features_at_days(settings, FEATURE_SERVICE, reference_days(first, end))
    reference = sample_rows(reference, REFERENCE_ROWS, settings.train_seed)
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
        oracle_note(metrics.get("oracle_roc_auc"), chosen.get("roc_auc"), "ROC-AUC"),
    ]
    lineage = curated_lineage(settings, first, end, feature_service=FEATURE_SERVICE)
    return training_run(
        settings,
        "propensity",
        PURPOSE,
        log_model=sklearn_logger(result.model, input_example(frame[features]), skops=True),
        params={**result.log_params(), **window_params(first, end)},
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


def score_holdout(estimator: Any, holdout: Mapping[str, pd.DataFrame]) -> HoldoutScores:
    """Per row: the gate compares challenger and champion on the same labelled rows."""
    from pipelines.gates import HoldoutScores
    from pipelines.models.classification import classification_metrics
    from pipelines.models.propensity import LABEL

    rows = holdout["rows"]
    labels = rows[LABEL].to_numpy()
    scores = estimator.predict_proba(rows)[:, 1]
    return HoldoutScores(
        metrics=classification_metrics(labels, scores), labels=labels, scores=scores
    )


def monitor_inputs(settings: Settings, champion: Any, day: date) -> pd.DataFrame | None:
    """Every user's features as of ``day``, with the champion's score."""
    from pipelines.features.training import features_at_day

    frame = features_at_day(settings, FEATURE_SERVICE, day)
    if frame is None:
        return None
    return frame.assign(score=champion.predict_proba(frame)[:, 1])


def live_evidence(
    settings: Settings, day: date, trained_until: date, champion: Any
) -> LiveEvidence | None:
    """Scorer of models on the snapshots whose labels (``settings.propensity_horizon_days``)
    matured by ``day`` (after training)."""
    import pandas as pd

    from pipelines.features.offline import read_curated_window
    from pipelines.features.training import features_at_day
    from pipelines.gates import HoldoutScores
    from pipelines.models.classification import classification_metrics
    from pipelines.models.propensity import purchase_labels

    horizon = settings.propensity_horizon_days
    last = day - timedelta(days=horizon)
    snapshots = [
        last - timedelta(days=back)
        for back in range(LIVE_SNAPSHOT_DAYS - 1, -1, -1)
        if last - timedelta(days=back) >= trained_until
    ]
    if not snapshots:
        return None
    span = (day - snapshots[0]).days + 1
    events, users, _ = read_curated_window(settings.curated_dir, day, days=span)
    labels = purchase_labels(events, users, snapshots, horizon)
    frames = [features_at_day(settings, FEATURE_SERVICE, s) for s in snapshots]
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    features = pd.concat(frames, ignore_index=True)
    rows = labels.merge(features, on=["user_id", "event_timestamp"], how="inner")
    if rows["label"].nunique() < 2:
        return None

    def evidence(estimator: Any) -> HoldoutScores:
        scores = estimator.predict_proba(rows)[:, 1]
        y = rows["label"].to_numpy()
        return HoldoutScores(metrics=classification_metrics(y, scores), labels=y, scores=scores)

    return evidence


SPEC = ModelSpec(
    name="propensity",
    purpose=PURPOSE,
    feature_service=FEATURE_SERVICE,
    label_horizon_days=lambda settings: settings.propensity_horizon_days,
    build_run=build_run,
    score_holdout=score_holdout,
    monitor_inputs=monitor_inputs,
    prediction_column="score",
    live_evidence=live_evidence,
    key_metrics=("test_roc_auc", "test_brier", "test_roc_auc_vs_oracle"),
)
