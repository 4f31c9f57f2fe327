"""Customer segments from recency, frequency, monetary value and engagement.

Fitted on one snapshot of the ``user_activity`` feature view (:mod:`pipelines.models.segmentation`
holds the estimator); the gate judges the fit's quality and, against the champion, how many
customers keep their segment. After each train the champion's labels are published to the
``user_segment`` feature view.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.models.runs import (
    HOLDOUT_DIR,
    REFERENCE_ROWS,
    TrainingError,
    champion_model,
    sample_rows,
    training_run,
    window_params,
)
from pipelines.models.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import HoldoutScores
    from pipelines.registry import TrainingRun

PURPOSE = (
    "Customer segments from recency, frequency, monetary value and engagement, "
    "for reporting, campaign targeting and as a feature of the other models."
)
# k = 3 has the best silhouette but only splits buyers from non-buyers; 4..8 gives segments a
# campaign can use (window shoppers, loyal high spenders, ...) at a silhouette still ~0.35.
K_RANGE = (4, 8)


def build_run(settings: Settings, end: date) -> TrainingRun:
    """Fit k-means over ``K_RANGE`` on one snapshot of ``user_activity``, the ids
    matched to the previous champion's segments."""
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
    model = SegmentationModel(k_range=K_RANGE, random_state=settings.train_seed).fit(
        frame, previous=previous
    )
    labels = segment_labels(model, frame)
    profiles = segment_profiles(model, frame)
    metrics = model.metrics()
    reference = sample_rows(frame, REFERENCE_ROWS, settings.train_seed).merge(
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
    return training_run(
        settings,
        "segmentation",
        PURPOSE,
        log_model=segmentation_logger(model, frame),
        params={
            "k": model.k_,
            "k_range": list(model.k_range),
            "n_init": model.n_init,
            "matched_to_previous": previous is not None,
            "snapshot_day": end.isoformat(),
            **window_params(first, end),
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


def _labels(estimator: Any, users: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {"user_id": users["user_id"].to_numpy(), "segment_id": estimator.predict(users)}
    )


def score_holdout(estimator: Any, holdout: Mapping[str, pd.DataFrame]) -> HoldoutScores:
    """The fit's own quality (silhouette, Davies-Bouldin): segments have no labels to score."""
    from pipelines.gates import HoldoutScores

    return HoldoutScores(metrics=estimator.metrics())


def stability(
    challenger: Any, champion: Any, holdout: Mapping[str, pd.DataFrame]
) -> dict[str, float]:
    """How many customers keep their segment id: a campaign built on ids must survive a retrain."""
    from pipelines.models.segmentation import label_agreement

    users = holdout["users"]
    return {
        "label_agreement": label_agreement(_labels(challenger, users), _labels(champion, users))
    }


def monitor_inputs(settings: Settings, champion: Any, day: date) -> pd.DataFrame | None:
    """The day's ``user_activity`` features with the champion's segment of each customer."""
    from pipelines.features.offline import read_offline_partition

    frame = read_offline_partition(settings.feast_offline_dir, "user_activity", day)
    if frame is None or frame.empty:
        return None
    # segment ids are labels, not numbers: drift compares how often each is given
    return frame.assign(segment_id=champion.predict(frame).astype(str))


SPEC = ModelSpec(
    name="segmentation",
    purpose=PURPOSE,
    build_run=build_run,
    score_holdout=score_holdout,
    stability=stability,
    monitor_inputs=monitor_inputs,
    prediction_column="segment_id",
    key_metrics=("silhouette", "k", "smallest_segment_share"),
)
