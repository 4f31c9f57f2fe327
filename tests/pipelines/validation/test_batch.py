"""History-dependent checks become derived columns and parameters, computed without GX."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.data.partitions import write_table
from pipelines.validation.batch import (
    CuratedCache,
    History,
    IdSet,
    LandedBatch,
    prepare,
    volume_band,
)

VOLUME = {
    "history_days": 7,
    "min_history_days": 3,
    "lower_ratio": 0.5,
    "upper_ratio": 2.0,
    "floor": 1,
}
DERIVED = {
    "_event_id_in_other_days": "event_id",
    "_user_id_known": "user_id",
    "_item_id_known": "item_id",
}


DAY = date(2026, 3, 2)  # a Monday


def trailing(*rows: int, before: date = DAY) -> dict[date, int]:
    """Row counts of the days just before ``before``, the last argument the day before it."""
    return {before - timedelta(days=len(rows) - i): n for i, n in enumerate(rows)}


def test_volume_band_is_a_floor_until_history_exists() -> None:
    assert volume_band({}, VOLUME, DAY) == (1, None, None)
    assert volume_band(trailing(100, 120), VOLUME, DAY) == (1, None, None)
    lower, upper, basis = volume_band(trailing(100, 120, 80, 110), VOLUME, DAY)
    assert (lower, upper) == (40, 241)
    assert basis == "range of the last 4 trading days"


WEEKLY = {**VOLUME, "compare": "same_weekday", "weeks": 4}


def test_a_monday_is_compared_with_mondays() -> None:
    """Mondays are busy (1,000 rows), the weekend is closed (absent), the other days quiet."""
    week = [1000, 300, 300, 300, 300]  # Mon..Fri
    history: dict[date, int] = {}
    for back in range(1, 4):
        monday = DAY - timedelta(weeks=back)
        history.update({monday + timedelta(days=i): n for i, n in enumerate(week)})
    lower, upper, basis = volume_band(history, WEEKLY, DAY)
    assert basis == "median of the last 3 Mondays"
    assert (lower, upper) == (500, 2001)
    # without the weekday rule a Monday at 40 % of the usual would pass (the week's range)
    assert volume_band(history, VOLUME, DAY)[0] == 150


def test_before_three_same_weekdays_the_band_spans_the_last_week() -> None:
    monday = DAY - timedelta(weeks=1)
    history = {monday + timedelta(days=i): n for i, n in enumerate([1000, 300, 300, 300, 300])}
    lower, upper, basis = volume_band(history, WEEKLY, DAY)
    assert basis == "range of the last 5 trading days"
    assert (lower, upper) == (150, 2001), "a busy Monday after a closed weekend passes"


def test_derived_columns_flag_ids_of_other_days_and_unknown_references() -> None:
    frame = pd.DataFrame(
        {"event_id": ["e1", "e2"], "user_id": ["u1", "u9"], "item_id": ["i1", None]}
    )
    history = History(
        ids_other_days={"event_id": pd.Index(["e2"])},
        known_ids={"user_id": pd.Index(["u1"]), "item_id": pd.Index(["i1"])},
        daily_rows=trailing(2, 2, 2, before=date(2026, 1, 5)),
        has_earlier_days=True,
    )
    prepared = prepare(
        LandedBatch("events", date(2026, 1, 5), [], frame), history, {"volume": VOLUME}, DERIVED
    )
    assert prepared.frame._event_id_in_other_days.tolist() == [False, True]
    assert prepared.frame._user_id_known.tolist() == [True, False]
    assert prepared.frame._item_id_known.tolist() == [True, True], (
        "a null id is the not-null check's job"
    )
    assert prepared.skipped == {}
    assert prepared.parameters["day_start"] == datetime(2026, 1, 5, tzinfo=UTC)
    assert prepared.parameters["day_end"] == datetime(2026, 1, 6, tzinfo=UTC)
    assert list(frame.columns) == ["event_id", "user_id", "item_id"], "the batch is not modified"


def test_without_history_those_checks_are_skipped_with_a_reason() -> None:
    frame = pd.DataFrame({"event_id": ["e1"], "user_id": ["u1"]})
    prepared = prepare(
        LandedBatch("events", date(2026, 1, 1), [], frame), History(), {"volume": VOLUME}, DERIVED
    )
    assert prepared.skipped == {
        "_event_id_in_other_days": "no curated data of other days yet",
        "_user_id_known": "no curated users yet",
        "_item_id_known": "column item_id is missing",
        "volume": "fewer than 3 curated days for a band; only the floor of 1 rows is checked",
    }
    assert prepared.parameters["since"].year == 1970, "the first batch carries everyone"


def test_after_a_holiday_closure_a_quiet_sunday_is_compared_with_earlier_sundays() -> None:
    """Two weeks closed over New Year: the last week holds busy weekdays only."""
    sunday = date(2011, 1, 9)
    history = {sunday - timedelta(days=back): 1100 for back in (1, 2, 3, 4, 5)}  # Mon..Sat
    history.update({date(2010, 12, 19): 480, date(2010, 12, 12): 520})  # Sundays before closing
    lower, _, basis = volume_band(history, WEEKLY, sunday)
    assert lower == 240 and "2 earlier Sunday" in (basis or "")


NOISY = {**WEEKLY, "noise_sigmas": 3, "min_band_rows": 100}


def test_a_shop_whose_days_swing_is_judged_by_its_own_swing() -> None:
    """Mondays of 400 to 2,500 lines (a few big invoices): a 300-line Monday is usual here."""
    history = {DAY - timedelta(weeks=back): n for back, n in enumerate([400, 2500, 900, 1500], 1)}
    assert volume_band(history, WEEKLY, DAY)[0] > 300, "the plain ratio band would quarantine it"
    lower, upper, _ = volume_band(history, NOISY, DAY)
    assert lower < 300 and upper > 2 * 2500
    steady = {d: 1000 + 10 * i for i, d in enumerate(history)}
    assert volume_band(steady, NOISY, DAY)[:2] == volume_band(steady, WEEKLY, DAY)[:2], (
        "a steady shop keeps the 0.5x..2x band: a half-empty batch is still caught"
    )


def test_below_the_band_minimum_only_the_floor_is_checked() -> None:
    history = {DAY - timedelta(weeks=back): n for back, n in enumerate([40, 45, 50], 1)}
    assert volume_band(history, NOISY, DAY) == (1, None, None)
    assert volume_band(history, WEEKLY, DAY)[0] == 22


def test_three_alike_weekdays_do_not_hide_how_much_the_shop_swings() -> None:
    """Three Wednesdays close together (153, 142, 222) but days of 54 to 251 lines all month
    (a small wholesaler, 2011-03): a 66-line Wednesday is within its swing."""
    wednesday = date(2011, 3, 30)
    month = [154, 178, 156, 222, 166, 101, 89, 180, 135, 142, 225, 54, 94, 100, 132, 153]
    month += [160, 123, 78, 170, 100]
    history = {}
    day = wednesday - timedelta(days=1)
    for n in reversed(month):
        while day.weekday() == 5:  # closed on Saturdays
            day -= timedelta(days=1)
        history[day] = n
        day -= timedelta(days=1)
    assert volume_band(history, WEEKLY, wednesday)[0] > 66
    assert volume_band(history, NOISY, wednesday)[0] < 66


PROBES = ["e1", "e9", None, float("nan"), 7, np.str_("e2"), pd.NA, b"e1", "E1", " e1"]


@pytest.mark.parametrize(
    "ids",
    [["e1", "e2", "e3"], ["e1", None, "e3"], ["e1", float("nan"), 7], []],
    ids=["text", "with a null", "mixed types", "empty"],
)
def test_an_id_set_answers_as_series_isin_does(ids: list) -> None:
    probes = pd.Series(PROBES, dtype=object, index=range(10, 20))
    expected = probes.isin(pd.Index(ids, dtype=object))
    got = IdSet(set(ids), all(type(v) is str for v in ids)).isin(probes)
    pd.testing.assert_series_equal(got, expected)
    extra = IdSet(set(ids[:1]), True).with_values(ids[1:])
    pd.testing.assert_series_equal(extra.isin(probes), expected)


def test_the_cache_grows_an_id_set_and_rebuilds_it_when_a_file_changes(tmp_path: Path) -> None:
    def curated(name: str, ids: list) -> Path:
        path = tmp_path / name / "part-0.parquet"
        path.parent.mkdir(exist_ok=True)
        write_table(pa.table({"event_id": pa.array(ids, pa.string())}), path)
        return path

    cache = CuratedCache()
    first, second = curated("d1", ["a", "b"]), curated("d2", ["c"])
    assert set(cache.id_set("other days", [first], "event_id")) == {"a", "b"}
    grown = cache.id_set("other days", [first, second], "event_id")
    assert set(grown) == {"a", "b", "c"}
    first.unlink()
    first = curated("d1", ["a"])  # delivered again, without "b"
    again = cache.id_set("other days", [first, second], "event_id")
    assert set(again) == {"a", "c"}
    probes = pd.Series(["a", "b", "c"])
    assert again.isin(probes).tolist() == [True, False, True]
    assert cache.files(tmp_path / "d1") == [first] and cache.files(tmp_path / "none") == []
