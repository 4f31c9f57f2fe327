"""Training sets through the real Feast store: one row per entity row, in order, no leakage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.features import store as feast_store
from pipelines.features.offline import write_offline_partition
from pipelines.features.schema import USER_ACTIVITY, USER_SEGMENT
from pipelines.features.testing import feature_frame
from pipelines.features.training import (
    ROW_ID,
    TrainingSetError,
    _one_row_per_entity_row,
    training_set,
)

DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)
STAMP1 = datetime(2026, 1, 2, tzinfo=UTC)  # end of DAY1
STAMP2 = datetime(2026, 1, 3, tzinfo=UTC)  # end of DAY2


@pytest.fixture(scope="module")
def store_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """u1, u2 have days 1 and 2; u3 only day 1; items i1, i2 day 1. Applied once per module."""
    settings = Settings(home=tmp_path_factory.mktemp("training") / "home")
    offline = settings.feast_offline_dir
    write_offline_partition(
        offline,
        "user_activity",
        DAY1,
        feature_frame("user_activity", ["u1", "u2", "u3"], DAY1, base=100),
    )
    write_offline_partition(
        offline, "user_activity", DAY2, feature_frame("user_activity", ["u1", "u2"], DAY2, base=200)
    )
    write_offline_partition(
        offline,
        "item_popularity",
        DAY1,
        feature_frame("item_popularity", ["i1", "i2"], DAY1, base=500),
    )
    feast_store.apply_repo(settings)
    return settings


def at(*moments: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(m, tz="UTC") for m in moments]


def test_one_row_per_entity_row_in_input_order_with_entity_columns_first(
    store_settings: Settings,
) -> None:
    entity_df = pd.DataFrame(
        {
            "user_id": ["u3", "u1", "ghost", "u1", "u2", "u1"],
            "event_timestamp": at(
                "2026-01-02 12:00",
                "2026-01-03 08:00",
                "2026-01-03",
                "2026-01-02 06:00",
                "2026-01-03 01:00",
                "2026-01-03 08:00",  # an exact duplicate of row 2
            ),
            "label": [1, 0, 1, 1, 0, 0],
        },
        index=[50, 40, 30, 20, 10, 0],
    )

    result = training_set(entity_df, "propensity_v1", settings=store_settings)

    assert len(result) == len(entity_df)
    assert list(result.index) == [50, 40, 30, 20, 10, 0]
    features = [c.name for c in USER_ACTIVITY] + [c.name for c in USER_SEGMENT]
    assert list(result.columns[:3]) == ["user_id", "event_timestamp", "label"]
    assert list(result.columns[3 : 3 + len(features)]) == features
    assert ROW_ID not in result.columns
    pd.testing.assert_series_equal(result["user_id"], entity_df["user_id"])
    assert list(result["label"]) == [1, 0, 1, 1, 0, 0]
    # u3 day 1 (third id: 102), u1 day 2 (200), ghost none, u1 day 1 (100), u2 day 2 (201)
    assert list(result["views_1d"].astype("Float64")) == [102, 200, pd.NA, 100, 201, 200]
    assert result["views_1d"].dtype == "Int64"
    assert result["spend_1d"].iloc[4] != result["spend_1d"].iloc[4]  # NaN stays null
    assert result["top_category_1"].iloc[0] == "top_category_1-102"
    assert result["top_category_1"].iloc[4] is None
    assert str(result["event_timestamp"].dtype) == "datetime64[us, UTC]"


def test_a_value_stamped_after_the_row_never_appears_in_it(store_settings: Settings) -> None:
    entity_df = pd.DataFrame(
        {
            "user_id": ["u1"] * 4,
            "event_timestamp": at(
                "2026-01-02 12:00",  # day 2's value (stamped 2026-01-03) exists but is later
                "2026-01-02 23:59:59.999999",
                "2026-01-03 00:00",  # day 2 is complete at its stamp
                "2026-01-03 06:00",
            ),
        }
    )

    result = training_set(entity_df, "propensity_v1", settings=store_settings)

    assert list(result["views_1d"]) == [100, 100, 200, 200]
    assert list(result["top_category_1"]) == ["top_category_1-100"] * 2 + ["top_category_1-200"] * 2


def test_entities_without_features_yet_are_kept_with_nulls(store_settings: Settings) -> None:
    entity_df = pd.DataFrame(
        {
            "user_id": ["ghost", "u1", "u1", "u2"],
            "event_timestamp": at(
                "2026-01-03",
                "2026-01-01 12:00",  # before the first stamp
                "2026-01-10",  # the last stamp is older than the view's 2-day TTL
                "2026-01-04",  # within the TTL of day 2
            ),
        }
    )

    result = training_set(entity_df, "propensity_v1", settings=store_settings)

    assert len(result) == 4
    assert result["views_1d"].isna().tolist() == [True, True, True, False]
    assert result.loc[3, "views_1d"] == 201
    assert result.loc[:2, [c.name for c in USER_ACTIVITY]].isna().all().all()


def test_views_without_offline_data_give_null_columns(store_settings: Settings) -> None:
    entity_df = pd.DataFrame({"user_id": ["u1"], "event_timestamp": at("2026-01-03")})

    result = training_set(entity_df, "propensity_v1", settings=store_settings)

    for name in ("segment_id", "segment_name", "rt_views_1h", "rt_carts_1h"):
        assert name in result.columns
        assert result[name].isna().all()


def test_naive_timestamps_are_utc_and_other_zones_are_converted(store_settings: Settings) -> None:
    entity_df = pd.DataFrame(
        {
            "user_id": ["u1", "u1"],
            # both just before day 2's stamp in UTC: day 1's values
            "event_timestamp": [datetime(2026, 1, 2, 23, 0), datetime(2026, 1, 2, 23, 0)],
        }
    )
    zoned = entity_df.assign(
        event_timestamp=[
            datetime(2026, 1, 3, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 1, 2, 19, 0, tzinfo=timezone(timedelta(hours=-5))),
        ]
    )

    naive = training_set(entity_df, "propensity_v1", settings=store_settings)
    converted = training_set(zoned, "propensity_v1", settings=store_settings)

    assert list(naive["views_1d"]) == [100, 100]
    assert list(converted["views_1d"]) == [100, 200]
    assert list(naive["event_timestamp"]) == at("2026-01-02 23:00", "2026-01-02 23:00")
    assert list(converted["event_timestamp"]) == at("2026-01-02 23:30", "2026-01-03 00:00")


def test_recommender_set_joins_user_and_item_features(store_settings: Settings) -> None:
    entity_df = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u1"],
            "item_id": ["i2", "i1", "nope"],
            "event_timestamp": at("2026-01-02 12:00", "2026-01-03 12:00", "2026-01-02 12:00"),
        }
    )

    result = training_set(entity_df, "recommender_v1", settings=store_settings)

    assert list(result.columns[:3]) == ["user_id", "item_id", "event_timestamp"]
    assert "top_category_1" in result.columns and "views_1d" not in result.columns
    assert list(result["item_views_1d"].astype("Float64")) == [501, 500, pd.NA]
    assert list(result["top_category_1"]) == ["top_category_1-100", None, "top_category_1-100"]


def test_unusable_entity_frames_are_refused_with_the_reason(store_settings: Settings) -> None:
    good = pd.DataFrame({"user_id": ["u1"], "event_timestamp": at("2026-01-03")})

    with pytest.raises(TrainingSetError, match="lacks column"):
        training_set(good.drop(columns="event_timestamp"), "propensity_v1", settings=store_settings)
    with pytest.raises(TrainingSetError, match="item_id"):
        training_set(good, "recommender_v1", settings=store_settings)
    with pytest.raises(TrainingSetError, match="unknown feature service 'nope'"):
        training_set(good, "nope", settings=store_settings)
    with pytest.raises(TrainingSetError, match="shadow a feature"):
        training_set(good.assign(views_1d=1), "propensity_v1", settings=store_settings)
    with pytest.raises(TrainingSetError, match="null"):
        training_set(good.assign(user_id=[None]), "propensity_v1", settings=store_settings)


@pytest.mark.parametrize(
    ("row_ids", "message"),
    [
        ([0, 2], "2 rows for 3 entity rows \\(1 lost, 0 duplicated\\)"),
        ([0, 1, 1, 2], "4 rows for 3 entity rows \\(0 lost, 1 duplicated\\)"),
    ],
)
def test_lost_or_duplicated_rows_are_an_error(row_ids: list[int], message: str) -> None:
    joined = pd.DataFrame({ROW_ID: row_ids, "views_1d": range(len(row_ids))})

    with pytest.raises(TrainingSetError, match=message):
        _one_row_per_entity_row(joined, 3, "propensity_v1")


def test_rows_come_back_sorted_by_the_private_row_id() -> None:
    joined = pd.DataFrame({ROW_ID: [2, 0, 1], "views_1d": [20, 0, 10]})

    result = _one_row_per_entity_row(joined, 3, "propensity_v1")

    assert list(result["views_1d"]) == [0, 10, 20]
    assert ROW_ID not in result.columns


def test_training_set_uses_the_settings_from_the_environment_by_default(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in store_settings.as_environment().items():
        monkeypatch.setenv(name, value)
    entity_df = pd.DataFrame({"user_id": ["u2"], "event_timestamp": at("2026-01-03")})

    assert list(training_set(entity_df, "propensity_v1")["views_1d"]) == [201]
