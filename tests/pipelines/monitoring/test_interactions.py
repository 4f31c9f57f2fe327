"""The interaction profile: where each of the day's interactions stands against its history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from pipelines.monitoring.drift import comparable_columns, window_days
from pipelines.monitoring.interactions import (
    HISTORY_DAYS,
    NEW_ITEM_DAYS,
    PROFILE_COLUMNS,
    history_span,
    interaction_profiles,
)

DAY = date(2026, 3, 2)
ITEMS = pd.DataFrame(
    {"item_id": ["shoe", "boot", "mug", "cup", "pen", "new"],
     "category": ["shoes", "shoes", "kitchen", "kitchen", "office", "kitchen"]}
)  # fmt: skip


def event(user: str, item: str, days_before: int, hour: int = 12) -> dict:
    ts = datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=UTC) - timedelta(days=days_before)
    return {"user_id": user, "item_id": item, "event_ts": ts}


def profile(rows: list[dict]) -> pd.DataFrame:
    frame = interaction_profiles(pd.DataFrame(rows), ITEMS, [DAY])
    return frame.reset_index(drop=True)


def test_a_customer_s_category_ranks_against_their_own_history() -> None:
    history = [event("ann", "shoe", 3), event("ann", "boot", 2), event("ann", "mug", 1)]
    history.append(event("ann", "pen", 5))  # office ties kitchen at one: ties go by name
    today = [event("ann", "boot", 0), event("ann", "cup", 0), event("bob", "mug", 0)]
    frame = profile(history + today)
    assert list(frame.columns) == ["user_id", "event_timestamp", *PROFILE_COLUMNS]
    assert frame["user_affinity"].tolist() == ["top 1", "top 2-3", "first visit"]
    assert frame["category"].tolist() == ["shoes", "kitchen", "kitchen"]
    # stamped like the day's features: the end of the day
    assert (frame["event_timestamp"] == pd.Timestamp(DAY + timedelta(days=1), tz="UTC")).all()


def test_history_beyond_the_look_back_is_forgotten() -> None:
    rows = [event("ann", "shoe", HISTORY_DAYS + 1), event("ann", "mug", HISTORY_DAYS)]
    frame = profile([*rows, event("ann", "boot", 0)])
    # shoes were last seen 29 days ago, kitchen 28: only kitchen is in the look-back
    assert frame["user_affinity"].tolist() == ["other"]


def test_an_item_is_established_once_seen_a_week_before() -> None:
    rows = [event("ann", "shoe", NEW_ITEM_DAYS), event("bob", "mug", NEW_ITEM_DAYS - 1)]
    rows += [event("cat", x, 0) for x in ("shoe", "mug", "new")]
    frame = profile(rows)
    assert frame["item_age"].tolist() == ["established", "new", "new"]


def test_an_item_missing_from_the_catalogue_is_of_unknown_category() -> None:
    frame = profile([event("ann", "ghost", 0)])
    assert frame["category"].tolist() == ["unknown"]


def test_the_history_span_and_when_profiles_are_comparable() -> None:
    days = [DAY - timedelta(days=3), DAY]
    assert history_span(days) == (DAY - timedelta(days=3 + HISTORY_DAYS), DAY)
    assert window_days("user_affinity") == HISTORY_DAYS + 1 and window_days("category") == 0
    kept, skipped = comparable_columns(PROFILE_COLUMNS, 10, 40)
    assert kept == ["category"] and set(skipped) == {"user_affinity", "item_age"}
    assert comparable_columns(PROFILE_COLUMNS, 29, 40)[0] == list(PROFILE_COLUMNS)
