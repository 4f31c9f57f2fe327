"""The recommender: the top-k items a customer is most likely to be interested in next.

Candidates (popularity, buy again, item-kNN, factor models, ...: see
:mod:`pipelines.models.recommender`)
are selected on a validation week and evaluated on the test week after it, judged per user by
the gate. Its monitor profiles each day's interactions against their history (category, the
customer's own affinity, the item's age: :mod:`pipelines.monitoring.interactions`) and compares
the recommended categories with those at training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.models.runs import (
    HOLDOUT_DIR,
    RECOMMEND_K,
    REFERENCE_USERS,
    NotEnoughHistory,
    TrainingError,
    current_segments,
    first_feature_day,
    oracle_note,
    ranking_evidence,
    recommended_categories,
    sample_users,
    training_run,
    training_window,
    window_params,
)
from pipelines.models.spec import LiveEvidence, ModelSpec
from pipelines.monitoring.interactions import PROFILE_COLUMNS
from pipelines.monitoring.reference import reference_days

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import HoldoutScores
    from pipelines.monitoring.drift import DriftResult
    from pipelines.registry import TrainingRun

log = logging.getLogger(__name__)

PURPOSE = (
    "Top-k items a customer is most likely to be interested in next (interest "
    "prediction from views, carts and purchases), for on-site and e-mail recommendations."
)
PREDICTION_COLUMN = "category"
VALID_DAYS = 7
TEST_DAYS = 7
SAMPLE_USERS = 2000  # customers whose recommendations the monitor compares
LIVE_INTERACTION_DAYS = 3  # the last days' new interactions are its live truth
SEEN_EXCLUDED_NOTE = (
    "Seen items are excluded at recommendation time (repeat purchases are not recommended)."
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


def build_run(settings: Settings, end: date) -> TrainingRun:
    """Select among the candidates on a validation week, evaluate on the test week after it;
    the reference is the categories recommended to the users of the window's last week."""
    import pandas as pd

    from pipelines.features.offline import read_curated_window
    from pipelines.models.pyfunc import recommender_logger
    from pipelines.models.ranking import metrics_at_k_figure
    from pipelines.models.recommender import evaluate_events, split_interactions
    from pipelines.registry import curated_lineage

    first, end = training_window(settings, end)
    needed = VALID_DAYS + TEST_DAYS + 1
    if (end - first).days + 1 < needed:
        raise NotEnoughHistory(
            f"recommender: the window {first}..{end} holds {(end - first).days + 1} day(s); "
            f"the split needs at least {needed} ({VALID_DAYS} validation, "
            f"{TEST_DAYS} test, and days to train on): ingest more days"
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
        "valid_days": VALID_DAYS,
        "test_days": TEST_DAYS,
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
        valid_days=VALID_DAYS,
        test_days=TEST_DAYS,
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
    reference = recommended_categories(model, items, active or sample_users(history, settings))
    rows = [
        (name, chosen.get(name), popularity.get(name))
        for name in ("ndcg_at_10", "recall_at_10", "precision_at_10", "map_at_10", "hit_rate_at_10")
    ]
    caveats = [
        SEEN_EXCLUDED_NOTE
        if evaluation.selection.exclude_seen
        else f"Seen items may be recommended (buy again); setting "
        f"{settings.recommender_exclude_seen}, decided by validation when auto.",
        oracle_note(metrics.get("oracle_ndcg_at_10"), chosen.get("ndcg_at_10"), "NDCG@10"),
        f"Test: interactions after {split.test_start.date()} with "
        + ("any item (repeats count)." if include_seen else "items new to the user."),
    ]
    # trained on the curated interactions themselves: no Feast feature service goes in
    lineage = curated_lineage(settings, first, end)
    return training_run(
        settings,
        "recommender",
        PURPOSE,
        log_model=recommender_logger(model, (active or sample_users(history, settings))[:5]),
        params={
            "candidate": evaluation.selection.name,
            "winner": evaluation.selection.label,
            "exclude_seen": evaluation.selection.exclude_seen,
            **{f"model_{k}": v for k, v in evaluation.selection.params.items()},
            "selection_metric": evaluation.selection.metric,
            "test_users": evaluation.n_users,
            "catalogue": evaluation.n_catalogue,
            **window_params(first, end),
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


def score_holdout(estimator: Any, holdout: Mapping[str, pd.DataFrame]) -> HoldoutScores:
    """Per user: metrics@10 of the unseen top-10 against the test week's interactions."""
    truth, seen = holdout["test_truth"], holdout["seen"]
    users = sorted(truth["user_id"].astype(str).unique())
    return ranking_evidence(estimator, users, seen, truth)


def monitor_inputs(settings: Settings, champion: Any, day: date) -> pd.DataFrame | None:
    """The categories the champion recommends to the day's active customers."""
    from pipelines.features.offline import read_curated_window

    events, _, items = read_curated_window(settings.curated_dir, day, days=1)
    active = sorted(events["user_id"].astype(str).unique())[:SAMPLE_USERS]
    if not active:
        return None
    return recommended_categories(champion, items, active)


def drift(
    settings: Settings,
    reference_sample: pd.DataFrame,
    recommended: pd.DataFrame,
    day: date,
    trained_until: date,
    directory: Path,
) -> tuple[DriftResult | None, DriftResult | None, Path | None]:
    """The day's interactions profiled against their history (what the recommender relies on:
    customers keeping to their categories, items it knows), compared with the reference week's;
    and the categories it recommends against those at training."""
    import pandas as pd

    from pipelines.features.offline import read_curated_window
    from pipelines.gates import load_monitoring_config
    from pipelines.monitoring.drift import (
        REPORT_COLUMNS,
        comparable_columns,
        data_drift,
        prediction_drift,
        save_report,
    )
    from pipelines.monitoring.interactions import (
        PROFILE_COLUMNS,
        PROFILE_UNIT,
        history_span,
        interaction_profiles,
    )
    from pipelines.monitoring.reference import reference_days

    config = load_monitoring_config(settings.gates_file)
    threshold = config.drift_share_threshold
    prediction, snapshot = prediction_drift(
        reference_sample[PREDICTION_COLUMN],
        recommended[PREDICTION_COLUMN],
        name=PREDICTION_COLUMN,
        tests=config.drift_tests,
    )
    prediction.drift_share_threshold = threshold
    prediction.dataset_drifted = prediction.drift_share >= threshold
    save_report(snapshot, prediction, directory, "prediction_drift")

    first = first_feature_day(settings)
    reference_week = reference_days(first, trained_until)
    # a champion may have been trained after the day monitored (a backfill of older days)
    start, end = history_span([*reference_week, day])
    events, _, items = read_curated_window(settings.curated_dir, end, days=(end - start).days + 1)
    profiles = interaction_profiles(events, items, [*reference_week, day])
    stamps = pd.to_datetime(profiles["event_timestamp"], utc=True).dt.date - timedelta(days=1)
    kept, skipped = comparable_columns(
        PROFILE_COLUMNS, (reference_week[0] - first).days + 1, (day - first).days + 1
    )
    current = profiles[stamps == day]
    reference = profiles[stamps.isin(set(reference_week))]
    if not kept or current.empty or reference.empty:
        # no interactions on record for the reference week (its partitions are gone, or this
        # store never held them): nothing to compare the day with, which is not drift
        return None, prediction, None
    drift, snapshot = data_drift(
        reference,
        current,
        kept,
        seed=settings.train_seed,
        drift_share_threshold=threshold,
        report_columns=REPORT_COLUMNS,
        always_report=list(config.key_features.get("recommender", ())),
        tests=config.drift_tests,
        groups=PROFILE_UNIT,
    )
    drift.skipped.update(skipped)
    html, _ = save_report(snapshot, drift, directory, "drift")
    return drift, prediction, html


def live_evidence(
    settings: Settings, day: date, trained_until: date, champion: Any
) -> LiveEvidence | None:
    """Scorer of recommenders on the last days' interactions (after training), judged as the
    champion was selected: only items new to each user, or — for a champion that may show a
    customer their own items (buy again) — every interaction, repeats included. The previous
    champion is scored on the same users and truth, so the two stay paired."""
    from pipelines.features.offline import read_curated_window
    from pipelines.models.recommender import holdout_truth

    start = max(day - timedelta(days=LIVE_INTERACTION_DAYS - 1), trained_until + timedelta(days=1))
    if start > day:
        return None
    events, _, _ = read_curated_window(settings.curated_dir, day, days=settings.train_window_days)
    stamps = events["event_ts"]
    import pandas as pd

    cut = pd.Timestamp(start, tz="UTC")
    before, period = events[stamps < cut], events[stamps >= cut]
    repeats_count = not getattr(champion, "exclude_seen", True)
    truth = holdout_truth(before, period, include_seen=repeats_count)
    if truth.empty:
        return None
    seen = before[["user_id", "item_id"]].astype(str).drop_duplicates()
    if repeats_count:
        seen = seen.iloc[:0]  # nothing left out of the lists: a customer's own items count
    users = sorted(truth["user_id"].astype(str).unique())[:SAMPLE_USERS]
    truth = truth[truth["user_id"].astype(str).isin(users)]

    def evidence(estimator: Any) -> HoldoutScores:
        return ranking_evidence(estimator, users, seen, truth)

    return evidence


SPEC = ModelSpec(
    name="recommender",
    purpose=PURPOSE,
    build_run=build_run,
    score_holdout=score_holdout,
    monitor_inputs=monitor_inputs,
    prediction_column=PREDICTION_COLUMN,
    monitor_columns=PROFILE_COLUMNS,
    drift=drift,
    live_evidence=live_evidence,
    key_metrics=("test_ndcg_at_10", "baseline_test_ndcg_at_10", "ndcg_at_10_vs_oracle"),
)
