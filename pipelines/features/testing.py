"""Feature frames with known values, for tests of the offline and online stores."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines.days import end_of_day
from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP


def feature_frame(table: str, ids: list[str], day: date, base: int) -> pd.DataFrame:
    """Known values: every int feature of the i-th id is base + i, floats base + i + 0.5
    (NaN for the second id), strings '<feature>-<base + i>' (None for the second id)."""
    spec = FEATURE_TABLES[table]
    end = end_of_day(day)
    values = np.arange(len(ids)) + base
    frame = {
        spec.join_key: ids,
        TIMESTAMP: pd.Series([end] * len(ids), dtype="datetime64[us, UTC]"),
    }
    for column in spec.columns:
        if column.dtype == "int64":
            frame[column.name] = values
        elif column.dtype == "float64":
            frame[column.name] = np.where(np.arange(len(ids)) == 1, np.nan, values + 0.5)
        else:
            frame[column.name] = [
                None if i == 1 else f"{column.name}-{v}" for i, v in enumerate(values)
            ]
    return pd.DataFrame(frame)
