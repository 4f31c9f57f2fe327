"""``epoch_micros_array``: UTC microseconds of timestamps, whatever their dtype or zone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.days import NAT_MICROS, epoch_micros_array

STAMPS = ["2011-03-27 00:30:00", "2011-03-27 01:30:00", "2011-10-30 01:30:00"]
UTC_MICROS = pd.DatetimeIndex(STAMPS).as_unit("us").asi8


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(pd.DatetimeIndex(STAMPS, tz="UTC").as_unit("us")),
        pd.Series(pd.DatetimeIndex(STAMPS, tz="UTC").as_unit("ns")),
        pd.Series(pd.DatetimeIndex(STAMPS)),  # naive: UTC
        pd.Series(pd.DatetimeIndex(STAMPS, tz="UTC").tz_convert("Europe/London")),
        pd.Series(STAMPS),  # text
        pa.array(pd.DatetimeIndex(STAMPS, tz="UTC").as_unit("us")),
    ],
    ids=["utc-us", "utc-ns", "naive", "london", "text", "arrow"],
)
def test_every_dtype_gives_the_same_utc_microseconds(values: object) -> None:
    assert np.array_equal(epoch_micros_array(values), UTC_MICROS)


def test_missing_timestamps_become_the_nat_marker() -> None:
    series = pd.Series([pd.Timestamp(STAMPS[0], tz="UTC"), pd.NaT]).astype("datetime64[us, UTC]")
    assert (
        epoch_micros_array(series)[1]
        == NAT_MICROS
        == epoch_micros_array(pa.array([None, 1], pa.timestamp("us")))[0]
    )
