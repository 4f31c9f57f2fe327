"""The recommender on a quickstart-size synthetic shop: quality against popularity and the
oracle, cold start, seen-item exclusion, and the file-based evaluation the CLI runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pipelines.config import Settings
from pipelines.data.generator import ShopSpec, generate
from pipelines.models.recommender import (
    EASERecommender,
    Evaluation,
    PopularityRecommender,
    evaluate_events,
    evaluate_files,
    split_interactions,
)

K = 10


@dataclass(frozen=True)
class Shop:
    events: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    truth_dir: Path


def read_landing(landing: Path, table: str) -> pd.DataFrame:
    files = sorted(landing.glob(f"{table}/date=*/*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The quickstart shop (2,000 users, 500 items, 30 days). Events straight from landing:
    ``synthetic_shop`` would also compute 30 days of feature tables this module never reads."""
    settings = Settings(home=tmp_path_factory.mktemp("shop"))
    generate(ShopSpec(), settings)
    landing = settings.landing_dir
    return Shop(
        events=read_landing(landing, "events"),
        users=read_landing(landing, "users").drop_duplicates("user_id", keep="last"),
        items=read_landing(landing, "items").drop_duplicates("item_id", keep="last"),
        truth_dir=settings.truth_dir,
    )


@pytest.fixture(scope="module")
def evaluation(shop: Shop) -> Evaluation:
    return evaluate_events(
        shop.events, items=shop.items, valid_days=7, test_days=7, k=K, truth_dir=shop.truth_dir
    )


@pytest.fixture(scope="module")
def ease(shop: Shop) -> EASERecommender:
    return EASERecommender().fit(shop.events, items=shop.items)


def history(shop: Shop, user: str) -> set[str]:
    return set(shop.events.loc[shop.events["user_id"] == user, "item_id"])


def heaviest_user(shop: Shop) -> str:
    return str(shop.events["user_id"].value_counts().index[0])


# ---- quality -------------------------------------------------------------------------------


def test_chosen_model_beats_popularity_and_comes_near_the_oracle(evaluation: Evaluation) -> None:
    report = evaluation.to_dict()
    chosen = report["metrics"]["ndcg_at_10"]
    popularity = report["baseline"]["popularity"]["ndcg_at_10"]
    oracle = report["oracle_ndcg_at_10"]
    assert report["model"] != "popularity"
    assert chosen >= 1.5 * popularity, report["selection"]
    assert chosen >= 0.7 * oracle, report["selection"]
    assert oracle > chosen, "the truth ranks better than anything learned from events"
    assert report["ndcg_at_10_lift"] == pytest.approx(chosen / popularity)
    # every metric family at 5, 10 and 20, and coverage of the catalogue
    assert {"recall_at_20", "map_at_5", "hit_rate_at_10", "coverage_at_10"} <= set(
        report["metrics"]
    )
    assert (
        report["metrics"]["coverage_at_10"] > 5 * report["baseline"]["popularity"]["coverage_at_10"]
    ), "personal lists spread over the catalogue; popularity shows everyone the same items"


def test_test_lists_hold_k_unseen_items_per_user(shop: Shop, evaluation: Evaluation) -> None:
    recs = evaluation.recommendations
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    per_user = recs.groupby("user_id").size()
    assert per_user.size == evaluation.n_users
    assert (per_user == K).all()
    split = split_interactions(shop.events, valid_days=7, test_days=7)
    before = split.train_and_valid[["user_id", "item_id"]].drop_duplicates()
    assert recs.merge(before, on=["user_id", "item_id"]).empty, "nothing seen before the test"


def test_the_same_seed_gives_identical_metrics(shop: Shop, evaluation: Evaluation) -> None:
    again = evaluate_events(
        shop.events, items=shop.items, valid_days=7, test_days=7, k=K, truth_dir=shop.truth_dir
    )
    assert again.to_dict() == evaluation.to_dict()
    pd.testing.assert_frame_equal(again.recommendations, evaluation.recommendations)


def test_split_keeps_the_last_days_for_test_and_only_new_items_as_truth(shop: Shop) -> None:
    split = split_interactions(shop.events, valid_days=7, test_days=7)
    last_day = shop.events["event_ts"].max().normalize()
    assert split.test_start == last_day - pd.Timedelta(days=6)
    assert split.valid_start == split.test_start - pd.Timedelta(days=7)
    assert (split.train["timestamp"] < split.valid_start).all()
    assert (split.test["timestamp"] >= split.test_start).all()
    assert len(split.train) + len(split.valid) + len(split.test) == len(shop.events)
    touched = set(zip(split.test["user_id"], split.test["item_id"], strict=True))
    before = set(
        zip(split.train_and_valid["user_id"], split.train_and_valid["item_id"], strict=True)
    )
    truth = set(zip(split.test_truth["user_id"], split.test_truth["item_id"], strict=True))
    assert truth == touched - before


# ---- exclusion and cold start -----------------------------------------------------------------


def test_seen_items_are_excluded_unless_asked_for(shop: Shop, ease: EASERecommender) -> None:
    user = heaviest_user(shop)
    seen = history(shop, user)
    default = ease.recommend([user], k=K)
    assert len(default) == K
    assert not set(default["item_id"]) & seen
    assert default["rank"].tolist() == list(range(1, K + 1))
    assert default["score"].is_monotonic_decreasing
    repeat = ease.recommend([user], k=K, exclude_seen=False)
    assert set(repeat["item_id"]) & seen, "repeat-purchase mode shows items bought before"


def test_a_new_item_reaches_users_who_like_its_category(shop: Shop, ease: EASERecommender) -> None:
    user = heaviest_user(shop)
    mine = shop.items[shop.items["item_id"].isin(history(shop, user))]
    favourite = mine["category"].value_counts().index[0]
    liked = mine[mine["category"] == favourite]
    new_item = pd.DataFrame(
        {
            "item_id": ["i99999"],
            "category": [favourite],
            "brand": [liked["brand"].mode().iloc[0]],
            "price": [liked["price"].median()],
            "launched_ts": [shop.events["event_ts"].max()],
        }
    )
    model = clone(ease).fit(shop.events, items=pd.concat([shop.items, new_item]))
    assert "i99999" not in model.item_ids_ and "i99999" in model.catalogue_
    scores = model.score_items(shop.users["user_id"], ["i99999"]).ravel()
    mine_score = model.score_items([user], ["i99999"])[0, 0]
    assert np.isfinite(scores).all()
    assert (scores < mine_score).mean() > 0.9, "it ranks high for fans of its category"
    recs = model.recommend([user], k=30)
    assert len(recs) == 30
    assert "i99999" in set(recs["item_id"])
    # without attributes a model cannot score what it never saw
    assert "i99999" not in set(ease.catalogue_)


def test_a_new_user_gets_popularity_or_their_segments(shop: Shop) -> None:
    country = shop.users.set_index("user_id")["country"]
    segments = {**country.to_dict(), "u-new-de": "DE"}
    model = EASERecommender().fit(shop.events, items=shop.items, segments=segments)
    recs = model.recommend(["u-new", "u-new-de"], k=K)
    assert recs.groupby("user_id").size().to_dict() == {"u-new": K, "u-new-de": K}
    everyone = recs.loc[recs["user_id"] == "u-new", "item_id"].tolist()
    top = model.item_ids_[np.argsort(-model.popularity_, kind="stable")[:K]].tolist()
    assert everyone == top
    german = recs.loc[recs["user_id"] == "u-new-de", "item_id"].tolist()
    de_users = set(country[country == "DE"].index)
    de_events = shop.events[shop.events["user_id"].isin(de_users)]
    assert german != everyone
    assert set(german) <= set(de_events["item_id"]), "drawn from what German users touched"


def test_ease_caps_its_dense_inverse_and_treats_the_tail_as_cold(shop: Shop) -> None:
    capped = EASERecommender(max_items=50).fit(shop.events)
    assert capped.coef_.shape == (50, 50)
    user = heaviest_user(shop)
    modelled = set(capped.item_ids_[capped.model_items_])
    assert set(capped.recommend([user], k=K)["item_id"]) <= modelled
    hybrid = EASERecommender(max_items=50).fit(shop.events, items=shop.items)
    assert len(hybrid.recommend([user], k=100)) == 100, "the tail is scored by its attributes"


def test_estimator_contract(shop: Shop) -> None:
    model = EASERecommender(l2=5.0)
    assert clone(model).get_params()["l2"] == 5.0
    with pytest.raises(NotFittedError):
        model.recommend(["u000001"])
    with pytest.raises(ValueError, match="l2 must be positive, got -1"):
        EASERecommender(l2=-1).fit(shop.events.head(100))
    with pytest.raises(ValueError, match="half_life_days"):
        PopularityRecommender(half_life_days=0).fit(shop.events.head(100))
    assert PopularityRecommender().fit(shop.events.head(100)) is not None


# ---- the file-based evaluation ------------------------------------------------------------------


def ratings_files(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny MovieLens-like file: two taste groups of 20 users, 15 films each, dated ratings."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, 41):
        films = rng.choice(np.arange(1, 16) + 15 * (user % 2), 8, replace=False)
        for film in films:
            rows.append(
                (user, film, int(rng.integers(1, 6)), 1_000_000_000 + int(rng.integers(1e6)))
            )
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    cut = ratings["timestamp"].quantile(0.8)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    ratings[ratings["timestamp"] <= cut].to_csv(train, index=False)
    ratings[ratings["timestamp"] > cut].to_csv(test, index=False)
    return train, test


def test_evaluate_files_end_to_end_on_a_ratings_csv(tmp_path: Path) -> None:
    train, test = ratings_files(tmp_path)
    out = tmp_path / "recs.csv"
    report = evaluate_files(train, test, k=5, out=out)
    assert json.loads(json.dumps(report)) == report, "the CLI prints it as JSON"
    assert report["out"] == str(out)
    assert report["metrics"]["ndcg_at_10"] > report["baseline"]["popularity"]["ndcg_at_10"]
    assert report["validation_split"].startswith("latest 10% by time")
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs.groupby("user_id").size().max() == 5
    trained = pd.read_csv(train, dtype=str)
    seen = set(zip(trained["userId"], trained["movieId"], strict=True))
    assert not seen & set(zip(recs["user_id"], recs["item_id"], strict=True))

    parquet = evaluate_files(train, test, k=3, out=tmp_path / "recs.parquet")
    assert pd.read_parquet(parquet["out"]).groupby("user_id").size().max() == 3
    with pytest.raises(ValueError, match=r"recs\.json.*\.parquet or \.csv"):
        evaluate_files(train, test, out=tmp_path / "recs.json")
