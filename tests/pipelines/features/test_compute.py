"""Feature values on hand-made events, checked against values worked out by hand.

Day D is 2026-03-10; its features are stamped 2026-03-11 00:00 UTC and see events in
[D-(w-1) 00:00, 2026-03-11 00:00) for a w-day window.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.features.compute import item_popularity, rfm_score, user_activity
from pipelines.features.schema import ITEM_POPULARITY, USER_ACTIVITY

D = date(2026, 3, 10)
STAMP = pd.Timestamp("2026-03-11 00:00", tz="UTC")
LONG_AGO = "2025-01-01"


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def make_events(*rows: dict) -> pd.DataFrame:
    """Events with defaults for whatever a test does not care about."""
    defaults = {
        "item_id": "i1",
        "event_type": "view",
        "session_id": None,
        "price": 10.0,
        "quantity": 1,
        "device": "web",
    }
    columns = ["user_id", "event_ts", *defaults]
    frame = pd.DataFrame([{**defaults, **row} for row in rows], columns=columns)
    frame["event_ts"] = pd.to_datetime(frame["event_ts"], utc=True, format="ISO8601").dt.as_unit(
        "us"
    )
    return frame


def make_users(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [user for user, _ in rows],
            "signup_ts": pd.to_datetime(
                [signup for _, signup in rows], utc=True, format="ISO8601"
            ).as_unit("us"),
            "country": "US",
            "age_band": "25-34",
            "consent_personalization": True,
        }
    )


def make_items(*rows: tuple[str, str | None, str | None]) -> pd.DataFrame:
    """(item_id, category, launched) rows; brand and price derive from the id."""
    return pd.DataFrame(
        {
            "item_id": [item for item, _, _ in rows],
            "category": [category for _, category, _ in rows],
            "brand": [f"brand-{item}" for item, _, _ in rows],
            "price": [float(len(item)) for item, _, _ in rows],
            "launched_ts": pd.to_datetime(
                [launched for _, _, launched in rows], utc=True, format="ISO8601"
            ).as_unit("us"),
        }
    )


ITEMS = make_items(("i1", "books", LONG_AGO))


def one_user(events: pd.DataFrame, items: pd.DataFrame = ITEMS) -> pd.Series:
    """The single feature row of user "a"."""
    out = user_activity(events, make_users(("a", LONG_AGO)), items, D)
    assert len(out) == 1
    return out.iloc[0]


# ---- windows ----------------------------------------------------------------------------------


def test_each_window_counts_only_its_days() -> None:
    row = one_user(
        make_events(
            {"user_id": "a", "event_ts": "2026-02-08 23:59:59"},  # D-30: outside every window
            {"user_id": "a", "event_ts": "2026-02-09 00:00"},  # first instant of D-29: 30d
            {"user_id": "a", "event_ts": "2026-03-02 12:00"},  # D-8: 30d, not 7d
            {"user_id": "a", "event_ts": "2026-03-04 00:00"},  # first instant of D-6: 7d
            {"user_id": "a", "event_ts": "2026-03-10 23:59:59"},  # last second of D: 1d
            {"user_id": "a", "event_ts": "2026-03-11 00:00"},  # D+1 00:00: after the snapshot
        )
    )
    assert (row.views_1d, row.views_7d, row.views_30d) == (1, 2, 4)


# Around the 7-day edge of D = 2026-03-10 (stamp S = 2026-03-11 00:00 = end of D)
EDGE_EVENTS = make_events(
    # D-8: out of 7d
    {"user_id": "a", "event_ts": "2026-03-02 12:00", "session_id": "s1", "device": "ios",
     "price": 100.0},
    # first instant of D-7 (S - 8 days): out of 7d
    {"user_id": "a", "event_ts": "2026-03-03 00:00", "session_id": "s2", "device": "ios",
     "price": 100.0},
    # last microsecond of D-7, just before S - 7 days: out of 7d
    {"user_id": "a", "event_ts": "2026-03-03 23:59:59.999999", "session_id": "s3",
     "device": "ios", "event_type": "purchase", "price": 100.0},
    # first instant of D-6 = exactly S - 7 days: in (the lower edge is closed)
    {"user_id": "a", "event_ts": "2026-03-04 00:00", "session_id": "s4", "device": "web",
     "price": 10.0},
    # last microsecond of D: in
    {"user_id": "a", "event_ts": "2026-03-10 23:59:59.999999", "session_id": "s5",
     "device": "web", "event_type": "purchase", "price": 10.0},
    # S itself, the first instant of D+1: out of every window (the upper edge is open)
    {"user_id": "a", "event_ts": "2026-03-11 00:00", "session_id": "s6", "device": "ios",
     "price": 100.0},
)  # fmt: skip


def test_seven_day_window_is_the_days_after_d_minus_7_through_d() -> None:
    """The 7-day window of day D is the days (D-7, D], i.e. D-6 .. D; in instants it is
    [S - 7 days, S) with S = D+1 00:00, the stamp (module docstring: ``[D-(w-1) 00:00, S)``).

    So D-6 00:00 and the last microsecond of D are in; D-7 (first instant, last microsecond)
    and D-8 are out, and so is S. Every 7-day feature shares the edge, for users and items.
    """
    row = one_user(EDGE_EVENTS)
    # in: the D-6 00:00 view (web, price 10) and the purchase at the end of D (web, 10)
    assert (row.views_7d, row.purchases_7d, row.spend_7d) == (1, 1, 10.0)
    assert row.sessions_7d == 2
    assert row.avg_view_price_7d == 10.0  # the D-7 view at price 100 would pull this to 55
    assert (row.device_share_web_7d, row.device_share_ios_7d) == (1.0, 0.0)
    # the 30-day window still sees D-8 and D-7, never S
    assert (row.views_30d, row.purchases_30d, row.spend_30d) == (3, 2, 110.0)
    assert row.sessions_30d == 5

    (item,) = item_popularity(EDGE_EVENTS, ITEMS, D).itertuples(index=False)
    assert (item.item_views_7d, item.item_purchases_7d) == (1, 1)
    assert (item.item_views_30d, item.item_purchases_30d) == (3, 2)


def test_funnel_counts_spend_and_rates() -> None:
    row = one_user(
        make_events(
            {"user_id": "a", "event_ts": "2026-03-10 10:00"},
            {"user_id": "a", "event_ts": "2026-03-10 10:01"},
            {"user_id": "a", "event_ts": "2026-03-01 10:00"},
            {"user_id": "a", "event_ts": "2026-03-01 10:01"},
            {"user_id": "a", "event_ts": "2026-03-10 10:02", "event_type": "add_to_cart"},
            {"user_id": "a", "event_ts": "2026-03-01 10:02", "event_type": "add_to_cart"},
            {
                "user_id": "a",
                "event_ts": "2026-03-10 10:03",
                "event_type": "purchase",
                "price": 10.0,
                "quantity": 2,
            },
            {"user_id": "a", "event_ts": "2026-03-08 09:00", "event_type": "purchase", "price": 5},
            {"user_id": "a", "event_ts": "2026-02-20 09:00", "event_type": "purchase", "price": 75},
        )
    )
    assert (row.views_1d, row.views_7d, row.views_30d) == (2, 2, 4)
    assert (row.carts_1d, row.carts_7d, row.carts_30d) == (1, 1, 2)
    assert (row.purchases_1d, row.purchases_7d, row.purchases_30d) == (1, 2, 3)
    assert (row.spend_1d, row.spend_7d, row.spend_30d) == (20.0, 25.0, 100.0)
    assert row.view_to_cart_rate_30d == pytest.approx(2 / 4)
    assert row.cart_to_purchase_rate_30d == pytest.approx(3 / 2)
    assert row.avg_order_value_30d == pytest.approx(100 / 3)


def test_rates_are_zero_when_nothing_to_divide_by() -> None:
    users = make_users(("buyer", LONG_AGO), ("quiet", LONG_AGO))
    events = make_events(
        {"user_id": "buyer", "event_ts": "2026-03-10 10:00", "event_type": "purchase"}
    )
    out = user_activity(events, users, ITEMS, D).set_index("user_id")
    rates = ["view_to_cart_rate_30d", "cart_to_purchase_rate_30d"]
    assert out.loc["buyer", rates].tolist() == [0.0, 0.0]
    assert out.loc["buyer", "avg_order_value_30d"] == 10.0
    assert out.loc["quiet", [*rates, "avg_order_value_30d"]].tolist() == [0.0, 0.0, 0.0]


def test_sessions_are_distinct_and_ignore_nulls() -> None:
    row = one_user(
        make_events(
            {"user_id": "a", "event_ts": "2026-03-10 10:00", "session_id": "s1"},
            {"user_id": "a", "event_ts": "2026-03-10 10:05", "session_id": "s1"},
            {"user_id": "a", "event_ts": "2026-03-09 10:00", "session_id": "s2"},
            {"user_id": "a", "event_ts": "2026-03-09 11:00", "session_id": None},
            {"user_id": "a", "event_ts": "2026-03-01 10:00", "session_id": "s3"},
        )
    )
    assert (row.sessions_7d, row.sessions_30d) == (2, 3)


# ---- recency ----------------------------------------------------------------------------------


def test_recency_is_measured_to_the_end_of_the_day() -> None:
    row = one_user(
        make_events(
            {"user_id": "a", "event_ts": "2026-03-08 00:00", "event_type": "purchase"},
            {"user_id": "a", "event_ts": "2026-03-10 18:00"},
        )
    )
    assert row.days_since_last_event == pytest.approx(0.25)
    assert row.days_since_last_purchase == pytest.approx(3.0)


def test_recency_carries_over_from_the_previous_day_for_quiet_users() -> None:
    users = make_users(("active", LONG_AGO), ("quiet", LONG_AGO), ("new", LONG_AGO))
    events = make_events({"user_id": "active", "event_ts": "2026-03-10 12:00"})
    previous = pd.DataFrame(
        {
            "user_id": ["active", "quiet"],
            "event_timestamp": pd.to_datetime(
                ["2026-03-10", "2026-03-10"], utc=True, format="ISO8601"
            ),
            "days_since_last_event": [40.0, 45.5],
            "days_since_last_purchase": [100.0, np.nan],
        }
    )
    out = user_activity(events, users, ITEMS, D, previous=previous).set_index("user_id")
    # events in the window win over the carried value
    assert out.loc["active", "days_since_last_event"] == pytest.approx(0.5)
    assert out.loc["active", "days_since_last_purchase"] == pytest.approx(101.0)
    # no events in 30 days: yesterday's value plus one day; never bought stays null
    assert out.loc["quiet", "days_since_last_event"] == pytest.approx(46.5)
    assert np.isnan(out.loc["quiet", "days_since_last_purchase"])
    # nothing yesterday, nothing today: never
    assert out.loc["new", ["days_since_last_event", "days_since_last_purchase"]].isna().all()


def test_without_previous_a_quiet_user_has_no_recency() -> None:
    out = user_activity(make_events(), make_users(("quiet", LONG_AGO)), ITEMS, D)
    assert out["days_since_last_event"].isna().all()


# ---- the customer's own buying rhythm ---------------------------------------------------------


def test_purchase_rhythm_counts_days_not_order_lines() -> None:
    row = one_user(
        make_events(
            *(  # one order of two lines on Feb 20, then Mar 1 and Mar 8; a view does not count
                {"user_id": "a", "event_ts": ts, "event_type": "purchase"}
                for ts in ("2026-02-20 09:00", "2026-02-20 09:00", "2026-03-01 00:00")
            ),
            {"user_id": "a", "event_ts": "2026-03-08 00:00", "event_type": "purchase"},
            {"user_id": "a", "event_ts": "2026-03-09 00:00"},
        )
    )
    assert row.purchase_days_total == 3
    assert row.days_since_first_purchase == pytest.approx(18.625)  # Feb 20 09:00 -> Mar 11
    assert row.days_between_purchases == pytest.approx((18.625 - 3.0) / 2)
    assert row.purchase_overdue_ratio == pytest.approx(3.0 / 7.8125)


def test_one_purchase_day_has_no_rhythm_and_never_buying_has_none_at_all() -> None:
    users = make_users(("once", LONG_AGO), ("never", LONG_AGO))
    events = make_events(
        {"user_id": "once", "event_ts": "2026-03-02 00:00", "event_type": "purchase"},
        {"user_id": "never", "event_ts": "2026-03-02 00:00"},
    )
    out = user_activity(events, users, ITEMS, D).set_index("user_id")
    assert out.loc["once", "purchase_days_total"] == 1
    assert out.loc["once", "days_since_first_purchase"] == pytest.approx(9.0)
    assert out.loc["once", ["days_between_purchases", "purchase_overdue_ratio"]].isna().all()
    assert out.loc["never", "purchase_days_total"] == 0
    assert out.loc["never", ["days_since_first_purchase", "days_between_purchases"]].isna().all()


def test_purchase_rhythm_carries_over_and_counts_only_days_after_the_previous_stamp() -> None:
    users = make_users(("a", LONG_AGO), ("quiet", LONG_AGO))
    events = make_events(
        # Mar 5 is inside the 30-day window but already counted in yesterday's total
        {"user_id": "a", "event_ts": "2026-03-05 00:00", "event_type": "purchase"},
        {"user_id": "a", "event_ts": "2026-03-10 12:00", "event_type": "purchase"},
    )
    previous = pd.DataFrame(
        {
            "user_id": ["a", "quiet"],
            "event_timestamp": pd.to_datetime(["2026-03-10", "2026-03-10"], utc=True),
            "days_since_last_event": [5.0, 60.0],
            "days_since_last_purchase": [5.0, 60.0],
            "purchase_days_total": [4, 3],
            "days_since_first_purchase": [120.0, 200.0],
        }
    )
    out = user_activity(events, users, ITEMS, D, previous=previous).set_index("user_id")
    assert out.loc["a", "purchase_days_total"] == 5
    assert out.loc["a", "days_since_first_purchase"] == pytest.approx(121.0)
    assert out.loc["a", "days_between_purchases"] == pytest.approx((121.0 - 0.5) / 4)
    # no purchase in 30 days: the lifetime count stays, the first purchase grows a day older
    assert out.loc["quiet", "purchase_days_total"] == 3
    assert out.loc["quiet", "days_since_first_purchase"] == pytest.approx(201.0)
    assert out.loc["quiet", "purchase_overdue_ratio"] == pytest.approx(61.0 / ((201 - 61) / 2))


# ---- RFM --------------------------------------------------------------------------------------


def test_rfm_score_is_a_quintile_with_nulls_at_one() -> None:
    assert rfm_score(np.arange(1.0, 11.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # ties share a score: average rank 1.5 of 5 -> 30th percentile -> 2
    assert rfm_score(np.array([1, 1, 2, 3, 5, np.nan])).tolist() == [2, 2, 3, 4, 5, 1]
    lower_is_better = np.array([4.5, 3.5, 2.5, 1.5, 0.5, np.nan])
    assert rfm_score(lower_is_better, higher_is_better=False).tolist() == [1, 2, 3, 4, 5, 1]


def test_rfm_score_does_not_depend_on_row_order() -> None:
    values = np.array([3.0, 1.0, 1.0, 2.0, 2.0, 2.0, 7.0, np.nan, 5.0])
    order = np.random.default_rng(0).permutation(values.size)
    assert rfm_score(values[order]).tolist() == rfm_score(values)[order].tolist()


def test_rfm_scores_of_users() -> None:
    names = ["p1", "p2", "p3", "p4", "p5", "browser", "never"]
    users = make_users(*((name, LONG_AGO) for name in names))
    purchases = {"p1": [1], "p2": [1], "p3": [2, 2], "p4": [1, 1, 1], "p5": [100] * 5}
    rows = [
        {
            "user_id": user,
            "event_ts": f"2026-03-0{i + 1} 12:00",
            "event_type": "purchase",
            "price": p,
        }
        for i, (user, prices) in enumerate(purchases.items())
        for p in prices
    ]
    rows.append({"user_id": "browser", "event_ts": "2026-03-10 12:00"})
    out = user_activity(make_events(*rows), users, ITEMS, D).set_index("user_id")
    # last events on days 1..5 and 10 (browser): 6 users with a recency, the freshest scores 5
    assert out.loc[names, "rfm_recency"].tolist() == [1, 2, 3, 4, 5, 5, 1]
    # purchases 1, 1, 2, 3, 5 among buyers -> ranks 1.5, 1.5, 3, 4, 5 of 5; no purchase -> 1
    assert out.loc[names, "rfm_frequency"].tolist() == [2, 2, 3, 4, 5, 1, 1]
    # spend 1, 1, 4, 3, 500 -> ranks 1.5, 1.5, 4, 3, 5: p4 buys more often than p3 but less
    assert out.loc[names, "rfm_monetary"].tolist() == [2, 2, 4, 3, 5, 1, 1]


# ---- devices and categories -------------------------------------------------------------------


def test_device_shares_count_only_events_that_name_a_device() -> None:
    users = make_users(("a", LONG_AGO), ("anonymous", LONG_AGO))
    events = make_events(
        {"user_id": "a", "event_ts": "2026-03-10 10:00", "device": "web"},
        {"user_id": "a", "event_ts": "2026-03-10 10:01", "device": "web"},
        {"user_id": "a", "event_ts": "2026-03-02 10:02", "device": "ios"},
        {"user_id": "a", "event_ts": "2026-03-10 10:03", "device": None},
        {"user_id": "anonymous", "event_ts": "2026-03-10 10:03", "device": None},
    )
    out = user_activity(events, users, ITEMS, D).set_index("user_id")
    shares = ["device_share_web_30d", "device_share_ios_30d", "device_share_android_30d"]
    assert out.loc["a", shares].tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert out.loc["anonymous", shares].tolist() == [0.0, 0.0, 0.0]


def test_top_categories_by_share_with_ties_by_name() -> None:
    items = make_items(
        ("toy", "toys", LONG_AGO),
        ("book", "books", LONG_AGO),
        ("rake", "garden", LONG_AGO),
        ("lamp", "home", LONG_AGO),
        ("mystery", None, LONG_AGO),
    )
    visits = ["toy", "toy", "book", "book", "lamp", "rake", "mystery", "not-in-catalogue"]
    row = one_user(
        make_events(
            *({"user_id": "a", "event_ts": "2026-03-10 10:00", "item_id": i} for i in visits)
        ),
        items,
    )
    # six events have a known category: books and toys tie at 2/6, garden and home at 1/6
    top = [row[f"top_category_{r}"] for r in (1, 2, 3)]
    shares = [row[f"top_category_{r}_share"] for r in (1, 2, 3)]
    assert top == ["books", "toys", "garden"]
    assert shares == pytest.approx([2 / 6, 2 / 6, 1 / 6])
    assert row.distinct_categories_30d == 4


def test_fewer_categories_than_ranks_leave_nulls() -> None:
    users = make_users(("a", LONG_AGO), ("quiet", LONG_AGO))
    events = make_events({"user_id": "a", "event_ts": "2026-03-10 10:00"})
    out = user_activity(events, users, ITEMS, D).set_index("user_id")
    assert out.loc["a", ["top_category_1", "top_category_1_share"]].tolist() == ["books", 1.0]
    assert out.loc["a", ["top_category_2", "top_category_2_share"]].tolist() == [None, 0.0]
    assert out.loc["quiet", ["top_category_1", "top_category_3"]].tolist() == [None, None]
    assert out.loc["quiet", "distinct_categories_30d"] == 0


# ---- who gets a row ---------------------------------------------------------------------------


def test_known_users_get_a_row_and_future_sign_ups_do_not() -> None:
    users = make_users(
        ("quiet", LONG_AGO),
        ("late", "2026-03-10 23:00"),
        ("tomorrow", "2026-03-11 00:00"),
        ("active", LONG_AGO),
    )
    events = make_events(
        {"user_id": "active", "event_ts": "2026-03-10 10:00"},
        {"user_id": "ghost", "event_ts": "2026-03-10 10:00"},  # not in users: ignored
    )
    out = user_activity(events, users, ITEMS, D)
    assert out["user_id"].tolist() == ["active", "late", "quiet"]
    quiet = out.set_index("user_id").loc["quiet"]
    counts = [c.name for c in USER_ACTIVITY if c.dtype == "int64" and not c.name.startswith("rfm")]
    assert (quiet[counts] == 0).all()
    assert quiet[["rfm_recency", "rfm_frequency", "rfm_monetary"]].tolist() == [1, 1, 1]


def test_output_has_the_schema_columns_and_dtypes() -> None:
    events = make_events({"user_id": "a", "event_ts": "2026-03-10 10:00"})
    out = user_activity(events, make_users(("b", LONG_AGO), ("a", LONG_AGO)), ITEMS, D)
    assert list(out.columns) == ["user_id", "event_timestamp", *(c.name for c in USER_ACTIVITY)]
    assert str(out["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert (out["event_timestamp"] == STAMP).all()
    for column in USER_ACTIVITY:
        expected = "object" if column.dtype == "string" else column.dtype
        assert out[column.name].dtype == expected, column.name
    assert out["user_id"].tolist() == ["a", "b"]


def test_row_order_and_categorical_input_do_not_change_the_result() -> None:
    rng = np.random.default_rng(3)
    n = 400
    users = make_users(*((f"u{i}", LONG_AGO) for i in range(20)))
    items = make_items(*((f"i{i}", f"c{i % 4}", LONG_AGO) for i in range(10)))
    events = make_events(
        *(
            {
                "user_id": f"u{rng.integers(25)}",
                "item_id": f"i{rng.integers(12)}",
                "event_type": ["view", "add_to_cart", "purchase"][rng.integers(3)],
                "event_ts": STAMP - pd.Timedelta(minutes=int(rng.integers(31 * 24 * 60))),
                "session_id": f"s{rng.integers(60)}",
                "device": [None, "web", "ios", "android"][rng.integers(4)],
            }
            for _ in range(n)
        )
    )
    expected = user_activity(events, users, items, D)
    shuffled = events.sample(frac=1.0, random_state=1)
    categorical = shuffled.astype(
        {c: "category" for c in ("user_id", "item_id", "event_type", "device")}
    ).astype({"session_id": "string[pyarrow]"})
    pd.testing.assert_frame_equal(user_activity(shuffled, users, items, D), expected)
    pd.testing.assert_frame_equal(user_activity(categorical, users, items, D), expected)
    pd.testing.assert_frame_equal(
        item_popularity(categorical, items, D), item_popularity(events, items, D)
    )


# ---- items ------------------------------------------------------------------------------------


def test_item_popularity() -> None:
    items = make_items(
        ("i1", "books", "2026-03-01 00:00"),
        ("i22", "toys", None),
        ("i333", "home", "2026-03-11 00:00"),  # launches tomorrow: no row yet
    )
    events = make_events(
        {"user_id": "a", "item_id": "i1", "event_ts": "2026-03-10 08:00"},
        {"user_id": "b", "item_id": "i1", "event_ts": "2026-03-09 08:00"},
        {"user_id": "b", "item_id": "i1", "event_ts": "2026-03-01 08:00"},
        {"user_id": "c", "item_id": "i1", "event_ts": "2026-02-01 08:00"},  # too old
        {
            "user_id": "b",
            "item_id": "i1",
            "event_ts": "2026-03-09 08:01",
            "event_type": "add_to_cart",
        },
        {"user_id": "b", "item_id": "i1", "event_ts": "2026-03-09 08:02", "event_type": "purchase"},
        {
            "user_id": "a",
            "item_id": "i22",
            "event_ts": "2026-03-10 09:00",
            "event_type": "purchase",
        },
        {"user_id": "a", "item_id": "nope", "event_ts": "2026-03-10 09:00"},
    )
    out = item_popularity(events, items, D)
    assert list(out.columns) == ["item_id", "event_timestamp", *(c.name for c in ITEM_POPULARITY)]
    assert out["item_id"].tolist() == ["i1", "i22"]
    assert (out["event_timestamp"] == STAMP).all()
    i1, i22 = out.iloc[0], out.iloc[1]
    assert (i1.item_views_1d, i1.item_views_7d, i1.item_views_30d) == (1, 2, 3)
    assert (i1.item_carts_1d, i1.item_carts_7d, i1.item_carts_30d) == (0, 1, 1)
    assert (i1.item_purchases_1d, i1.item_purchases_7d, i1.item_purchases_30d) == (0, 1, 1)
    assert i1.item_conversion_rate_30d == pytest.approx(1 / 3)
    assert (i1.item_price, i1.item_category, i1.item_brand) == (2.0, "books", "brand-i1")
    assert i1.item_days_since_launch == pytest.approx(10.0)
    # bought without a view in the window: the rate's denominator is 0, so is the rate
    assert (i22.item_purchases_1d, i22.item_conversion_rate_30d) == (1, 0.0)
    assert np.isnan(i22.item_days_since_launch)
    for column in ITEM_POPULARITY:
        expected = "object" if column.dtype == "string" else column.dtype
        assert out[column.name].dtype == expected, column.name
