"""Live recommender performance is judged as the champion was selected: a buy-again champion on
repeat purchases, a novelty champion on items new to each customer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.partitions import partition_dir, write_table
from pipelines.models.recommender import BuyAgainRecommender, PopularityRecommender
from pipelines.models.specs.recommender import live_evidence as recommender_live

START = date(2026, 5, 4)


def regulars(settings: Settings, days: int = 10) -> pd.DataFrame:
    """40 customers, each buying the same two staples every day: nothing new, all repeats."""
    rows = []
    for offset in range(days):
        day = START + timedelta(days=offset)
        for user in range(40):
            for staple in (user % 7, 7 + user % 5):
                rows.append(
                    {
                        "event_id": f"e{offset}-{user}-{staple}",
                        "user_id": f"u{user}",
                        "item_id": f"i{staple}",
                        "event_type": "purchase",
                        "event_ts": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                        "session_id": f"s{offset}-{user}",
                        "quantity": 1,
                        "price": 2.5,
                    }
                )
    spec = contract.table("events")
    frame = pd.DataFrame(rows)
    for column in spec.columns:
        if column.name not in frame:
            frame[column.name] = pd.Series([None] * len(frame), dtype=column.pandas_dtype)
    for day, part in frame.groupby(frame["event_ts"].dt.date):
        target = partition_dir(settings.curated_dir, "events", day)
        target.mkdir(parents=True, exist_ok=True)
        write_table(contract.to_arrow(part, spec), target / "part-0.parquet")
    return frame


def test_a_buy_again_champion_is_judged_on_repeat_purchases(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    events = regulars(settings)
    trained_until = START + timedelta(days=6)
    day = START + timedelta(days=9)
    history = events[events["event_ts"] < pd.Timestamp(trained_until + timedelta(days=1), tz="UTC")]
    buy_again = BuyAgainRecommender().fit(history)
    assert buy_again.exclude_seen is False
    evidence = recommender_live(settings, day, trained_until, buy_again)
    assert evidence is not None, "repeat purchases are the truth a buy-again champion serves"
    scores = evidence(buy_again)
    assert scores.metrics["recall_at_10"] > 0.99
    assert len(scores.unit_ids) == 40
    # the previous champion is scored on the same users and truth: the comparison stays paired
    popularity = PopularityRecommender().fit(history)
    assert list(evidence(popularity).unit_ids) == list(scores.unit_ids)


def test_a_novelty_champion_is_judged_on_items_new_to_each_customer(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    events = regulars(settings)
    trained_until = START + timedelta(days=6)
    history = events[events["event_ts"] < pd.Timestamp(trained_until + timedelta(days=1), tz="UTC")]
    popularity = PopularityRecommender().fit(history)
    assert popularity.exclude_seen is True
    # nobody tried anything new after training: nothing to judge a novelty champion on
    assert recommender_live(settings, START + timedelta(days=9), trained_until, popularity) is None
