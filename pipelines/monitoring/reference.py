"""The drift reference: the days of a training window whose inputs a monitor compares with."""

from __future__ import annotations

from datetime import date, timedelta

REFERENCE_WEEK_DAYS = 7  # the drift reference spans a whole week (weekly seasonality)


def reference_days(first: date, end: date) -> list[date]:
    """The days of the drift reference: the last whole week of the window ``first..end`` (fewer
    when the window is shorter)."""
    start = max(first, end - timedelta(days=REFERENCE_WEEK_DAYS - 1))
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
