"""What the recommender relies on, measured on each day's interactions.

A recommender learns two things from the past: which categories each customer keeps to, and
which items exist. Drift of the customers' features cannot see either break: when tastes move
to other categories (concept drift) the shop's overall category mix can stay the same, and a
launch of new items changes what people look at, not who they are. So each of the day's
interactions is profiled against the history before the day:

* ``category`` — the item's category (the shop's mix);
* ``user_affinity`` — where that category ranks in the customer's own interactions of the last
  :data:`HISTORY_DAYS` days: ``top 1``, ``top 2-3``, ``other`` or ``first visit`` (no history).
  When tastes move, ``top 1`` falls the same day;
* ``item_age`` — ``established`` when the item was interacted with at least
  :data:`NEW_ITEM_DAYS` days before (within the look-back), ``new`` otherwise. Seven days so
  that weekly launches (new arrivals on Mondays) look alike on every weekday.

The profile is one categorical frame per day, stamped like the features (the day's end), so the
monitor's drift report compares it with the reference week as it does the features.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pipelines.days import end_of_day

if TYPE_CHECKING:
    import pandas as pd

HISTORY_DAYS = 28  # the customer's affinity and the items' first sighting look this far back
NEW_ITEM_DAYS = 7
PROFILE_COLUMNS: tuple[str, ...] = ("category", "user_affinity", "item_age")
HISTORY_PROFILE_COLUMNS = frozenset({"user_affinity", "item_age"})  # these read the look-back
# one customer's day: its interactions are alike (one order's lines, one session's views), so a
# day's sampling noise is that of its number of customers, not of its rows
PROFILE_UNIT: tuple[str, ...] = ("user_id", "event_timestamp")
AFFINITY_LEVELS: tuple[str, ...] = ("top 1", "top 2-3", "other", "first visit")
ITEM_AGE_LEVELS: tuple[str, ...] = ("new", "established")
UNKNOWN_CATEGORY = "unknown"


def history_span(days: Sequence[date]) -> tuple[date, date]:
    """The first and last day of events :func:`interaction_profiles` needs for ``days``."""
    return min(days) - timedelta(days=HISTORY_DAYS), max(days)


def interaction_profiles(
    events: pd.DataFrame, items: pd.DataFrame, days: Sequence[date]
) -> pd.DataFrame:
    """One row per interaction of each of ``days``: ``user_id``, ``event_timestamp`` (the day's
    end) and the :data:`PROFILE_COLUMNS`. ``events`` must cover :func:`history_span`."""
    import pandas as pd

    category_of = items.drop_duplicates("item_id", keep="last").set_index("item_id")["category"]
    stamps = pd.to_datetime(events["event_ts"], utc=True)
    frame = pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str).to_numpy(),
            "item_id": events["item_id"].astype(str).to_numpy(),
            "day": stamps.dt.date.to_numpy(),
        }
    )
    frame["category"] = (
        frame["item_id"].map(category_of.astype(str)).fillna(UNKNOWN_CATEGORY).to_numpy()
    )
    profiles = [_profile_of_day(frame, day) for day in sorted(set(days))]
    columns = ["user_id", "event_timestamp", *PROFILE_COLUMNS]
    if not profiles:
        return pd.DataFrame(columns=columns)
    return pd.concat(profiles, ignore_index=True)[columns]


def _profile_of_day(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    import pandas as pd

    today = frame[frame["day"] == day]
    start = day - timedelta(days=HISTORY_DAYS)
    history = frame[(frame["day"] >= start) & (frame["day"] < day)]
    # the customer's categories by how often they were interacted with, ties by name (stable)
    counts = history.groupby(["user_id", "category"]).size().rename("n").reset_index()
    counts = counts.sort_values(["user_id", "n", "category"], ascending=[True, False, True])
    counts["rank"] = counts.groupby("user_id").cumcount() + 1
    ranked = today[["user_id", "category"]].merge(
        counts[["user_id", "category", "rank"]], on=["user_id", "category"], how="left"
    )
    known_users = set(counts["user_id"])
    rank = ranked["rank"]
    affinity = pd.Series("other", index=ranked.index)
    affinity[rank <= 3] = "top 2-3"
    affinity[rank == 1] = "top 1"
    affinity[~ranked["user_id"].isin(known_users)] = "first visit"
    # seen at least NEW_ITEM_DAYS ago (within the look-back): an item unseen for HISTORY_DAYS
    # is new again, as it is to a recommender trained on that window
    earlier = history[history["day"] <= day - timedelta(days=NEW_ITEM_DAYS)]
    established = today["item_id"].isin(set(earlier["item_id"])).to_numpy()
    item_age = pd.Series("new", index=ranked.index)
    item_age[established] = "established"
    return pd.DataFrame(
        {
            "user_id": today["user_id"].to_numpy(),
            "event_timestamp": pd.Timestamp(end_of_day(day)),
            "category": today["category"].to_numpy(),
            "user_affinity": affinity.to_numpy(),
            "item_age": item_age.to_numpy(),
        }
    )
