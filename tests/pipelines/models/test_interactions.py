"""Reading interaction files and turning interactions into a weighted, time-decayed matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.models.interactions import (
    InteractionsError,
    interaction_matrix,
    normalize_interactions,
    read_interactions,
)

DAY = pd.Timedelta(days=1)
NOW = pd.Timestamp("2026-01-31", tz="UTC")


def test_movielens_style_csv_is_mapped_and_typed(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(
        "userId,movieId,rating,timestamp\n"
        "007,0042,4.5,964982703\n"
        "007,0017,3,964982931\n"
        "12,0042,5,964983000\n"
    )
    frame = read_interactions(path)
    assert list(frame.columns) == ["user_id", "item_id", "weight", "timestamp"]
    assert frame["user_id"].tolist() == ["007", "007", "12"], "ids stay text, leading zeros kept"
    assert frame["item_id"].tolist() == ["0042", "0017", "0042"]
    assert frame["weight"].tolist() == [4.5, 3.0, 5.0]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2000-07-30 18:45:03", tz="UTC")


def test_parquet_events_keep_their_types_and_iso_times_parse(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "sku": ["s1", "s2"],
            "event_type": ["view", "purchase"],
            "event_time": ["2026-01-02T10:00:00Z", "2026-01-03T11:30:00+01:00"],
        }
    ).to_parquet(path)
    frame = read_interactions(path)
    assert frame["event_type"].tolist() == ["view", "purchase"]
    assert frame["timestamp"].tolist() == [
        pd.Timestamp("2026-01-02 10:00", tz="UTC"),
        pd.Timestamp("2026-01-03 10:30", tz="UTC"),
    ]


def test_file_errors_name_the_file_and_the_column(tmp_path: Path) -> None:
    no_item = tmp_path / "no_item.csv"
    no_item.write_text("user_id,rating\nu1,3\n")
    with pytest.raises(InteractionsError, match=r"no_item\.csv.*no item_id column"):
        read_interactions(no_item)

    bad_rating = tmp_path / "bad_rating.csv"
    bad_rating.write_text("user,item,rating\nu1,i1,great\n")
    with pytest.raises(InteractionsError, match=r"bad_rating\.csv.*'rating'.*'great'"):
        read_interactions(bad_rating)

    bad_time = tmp_path / "bad_time.csv"
    bad_time.write_text("user,item,timestamp\nu1,i1,yesterday\n")
    with pytest.raises(InteractionsError, match=r"bad_time\.csv.*'timestamp'.*'yesterday'"):
        read_interactions(bad_time)

    with pytest.raises(InteractionsError, match=r"ratings\.xlsx.*unknown file type"):
        (tmp_path / "ratings.xlsx").write_text("x")
        read_interactions(tmp_path / "ratings.xlsx")
    with pytest.raises(InteractionsError, match="no such file"):
        read_interactions(tmp_path / "missing.csv")


def test_event_types_weigh_view_below_cart_below_purchase() -> None:
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2"],
            "item_id": ["a", "a", "b", "b"],
            "event_type": ["view", "add_to_cart", "purchase", "view"],
            "event_ts": [NOW] * 4,
        }
    )
    data = interaction_matrix(events)
    dense = pd.DataFrame(data.matrix.toarray(), index=data.user_ids, columns=data.item_ids)
    assert dense.loc["u1", "a"] == 1 + 3, "a view and a cart add up"
    assert dense.loc["u1", "b"] == 5
    assert dense.loc["u2", "b"] == 1
    assert dense.loc["u2", "a"] == 0

    with pytest.raises(InteractionsError, match=r"'click'.*add them to weights"):
        interaction_matrix(events.assign(event_type="click"))


def test_time_decay_halves_the_weight_every_half_life() -> None:
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1"],
            "item_id": ["new", "week", "fortnight"],
            "weight": [2.0, 2.0, 2.0],
            "timestamp": [NOW, NOW - 7 * DAY, NOW - 14 * DAY],
        }
    )
    data = interaction_matrix(events, half_life_days=7)
    row = dict(zip(data.item_ids, data.matrix.toarray()[0], strict=True))
    assert row == pytest.approx({"new": 2.0, "week": 1.0, "fortnight": 0.5})
    # a later reference date ages everything alike
    later = interaction_matrix(events, half_life_days=7, now=NOW + 7 * DAY)
    assert later.matrix.toarray()[0] == pytest.approx(data.matrix.toarray()[0] / 2)
    # no decay without a half-life
    assert interaction_matrix(events).matrix.toarray()[0] == pytest.approx([2.0] * 3)


def test_fixed_rows_and_columns_lay_out_new_data_like_a_model() -> None:
    events = pd.DataFrame({"user": ["u2", "u9"], "item": ["b", "a"]})
    data = interaction_matrix(events, users=["u1", "u2"], items=["a", "b", "c"])
    assert data.shape == (2, 3)
    # u9 is not a row: dropped; u2 x b lands in row 1, column 1
    assert np.array_equal(data.matrix.toarray(), [[0, 0, 0], [0, 1, 0]])


def test_normalize_rejects_missing_ids() -> None:
    frame = pd.DataFrame({"user_id": ["u1", None], "item_id": ["a", "b"]})
    with pytest.raises(InteractionsError, match=r"'user_id'.*empty in 1 row"):
        normalize_interactions(frame, source="upload.csv")
