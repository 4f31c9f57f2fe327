"""A *day* is the unit everywhere: one helper tells every DAG task which data day it works on.

The run's conf (``{"day": "YYYY-MM-DD"}``, as set by ``personalize run --date``) wins; else the
extra of the asset event that triggered the run (``{"day": ...}``); else the run's
``data_interval_start`` (daily DAGs use ``CronDataIntervalTimetable("@daily")``, so the run that
covers day D starts its interval at D).

Timestamps as int64 microseconds since the epoch (``epoch_micros*``) are the one form in which
feature, label and online-store code compare and store instants.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa


class DayNotFound(ValueError):
    """The run carries no day: no conf, no asset event extra and no data interval."""


def parse_day(value: object) -> date:
    """``"2026-01-05"``, a date or a datetime -> the date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise DayNotFound(f"cannot read a day from {value!r}; expected YYYY-MM-DD")


def day_from_context(context: Mapping[str, Any]) -> date:
    """The data day of a task: conf day, else triggering asset event's day, else interval start."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("day"):
        return parse_day(conf["day"])
    for events in (context.get("triggering_asset_events") or {}).values():
        days = sorted(parse_day(e.extra["day"]) for e in events if (e.extra or {}).get("day"))
        if days:
            return days[-1]
    interval_start = context.get("data_interval_start")
    if interval_start is not None:
        return parse_day(interval_start)
    raise DayNotFound("the run has no conf day, no asset event day and no data interval")


def day_range(start: date, end: date) -> Iterator[date]:
    """Inclusive: ``--start 2026-01-01 --end 2026-01-03`` is three days."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def end_of_day(day: date) -> datetime:
    """``D+1 00:00 UTC``: where day D's data interval ends and what its features are stamped."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def logical_date_for(day: date) -> datetime:
    """The logical date of the daily run covering ``day``: the end of its data interval."""
    return end_of_day(day)


# ---- timestamps as microseconds ----------------------------------------------------------------

NAT_MICROS = -(2**63)
"""A null timestamp as int64 microseconds (numpy's NaT): before every real one."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_micros(moment: datetime) -> int:
    """UTC microseconds since the epoch; a naive datetime is UTC (Feast's convention too)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_epoch_micros(micros: int) -> datetime:
    """The UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def epoch_micros_array(values: pd.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """UTC microseconds since the epoch of timestamps (a pandas Series or an Arrow column; a
    naive one is UTC) as an int64 numpy array; null becomes :data:`NAT_MICROS`.
    """
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M":
            # already timestamps: pd.to_datetime would still build its cache of unique values
            stamps = values.dt.tz_convert("UTC") if values.dt.tz is not None else values
        else:
            stamps = pd.to_datetime(values, utc=True)
        stamps = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
        return stamps.dt.as_unit("us").to_numpy().view(np.int64)
    import pyarrow as pa
    import pyarrow.compute as pc

    micros = pc.cast(values, pa.timestamp("us", tz=getattr(values.type, "tz", None)))
    return pc.fill_null(pc.cast(micros, pa.int64()), NAT_MICROS).to_numpy(zero_copy_only=False)
