"""The daily feature tables, computed from curated frames: pure functions, no file I/O.

Each function takes the frames it needs and the day D it describes, and returns a new frame with
one row per entity *known* at the end of D, stamped ``event_timestamp`` = D+1 00:00 UTC, with the
columns of :mod:`pipelines.features.schema` in their order and dtypes. Only events in
``[start of D-(w-1), end of D)`` count towards a ``w``-day window, so nothing after the snapshot
leaks into it.

The work is done on integer arrays: every event is reduced once to the position of its entity
among the known ones, its time in microseconds and small integer codes; the windows are masks over
that, and per-entity sums are ``np.bincount``: ~1M events take about a second on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from pipelines.data.contract import EVENT_TYPES
from pipelines.days import NAT_MICROS, end_of_day, epoch_micros, epoch_micros_array
from pipelines.features.schema import (
    DEVICES,
    EVENT_COUNTS,
    ITEM_POPULARITY,
    SESSION_WINDOWS,
    TIMESTAMP,
    TOP_CATEGORIES,
    USER_ACTIVITY,
    VIEW_PRICE_WINDOWS,
    WINDOWS,
    FeatureColumn,
)

MICROS_PER_DAY = 86_400_000_000
HISTORY_DAYS = max(WINDOWS)
RFM_BINS = 5
VIEW, CART, PURCHASE = (EVENT_TYPES.index(t) for t in ("view", "add_to_cart", "purchase"))
RECENCY_COLUMNS = ("days_since_last_event", "days_since_last_purchase")


def day_end(day: date) -> pd.Timestamp:
    """D+1 00:00 UTC: the exclusive end of day D and the stamp of D's feature rows."""
    return pd.Timestamp(end_of_day(day)).as_unit("us")


# ---- the two tables ---------------------------------------------------------------------------


def user_activity(
    events: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    day: date,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per user signed up before the end of ``day``: activity over 1, 7 and 30 days.

    ``events`` are the curated events of the 30 days ending with ``day`` (rows outside that span
    are ignored), ``users`` the known users (last row per ``user_id`` wins), ``items`` the
    catalogue, for the category features. Users without events keep their row, with zero counts,
    so a model sees that they went quiet.

    Recency has to outlive the 30 days of events passed in, so ``previous`` is an earlier output
    of this function (normally the day before's): a user without events in the window carries
    its ``days_since_*`` forward, grown by the time between the two stamps.
    """
    end = day_end(day)
    known = _latest_rows(users, "user_id")
    known = known[known["signup_ts"] < end].sort_values("user_id", kind="stable")
    keys = pd.Index(known["user_id"].astype(object), name="user_id")
    window = _window_events(events, "user_id", keys, items, end)
    n = len(keys)

    columns: dict[str, np.ndarray] = {}
    for stem, event_type in EVENT_COUNTS.items():
        kind = EVENT_TYPES.index(event_type)
        for w in WINDOWS:
            columns[f"{stem}_{w}d"] = window.count(n, w, window.kind == kind)
    purchase = window.kind == PURCHASE
    for w in WINDOWS:
        columns[f"spend_{w}d"] = window.total(n, w, window.amount, purchase)
    for w in SESSION_WINDOWS:
        columns[f"sessions_{w}d"] = window.distinct(n, w, window.session)
    columns["distinct_categories_30d"] = window.distinct(n, HISTORY_DAYS, window.category)
    columns.update(_recency(window, keys, end, previous))
    columns.update(_purchase_rhythm(window, keys, end, previous, columns))
    columns["view_to_cart_rate_30d"] = _ratio(columns["carts_30d"], columns["views_30d"])
    columns["cart_to_purchase_rate_30d"] = _ratio(columns["purchases_30d"], columns["carts_30d"])
    columns["avg_order_value_30d"] = _ratio(columns["spend_30d"], columns["purchases_30d"])
    bought = columns["purchases_30d"] > 0
    columns["rfm_recency"] = rfm_score(columns["days_since_last_event"], higher_is_better=False)
    columns["rfm_frequency"] = rfm_score(np.where(bought, columns["purchases_30d"], np.nan))
    columns["rfm_monetary"] = rfm_score(np.where(bought, columns["spend_30d"], np.nan))
    columns.update(_view_prices(window, n))
    columns.update(_device_shares(window, n))
    columns.update(_top_categories(window, n))
    return _assemble(keys, end, USER_ACTIVITY, columns)


def item_popularity(events: pd.DataFrame, items: pd.DataFrame, day: date) -> pd.DataFrame:
    """One row per item launched before the end of ``day`` (or without a launch date)."""
    end = day_end(day)
    known = _latest_rows(items, "item_id")
    launched = known["launched_ts"]
    known = known[launched.isna() | (launched < end)].sort_values("item_id", kind="stable")
    keys = pd.Index(known["item_id"].astype(object), name="item_id")
    window = _window_events(events, "item_id", keys, None, end)
    n = len(keys)

    columns: dict[str, np.ndarray] = {}
    for stem, event_type in EVENT_COUNTS.items():
        kind = EVENT_TYPES.index(event_type)
        for w in WINDOWS:
            columns[f"item_{stem}_{w}d"] = window.count(n, w, window.kind == kind)
    columns["item_conversion_rate_30d"] = _ratio(
        columns["item_purchases_30d"], columns["item_views_30d"]
    )
    columns["item_price"] = known["price"].to_numpy(dtype="float64", na_value=np.nan)
    columns["item_category"] = _strings(known["category"])
    columns["item_brand"] = _strings(known["brand"])
    launch_us = epoch_micros_array(known["launched_ts"])
    columns["item_days_since_launch"] = np.where(
        launch_us == NAT_MICROS, np.nan, (epoch_micros(end) - launch_us) / MICROS_PER_DAY
    )
    return _assemble(keys, end, ITEM_POPULARITY, columns)


def rfm_score(values: np.ndarray | pd.Series, *, higher_is_better: bool = True) -> np.ndarray:
    """Quintile score 1-5 among the non-null values (5 = best); null scores 1.

    ``rank(pct=True)`` with average ranks gives tied values the same score whatever the row
    order, so a day's scores are reproducible.
    """
    pct = pd.Series(values, dtype="float64").rank(pct=True, ascending=higher_is_better)
    # rounding first keeps 3/15 * 5 == 1 from landing in bin 2 by float error
    score = np.ceil((pct * RFM_BINS).round(9)).clip(1, RFM_BINS)
    return score.fillna(1).to_numpy(dtype="int64")


# ---- events of the window as integer arrays ---------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """The events of the longest window that belong to a known entity, as parallel arrays."""

    end_us: int
    entity: np.ndarray  # position of the event's entity among the known keys
    us: np.ndarray  # event time, microseconds since the epoch
    kind: np.ndarray  # index into EVENT_TYPES, -1 for anything else
    amount: np.ndarray  # price * quantity, 0 where unknown
    price: np.ndarray  # unit price, NaN where unknown
    session: np.ndarray  # session code, -1 for null
    device: np.ndarray  # index into DEVICES, -1 for null or unknown
    category: np.ndarray  # category code (codes sort like the names), -1 for unknown
    category_names: np.ndarray

    def within(self, days: int) -> np.ndarray:
        return self.us >= self.end_us - days * MICROS_PER_DAY

    def count(self, n: int, days: int, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.entity[mask & self.within(days)], minlength=n)

    def total(self, n: int, days: int, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        keep = mask & self.within(days)
        return np.bincount(self.entity[keep], weights=values[keep], minlength=n)

    def distinct(self, n: int, days: int, codes: np.ndarray) -> np.ndarray:
        """Distinct non-null ``codes`` per entity within the last ``days``."""
        keep = (codes >= 0) & self.within(days)
        width = int(codes.max(initial=0)) + 1
        pairs = pd.unique(self.entity[keep].astype(np.int64) * width + codes[keep])
        return np.bincount(pairs // width, minlength=n)


def _window_events(
    events: pd.DataFrame, key: str, keys: pd.Index, items: pd.DataFrame | None, end: pd.Timestamp
) -> _Window:
    end_us = epoch_micros(end)
    us = epoch_micros_array(events["event_ts"])
    entity = _positions(events[key], keys)
    keep = (entity >= 0) & (us >= end_us - HISTORY_DAYS * MICROS_PER_DAY) & (us < end_us)
    frame = events[keep]
    price = frame["price"].to_numpy(dtype="float64", na_value=np.nan)
    quantity = frame["quantity"].to_numpy(dtype="float64", na_value=np.nan)
    category, names = _categories_of(frame["item_id"], items)
    return _Window(
        end_us=end_us,
        entity=entity[keep],
        us=us[keep],
        kind=_codes(frame["event_type"], EVENT_TYPES),
        amount=np.nan_to_num(price * quantity),
        price=price,
        session=_factorized(frame["session_id"]),
        device=_codes(frame["device"], DEVICES),
        category=category,
        category_names=names,
    )


def _categories_of(
    item_ids: pd.Series, items: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's category as a code whose order is the names' order, -1 when unknown."""
    if items is None or items.empty:
        return np.full(len(item_ids), -1, dtype=np.int64), np.array([], dtype=object)
    catalogue = _latest_rows(items, "item_id")
    codes, names = pd.factorize(catalogue["category"].astype(object), sort=True)
    position = _positions(item_ids, pd.Index(catalogue["item_id"].astype(object)))
    category = np.where(position >= 0, codes[position], -1)
    return category.astype(np.int64), np.asarray(names, dtype=object)


def _recency(
    window: _Window, keys: pd.Index, end: pd.Timestamp, previous: pd.DataFrame | None
) -> dict[str, np.ndarray]:
    """Days from the last event / purchase to ``end``, carried over from ``previous`` if none."""
    n = len(keys)
    result = {}
    for column, mask in zip(
        RECENCY_COLUMNS, (np.ones_like(window.kind, bool), window.kind == PURCHASE), strict=True
    ):
        last = np.full(n, NAT_MICROS, dtype=np.int64)
        np.maximum.at(last, window.entity[mask], window.us[mask])
        days = np.where(last == NAT_MICROS, np.nan, (window.end_us - last) / MICROS_PER_DAY)
        result[column] = np.where(np.isnan(days), _carried(previous, column, keys, end), days)
    return result


def _purchase_rhythm(
    window: _Window,
    keys: pd.Index,
    end: pd.Timestamp,
    previous: pd.DataFrame | None,
    columns: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Lifetime purchase days, the first purchase and the user's own buying rhythm.

    A wholesale customer who reorders every six weeks is not lapsed after five, but a 30-day
    window cannot tell: it needs the count of days with a purchase since the user's first one,
    which is carried from ``previous`` (plus the purchase days after its stamp) the way recency
    is. ``purchase_overdue_ratio`` is the time since the last purchase over the mean gap between
    purchase days: about 1 means "due now", whatever the shop's usual rhythm.
    """
    n = len(keys)
    purchase = window.kind == PURCHASE
    since_us, carried = -np.inf, np.zeros(n)
    if previous is not None and not previous.empty and "purchase_days_total" in previous:
        since_us = float(epoch_micros(pd.to_datetime(previous[TIMESTAMP], utc=True).max()))
        latest = _latest_rows(previous, "user_id")
        carried = (
            latest.set_index(latest["user_id"].astype(object))["purchase_days_total"]
            .reindex(keys)
            .to_numpy(dtype="float64", na_value=0.0)
        )
    new = purchase & (window.us >= since_us)
    width = HISTORY_DAYS + 2  # the window's days, as offsets from its first day
    day = window.us // MICROS_PER_DAY
    day -= day.min() if day.size else 0
    pairs = pd.unique(window.entity[new].astype(np.int64) * width + day[new])
    total = carried + np.bincount(pairs // width, minlength=n)

    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, window.entity[purchase], window.us[purchase])
    in_window = np.where(
        first == np.iinfo(np.int64).max, np.nan, (window.end_us - first) / MICROS_PER_DAY
    )
    grown = (
        _carried(previous, "days_since_first_purchase", keys, end)
        if previous is not None and "days_since_first_purchase" in previous
        else np.full(n, np.nan)
    )
    first_days = np.where(np.isnan(grown), in_window, grown)
    last_days = columns["days_since_last_purchase"]
    gaps = total - 1
    mean_gap = np.full(n, np.nan)
    np.divide(first_days - last_days, gaps, out=mean_gap, where=gaps > 0)
    mean_gap = np.where(mean_gap > 0, mean_gap, np.nan)
    return {
        "purchase_days_total": total,
        "days_since_first_purchase": first_days,
        "days_between_purchases": mean_gap,
        "purchase_overdue_ratio": last_days / mean_gap,
    }


def _carried(
    previous: pd.DataFrame | None, column: str, keys: pd.Index, end: pd.Timestamp
) -> np.ndarray:
    """``previous[column]`` grown by the days from its stamp to ``end``, aligned to ``keys``."""
    if previous is None or previous.empty:
        return np.full(len(keys), np.nan)
    stamp = pd.to_datetime(previous[TIMESTAMP], utc=True)
    earlier = previous[stamp <= end]
    elapsed = (end - stamp[stamp <= end]).dt.total_seconds() / 86_400
    grown = pd.Series(
        earlier[column].to_numpy(dtype="float64", na_value=np.nan) + elapsed.to_numpy(),
        index=earlier["user_id"].astype(object),
    )
    grown = grown[~grown.index.duplicated(keep="last")]
    return grown.reindex(keys).to_numpy(dtype="float64")


def _device_shares(window: _Window, n: int) -> dict[str, np.ndarray]:
    """Share of each device among the window's events that name a device (0 if none do).

    The 1- and 7-day shares move within days of a change in how people shop (a new app, a
    mobile campaign); the 30-day share is the user's habit.
    """
    named = window.device >= 0
    shares = {}
    for w in WINDOWS:
        denominator = window.count(n, w, named)
        for code, device in enumerate(DEVICES):
            share = _ratio(window.count(n, w, window.device == code), denominator)
            if w < HISTORY_DAYS:
                # no events in a short window is "unknown", not "0 % on every device": a busy
                # Saturday must not look like a shift from web to nowhere
                share = np.where(denominator > 0, share, np.nan)
            shares[f"device_share_{device}_{w}d"] = share
    return shares


def _view_prices(window: _Window, n: int) -> dict[str, np.ndarray]:
    """Mean price of the items a user viewed (NaN without priced views): price level they see."""
    priced = (window.kind == VIEW) & ~np.isnan(window.price)
    prices = np.nan_to_num(window.price)
    out = {}
    for w in VIEW_PRICE_WINDOWS:
        count = window.count(n, w, priced)
        total = window.total(n, w, prices, priced)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"avg_view_price_{w}d"] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _top_categories(window: _Window, n: int) -> dict[str, np.ndarray]:
    """The user's top categories by share of 30-day events with a known category.

    Ties go to the category whose name sorts first; missing ranks are None with share 0.
    """
    keep = (window.category >= 0) & window.within(HISTORY_DAYS)
    width = max(len(window.category_names), 1)
    pairs, counts = np.unique(
        window.entity[keep].astype(np.int64) * width + window.category[keep], return_counts=True
    )
    user, category = pairs // width, pairs % width
    total = np.bincount(user, weights=counts, minlength=n)
    order = np.lexsort((category, -counts, user))
    user, category, counts = user[order], category[order], counts[order]
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if user.size else user
    rank = np.arange(user.size) - np.repeat(starts, np.diff(np.r_[starts, user.size]))
    result: dict[str, np.ndarray] = {}
    for r in range(TOP_CATEGORIES):
        at = rank == r
        names = np.full(n, None, dtype=object)
        names[user[at]] = window.category_names[category[at]]
        shares = np.zeros(n)
        shares[user[at]] = counts[at] / total[user[at]]
        result[f"top_category_{r + 1}"] = names
        result[f"top_category_{r + 1}_share"] = shares
    return result


# ---- small helpers --------------------------------------------------------------------------


def _latest_rows(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per key, the last one given (callers pass older partitions first)."""
    return frame.drop_duplicates(key, keep="last")


def _positions(values: pd.Series, keys: pd.Index) -> np.ndarray:
    """Position of each value in ``keys``, -1 where absent; cheap for categorical input."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.append(keys.get_indexer(values.cat.categories.astype(object)), -1)
        return lookup[values.cat.codes.to_numpy()]  # code -1 (null) picks the appended -1
    return keys.get_indexer(values.astype(object))


def _codes(values: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``allowed``; -1 for null or anything else."""
    return _positions(values, pd.Index(allowed, dtype=object))


def _factorized(values: pd.Series) -> np.ndarray:
    """Integer codes of the values, -1 for null."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64)
    return pd.factorize(values)[0].astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros(len(numerator), dtype="float64")
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _strings(values: pd.Series) -> np.ndarray:
    """Object array of str, None for missing (what the schema's ``string`` means in pandas)."""
    return values.astype(object).where(values.notna(), None).to_numpy(dtype=object)


def _assemble(
    keys: pd.Index, end: pd.Timestamp, schema: tuple[FeatureColumn, ...], columns: dict
) -> pd.DataFrame:
    """Key, stamp, then the schema's columns in its order, each cast to its declared dtype."""
    data = {keys.name: keys.to_numpy(dtype=object)}
    stamps = np.full(len(keys), epoch_micros(end), dtype=np.int64).view("datetime64[us]")
    data[TIMESTAMP] = pd.DatetimeIndex(stamps).tz_localize("UTC")
    for column in schema:
        values = columns[column.name]
        data[column.name] = values if column.dtype == "string" else values.astype(column.dtype)
    return pd.DataFrame(data)
