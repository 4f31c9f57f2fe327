"""Users and items derived from an events log, with or without catalogues."""

from __future__ import annotations

import pandas as pd

from pipelines.data.catalogue import UNKNOWN_COUNTRY, derive_items, derive_users


def log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "user_id": ["u1", "u2", "u1", "u3"],
            "item_id": ["i1", "i1", "i2", "i1"],
            "event_ts": pd.to_datetime(
                ["2025-03-03 10:00", "2025-03-04 11:00", "2025-03-05 09:00", "2025-03-06 12:00"],
                utc=True,
            ),
            "price": [2.0, 2.5, None, 3.0],
            "country": ["GB", "United Kingdom", "GB", None],
        }
    )


def test_users_land_on_their_first_day_with_what_the_log_says_of_them() -> None:
    users = derive_users(log(), known=pd.Index(["u3"]), attributes=log()[["user_id", "country"]])
    assert users["user_id"].tolist() == ["u1", "u2"], "u3 is known already"
    assert users["signup_ts"].dt.day.tolist() == [3, 4]
    assert users["country"].tolist() == ["GB", UNKNOWN_COUNTRY], "a name is not an ISO code"
    assert not users["consent_personalization"].any(), "no recorded consent, no personalisation"
    assert derive_users(log(), known=pd.Index([]), assume_consent=True)[
        "consent_personalization"
    ].all()


def test_items_take_first_seen_last_price_and_the_catalogues_category() -> None:
    catalogue = pd.DataFrame(
        {"item_id": ["i1", "i9"], "category": ["KITCHEN", "TOYS"], "price": [9.0, 4.0]}
    )
    items = derive_items(log(), known=pd.Index([]), attributes=catalogue).set_index("item_id")
    assert items.loc["i1", "price"] == 3.0, "the last price it sold at, not the list price"
    assert pd.isna(items.loc["i2", "price"]), "never priced: null, not zero"
    assert items.loc["i1", "category"] == "KITCHEN"
    assert str(items.loc["i1", "launched_ts"]) == "2025-03-03 10:00:00+00:00"
    assert items.loc["i9", "category"] == "TOYS", "catalogue items nobody bought yet exist too"
    assert items.loc["i9", "price"] == 4.0 and items.loc["i9", "launched_ts"].day == 3
    assert pd.isna(items.loc["i2", "category"])
