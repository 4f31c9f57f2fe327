"""Training sets: point-in-time correct features for labelled entity rows, via Feast.

``training_set(entity_df, "propensity_v1")`` returns exactly one row per entity row, in the input
order (and with the input index), the entity frame's columns first, then the service's features
as they were known at each row's ``event_timestamp`` — never a value stamped later.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from pipelines.features.schema import TIMESTAMP

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureService, FeatureStore

    from pipelines.config import Settings

log = logging.getLogger(__name__)

ROW_ID = "__personalize_row_id"
_DTYPES = {"Int64": "Int64", "Float64": "float64", "String": "object"}


class TrainingSetError(Exception):
    """A training set that cannot be built as asked, or came back with rows lost or duplicated."""


def training_set(
    entity_df: pd.DataFrame, service: str, *, settings: Settings | None = None
) -> pd.DataFrame:
    """The features of ``service`` for every row of ``entity_df``, as of its ``event_timestamp``.

    ``entity_df`` needs the join keys of the service's views (``user_id``, ``item_id``) and
    ``event_timestamp`` (naive values are taken as UTC). Rows whose entity had no feature row yet
    (or only one older than the view's TTL) are kept, with nulls. Views without any offline data
    yet (``user_segment`` before the first segmentation, the online-only ``user_realtime``) give
    null columns, so the columns of a service never depend on what has been computed so far.
    """
    import pandas as pd

    from pipelines.config import get_settings
    from pipelines.features.store import feature_store

    settings = settings or get_settings()
    store = feature_store(settings)
    feature_service = _feature_service(store, service)
    views = {fv.name: fv for fv in store.list_feature_views(allow_cache=True)}
    join_keys = _join_keys(feature_service, views)
    entities = _entity_frame(entity_df, join_keys, feature_service)

    with_data, without_data = [], []
    for projection in feature_service.feature_view_projections:
        view = views[projection.name]
        source = view.batch_source
        has_data = source is not None and bool(glob.glob(source.path))
        (with_data if has_data else without_data).append(projection)

    if with_data:
        refs = [f"{p.name_to_use()}:{f.name}" for p in with_data for f in p.features]
        features = (
            store.get_historical_features(
                entity_df=entities[[ROW_ID, *join_keys, TIMESTAMP]], features=refs
            )
            .to_df()
            .drop(columns=[*join_keys, TIMESTAMP])
        )
        features = _one_row_per_entity_row(features, len(entities), service)
    else:
        features = pd.DataFrame(index=pd.RangeIndex(len(entities)))

    for projection in without_data:
        log.warning(
            "training set %s: feature view %s has no offline data yet (%s); its columns are null",
            service,
            projection.name,
            views[projection.name].batch_source.path,
        )
        for field in projection.features:
            features[field.name] = pd.Series(None, dtype="object", index=features.index)
    # stable dtypes whatever the data: nullable ints, floats, Python strings
    for projection in feature_service.feature_view_projections:
        for field in projection.features:
            features[field.name] = _typed(features[field.name], str(field.dtype))

    ordered = [f.name for p in feature_service.feature_view_projections for f in p.features]
    result = pd.concat(
        [entities.drop(columns=ROW_ID).reset_index(drop=True), features[ordered]], axis=1
    )
    result.index = entity_df.index
    return result


def _typed(column: pd.Series, feast_dtype: str) -> pd.Series:
    import pandas as pd

    dtype = _DTYPES.get(feast_dtype, "object")
    if dtype == "object":
        return column.astype(object).where(column.notna(), None)
    if dtype == "Int64":
        return pd.to_numeric(column).astype("Int64")
    return pd.to_numeric(column).astype(dtype)


def _feature_service(store: FeatureStore, service: str) -> FeatureService:
    from pipelines.features.store import feature_service

    return feature_service(store, service, TrainingSetError)


def _join_keys(feature_service: FeatureService, views: dict) -> list[str]:
    keys: list[str] = []
    for projection in feature_service.feature_view_projections:
        for column in views[projection.name].entity_columns:
            name = projection.join_key_map.get(column.name, column.name)
            if name not in keys:
                keys.append(name)
    return keys


def _entity_frame(
    entity_df: pd.DataFrame, join_keys: list[str], feature_service: FeatureService
) -> pd.DataFrame:
    """A copy of ``entity_df`` with a UTC microsecond ``event_timestamp`` and a private row id."""
    import numpy as np
    import pandas as pd

    required = [*join_keys, TIMESTAMP]
    missing = [c for c in required if c not in entity_df.columns]
    if missing:
        raise TrainingSetError(
            f"entity_df lacks column(s) {missing} that {feature_service.name} needs "
            f"(join keys {join_keys} and {TIMESTAMP!r}); it has {list(entity_df.columns)}"
        )
    if ROW_ID in entity_df.columns:
        raise TrainingSetError(f"entity_df must not have a column named {ROW_ID!r} (used inside)")
    features = {f.name for p in feature_service.feature_view_projections for f in p.features}
    clash = sorted(features & set(entity_df.columns))
    if clash:
        raise TrainingSetError(
            f"entity_df columns {clash} have the names of features of {feature_service.name}; "
            "rename them (a label column must not shadow a feature)"
        )
    for key in join_keys:
        if entity_df[key].isna().any():
            raise TrainingSetError(
                f"entity_df column {key!r} has {int(entity_df[key].isna().sum())} null(s); "
                "every row needs an entity"
            )

    stamps = entity_df[TIMESTAMP]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC")
    else:  # naive values are UTC; aware ones (any zones, even mixed) are converted
        try:
            stamps = pd.to_datetime(stamps, utc=True)
        except (ValueError, TypeError) as error:
            raise TrainingSetError(
                f"entity_df column {TIMESTAMP!r} is not a timestamp: {error}"
            ) from error
    if stamps.isna().any():
        raise TrainingSetError(
            f"entity_df column {TIMESTAMP!r} has {int(stamps.isna().sum())} null(s); "
            "every row needs the time its features are taken at"
        )

    entities = entity_df.reset_index(drop=True)
    entities[TIMESTAMP] = stamps.astype("datetime64[us, UTC]").reset_index(drop=True)
    for key in join_keys:
        if entities[key].dtype != object:
            entities[key] = entities[key].astype(str).astype(object)
    entities[ROW_ID] = np.arange(len(entities), dtype="int64")
    return entities


def _one_row_per_entity_row(features: pd.DataFrame, expected: int, service: str) -> pd.DataFrame:
    import numpy as np

    features = features.sort_values(ROW_ID, kind="stable").reset_index(drop=True)
    row_ids = features[ROW_ID].to_numpy()
    if len(row_ids) != expected or not np.array_equal(row_ids, np.arange(expected)):
        counts = np.bincount(row_ids.astype("int64"), minlength=expected)
        lost, duplicated = int((counts == 0).sum()), int((counts > 1).sum())
        raise TrainingSetError(
            f"the point-in-time join for {service} returned {len(row_ids)} rows for {expected} "
            f"entity rows ({lost} lost, {duplicated} duplicated); the offline store must keep "
            "every entity row exactly once (use the duckdb offline store, not `file`)"
        )
    return features.drop(columns=ROW_ID)


def features_at_day(
    settings: Settings, service: str, day: date, entity_ids: list[str] | None = None
) -> pd.DataFrame | None:
    """``service``'s features of every user known at the end of ``day`` (or of ``entity_ids``),
    as a model scoring that day would see them; None when the day has no features."""
    return features_at_days(settings, service, [day], entity_ids)


def features_at_days(
    settings: Settings,
    service: str,
    days: Sequence[date],
    entity_ids: list[str] | None = None,
) -> pd.DataFrame | None:
    """:func:`features_at_day` for several days in one point-in-time join: one row per user
    known at the end of each day (days without features add nothing); None if none has any."""
    import pandas as pd

    from pipelines.days import end_of_day
    from pipelines.features.offline import read_offline_partition

    parts = []
    for day in days:
        ids = entity_ids
        if ids is None:
            activity = read_offline_partition(
                settings.feast_offline_dir, "user_activity", day, columns=("user_id",)
            )
            if activity is None or activity.empty:
                continue
            ids = activity["user_id"].astype(str).tolist()
        stamp = pd.Series(end_of_day(day), index=range(len(ids))).astype("datetime64[us, UTC]")
        parts.append(pd.DataFrame({"user_id": ids, TIMESTAMP: stamp}))
    if not parts:
        return None
    return training_set(pd.concat(parts, ignore_index=True), service, settings=settings)
