"""Learned buy-again (RepurchaseRecommender): where the rhythm of rebuying matters, it must
beat buy-again at its best decay, and selection must find it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.models.pyfunc import load_state, save_state
from pipelines.models.ranking import ranking_metrics
from pipelines.models.recommender import (
    DEFAULT_HALF_LIFE_GRID,
    BuyAgainRecommender,
    PopularityRecommender,
    RepurchaseRecommender,
    evaluate_events,
    split_events,
)

T0 = pd.Timestamp("2025-01-01", tz="UTC")
DAYS = 200
WINDOW = 20  # validation and test days


def rhythm_log(seed: int = 0, users: int = 160) -> pd.DataFrame:
    """Each customer had three staples every third day until day 80, took up three new weekly
    staples at day 100, re-orders two slow items every 40 days, and buys one-off items (never
    again) twice a week. Frequency favours the abandoned staples, a short decay the latest
    one-offs over the slow items coming due: only the rhythm ranks all of them right."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        old, new, slow = (rng.choice(40, 3, replace=False) + 40 * g for g in range(3))
        rows += [(u, item, day) for day in range(0, 80, 3) for item in old]
        rows += [(u, item, day) for day in range(100, DAYS, 7) for item in new]
        for item in slow[:2]:
            for day in range(int(rng.integers(0, 40)), DAYS, 40):
                rows.append((u, item, day))
        for day in range(0, DAYS, 3):
            rows.append((u, 120 + int(rng.integers(400)), day))  # one-offs from a long tail
    frame = pd.DataFrame(rows, columns=["u", "i", "day"])
    stamps = T0 + pd.to_timedelta(frame["day"] + rng.uniform(0.3, 0.7, len(frame)), unit="D")
    return pd.DataFrame(
        {
            "user_id": "u" + frame["u"].astype(str),
            "item_id": "i" + frame["i"].astype(str),
            "event_type": "purchase",
            "event_ts": stamps,
        }
    )


@pytest.fixture(scope="module")
def split():
    return split_events(rhythm_log(), test_days=WINDOW, valid_days=WINDOW, include_seen=True)


def test_buys_again_by_rhythm_better_than_any_decay(split) -> None:
    users = pd.Index(split.test_truth["user_id"].unique())

    def ndcg(model) -> float:
        recs = model.fit(split.train_and_valid).recommend(users, k=10)
        return ranking_metrics(recs, split.test_truth, k_values=(10,))["ndcg_at_10"]

    best_decay = max(ndcg(BuyAgainRecommender(half_life_days=h)) for h in DEFAULT_HALF_LIFE_GRID)
    learned = RepurchaseRecommender(horizon_days=WINDOW)
    score = ndcg(learned)
    assert learned.fallback_ == ""
    # the seen-item ceiling is ~0.65 here (half the test truth is one-offs nobody can know);
    # the best decay reaches ~0.51, the rhythm ~0.57 on these same users
    assert score > best_decay + 0.04, (score, best_decay)


def test_selection_picks_the_learned_buy_again_and_it_stores_as_files(tmp_path) -> None:
    evaluation = evaluate_events(
        rhythm_log(seed=1, users=80),
        valid_days=WINDOW,
        test_days=WINDOW,
        exclude_seen="auto",
        candidates={"popularity": PopularityRecommender()},
        families=True,
    )
    assert evaluation.selection.name == "repurchase", evaluation.selection.label
    metrics = evaluation.metrics
    assert metrics["repurchase"]["ndcg_at_10"] > metrics["buy_again"]["ndcg_at_10"] + 0.04
    model = evaluation.selection.model
    users = model.user_ids_[:5]
    again = load_state(save_state(model, tmp_path / "state"))
    pd.testing.assert_frame_equal(again.recommend(users), model.recommend(users))


def test_without_enough_history_it_is_plain_buy_again() -> None:
    events = rhythm_log(users=3)
    events = events[events["event_ts"] < T0 + pd.Timedelta(days=15)]
    model = RepurchaseRecommender(horizon_days=WINDOW).fit(events)
    assert "less than" in model.fallback_
    users = model.user_ids_
    plain = BuyAgainRecommender(half_life_days=None).fit(events)
    assert model.recommend(users)["item_id"].tolist() == plain.recommend(users)["item_id"].tolist()
