"""The shop's trading calendar: which days a missing events batch is normal, not an incident.

Real logs have gaps: a wholesaler closed on Saturdays and over Christmas delivers no events on
those days, and that must neither quarantine anything nor page anyone. Three settings say so:

* ``closed_weekdays`` — e.g. ``["sat"]``;
* ``closed_dates`` — ``"2026-12-25"`` (that day), ``"12-25"`` (every year) or a range of either,
  ``"12-24..01-03"`` (every year, across New Year) or ``"2026-08-01..2026-08-15"``;
* ``allow_empty_days`` — the "no events expected" rule: any day without events is accepted as
  closed (a shop that trades irregularly). Late files are still validated when they land: a
  re-run of the day replaces the empty day.

Day boundaries are UTC days, like every partition of the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.config import Settings

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarError(ValueError):
    """A calendar setting that cannot be read; the message names the setting and value."""


@dataclass(frozen=True)
class _Span:
    text: str
    first: tuple[int, int, int | None]  # (month, day, year or None for every year)
    last: tuple[int, int, int | None]

    def contains(self, day: date) -> bool:
        first_m, first_d, first_y = self.first
        last_m, last_d, last_y = self.last
        if first_y is not None and last_y is not None:
            return date(first_y, first_m, first_d) <= day <= date(last_y, last_m, last_d)
        key, start, end = (day.month, day.day), (first_m, first_d), (last_m, last_d)
        if start <= end:
            return start <= key <= end
        return key >= start or key <= end  # wraps over New Year


def _parse_point(text: str, setting: str) -> tuple[int, int, int | None]:
    parts = text.strip().split("-")
    try:
        if len(parts) == 3:
            parsed = date.fromisoformat(text.strip())
            return parsed.month, parsed.day, parsed.year
        if len(parts) == 2:
            month, day = int(parts[0]), int(parts[1])
            date(2000, month, day)  # validates, leap day included
            return month, day, None
    except ValueError:
        pass
    raise CalendarError(
        f"{setting}: {text!r} is not a date; use YYYY-MM-DD, MM-DD (every year) or a range A..B"
    )


def _parse_span(text: str, setting: str) -> _Span:
    first, sep, last = text.partition("..")
    start = _parse_point(first, setting)
    end = _parse_point(last, setting) if sep else start
    if (start[2] is None) != (end[2] is None):
        raise CalendarError(f"{setting}: {text!r} mixes a dated and a yearly end; use one kind")
    return _Span(text, start, end)


@dataclass(frozen=True)
class ShopCalendar:
    closed_weekdays: frozenset[int] = frozenset()
    closed_spans: tuple[_Span, ...] = ()
    allow_empty_days: bool = False

    @classmethod
    def parse(
        cls,
        closed_weekdays: list[str] | tuple[str, ...] = (),
        closed_dates: list[str] | tuple[str, ...] = (),
        allow_empty_days: bool = False,
    ) -> ShopCalendar:
        weekdays = set()
        for name in closed_weekdays:
            key = str(name).strip().lower()[:3]
            if key not in WEEKDAYS:
                raise CalendarError(
                    f"closed_weekdays: {name!r} is not a weekday; use {', '.join(WEEKDAYS)}"
                )
            weekdays.add(WEEKDAYS.index(key))
        spans = tuple(_parse_span(text, "closed_dates") for text in closed_dates)
        return cls(frozenset(weekdays), spans, allow_empty_days)

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopCalendar:
        return cls.parse(settings.closed_weekdays, settings.closed_dates, settings.allow_empty_days)

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` has no trading, per the calendar; None when the shop is open."""
        if day.weekday() in self.closed_weekdays:
            return f"closed on {day:%A}s (closed_weekdays)"
        for span in self.closed_spans:
            if span.contains(day):
                return f"closed: {span.text} (closed_dates)"
        return None

    def empty_day_reason(self, day: date) -> str | None:
        """Why a day without events is fine: the calendar, else the "no events expected" rule."""
        reason = self.closed_reason(day)
        if reason is None and self.allow_empty_days:
            reason = "no events expected on every day (allow_empty_days)"
        return reason
