"""The shop's calendar: which days without events are normal."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.data.calendar import CalendarError, ShopCalendar


def test_closed_weekdays_and_yearly_ranges_across_new_year() -> None:
    calendar = ShopCalendar.parse(["Saturday"], ["12-24..01-03", "2026-08-14"])
    assert calendar.closed_reason(date(2026, 3, 7)) == "closed on Saturdays (closed_weekdays)"
    assert calendar.closed_reason(date(2026, 3, 9)) is None  # a Monday
    for closed in (date(2025, 12, 24), date(2025, 12, 31), date(2026, 1, 2), date(2027, 1, 3)):
        assert "12-24..01-03" in (calendar.closed_reason(closed) or ""), closed
    assert calendar.closed_reason(date(2026, 1, 5)) is None
    assert calendar.closed_reason(date(2026, 8, 14)) == "closed: 2026-08-14 (closed_dates)"
    assert calendar.closed_reason(date(2027, 8, 13)) is None  # a dated entry is not yearly


def test_the_no_events_expected_rule_allows_any_empty_day() -> None:
    assert ShopCalendar.parse().empty_day_reason(date(2026, 3, 9)) is None
    assert "allow_empty_days" in (
        ShopCalendar.parse(allow_empty_days=True).empty_day_reason(date(2026, 3, 9)) or ""
    )


@pytest.mark.parametrize(
    ("weekdays", "dates", "message"),
    [(["sabbath"], [], "closed_weekdays: 'sabbath'"), ([], ["12/25"], "closed_dates: '12/25'")],
)
def test_a_bad_setting_names_itself(weekdays: list[str], dates: list[str], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        ShopCalendar.parse(weekdays, dates)
