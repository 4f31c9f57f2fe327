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


# ---- protocols, seen items, buy-again: small generated logs with a known right answer -------

T0 = pd.Timestamp("2025-01-01", tz="UTC")
COLUMNS = ["user_id", "item_id", "event_type", "event_ts", "quantity", "price"]


def order_lines(rows: list[tuple[str, str, pd.Timestamp]]) -> pd.DataFrame:
    """Purchases only, in the events contract's columns."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_ts"])
    return frame.assign(event_type="purchase", quantity=1, price=5.0)[COLUMNS]


def drifting_taste_log(seed: int = 0, users: int = 240) -> pd.DataFrame:
    """Each user bought 12 items of one taste over 600 days, then 3 of another in the last 45:
    a random holdout is mostly the old taste (decay hurts), the last days the new (decay helps).
    """
    rng = np.random.default_rng(seed)
    pools = [np.arange(20) + 20 * g for g in range(4)]
    rows = []
    for u in range(users):
        old, new = pools[u % 4], pools[(u + 1 + (u // 4) % 3) % 4]
        for i in rng.choice(old, 12, replace=False):
            rows.append((f"u{u:03d}", f"i{i:02d}", T0 + pd.Timedelta(days=rng.uniform(0, 600))))
        for i in rng.choice(new, 3, replace=False):
            rows.append((f"u{u:03d}", f"i{i:02d}", T0 + pd.Timedelta(days=rng.uniform(640, 685))))
    return order_lines(rows)


def rebuying_log(seed: int = 0, users: int = 150, repeat: bool = True) -> pd.DataFrame:
    """Every 5 days each user buys two of their three staples and now and then something else
    (``repeat``), or two items they never had (not ``repeat``: nobody rebuys, two tastes)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        staples = rng.choice(60, 3, replace=False)
        pool = list(rng.permutation(np.arange(30) * 2 + u % 2))
        for day in range(0, 120, 5):
            stamp = T0 + pd.Timedelta(days=day, hours=float(rng.uniform(0, 20)))
            bought = rng.choice(staples, 2, replace=False) if repeat else [pool.pop(), pool.pop()]
            if repeat and rng.random() < 0.3:  # now and then something new
                bought = [*bought, int(rng.integers(60))]
            rows += [(f"u{u:03d}", f"i{int(i):02d}", stamp) for i in bought]
            if not pool:
                break
    return order_lines(rows)


def test_a_random_split_selects_no_decay_where_the_last_days_select_one() -> None:
    events = drifting_taste_log()
    random_split = select_under(events, protocol="random")
    assert random_split.selection.params["half_life_days"] is None, random_split.selection.label
    temporal = select_under(events, protocol="temporal")
    assert temporal.selection.params["half_life_days"] is not None, temporal.selection.label


def select_under(events: pd.DataFrame, protocol: str) -> Evaluation:
    return evaluate_events(
        events,
        protocol=protocol,
        test_fraction=0.25,
        valid_days=20,
        test_days=20,
        seed=42,
        exclude_seen=True,
        candidates={"ease(l2=50)": EASERecommender(l2=50.0)},
    )


def test_seen_items_are_allowed_where_customers_rebuy_and_excluded_where_they_do_not() -> None:
    rebuy = evaluate_events(
        rebuying_log(), valid_days=10, test_days=10, exclude_seen="auto", seed=1
    )
    assert rebuy.selection.exclude_seen is False
    assert rebuy.selection.name in ("buy_again", "repurchase", "blend"), rebuy.selection.label
    chosen, popularity = rebuy.metrics[rebuy.selection.name], rebuy.metrics["popularity"]
    assert chosen["recall_at_10"] > 2 * popularity["recall_at_10"]
    assert "repeats count" in rebuy.to_dict()["truth"]

    novel = evaluate_events(
        rebuying_log(repeat=False), valid_days=10, test_days=10, exclude_seen="auto", seed=1
    )
    assert novel.selection.exclude_seen is True, novel.selection.label
    assert novel.selection.name not in ("buy_again", "repurchase", "blend")


def test_exclude_seen_true_keeps_the_novel_only_protocol() -> None:
    forced = evaluate_events(rebuying_log(), valid_days=10, test_days=10, exclude_seen=True)
    assert forced.selection.exclude_seen is True
    assert "new to the user" in forced.to_dict()["truth"]
    repeats = ("buy_again", "repurchase", "blend")
    assert not any(label.startswith(repeats) for label in forced.selection.scores)


@pytest.mark.parametrize("exclude_seen", ["auto", "true"])
def test_every_test_user_gets_k_rows_short_histories_and_cold_users_included(
    tmp_path: Path, exclude_seen: str
) -> None:
    events = rebuying_log(users=60)  # with true, many test users only rebought: no novel truth
    last = events["event_ts"].max()
    extra = order_lines(
        [
            ("short1", "i03", T0 + pd.Timedelta(days=3)),  # one train line, one test line
            ("short1", "i05", last),
            ("cold1", "i07", last),  # test only
            ("cold2", "i08", last - pd.Timedelta(days=1)),
        ]
    )
    path = tmp_path / "orders.csv"
    pd.concat([events, extra]).to_csv(path, index=False)
    out = tmp_path / "recs.csv"
    report = evaluate_files(events_path=path, test_days=10, k=K, out=out, exclude_seen=exclude_seen)
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    test_users = set(events.loc[events["event_ts"] > last - pd.Timedelta(days=9), "user_id"])
    expected = test_users | {"short1", "cold1", "cold2"}
    counts = recs.groupby("user_id").size()
    assert set(counts.index) == expected
    assert (counts == K).all(), counts[counts != K]
    assert not recs.duplicated(["user_id", "item_id"]).any()
    assert report["out_users"] == len(expected)


def test_a_model_scoring_fewer_than_k_items_is_filled_from_popularity() -> None:
    events = rebuying_log(repeat=False, users=40)
    capped = EASERecommender(max_items=5).fit(events)  # no items table: the tail is unscored
    recs = capped.recommend(events["user_id"].unique(), k=K)
    assert (recs.groupby("user_id").size() == K).all()
    assert np.isfinite(recs["score"]).all()


def test_benchmark_api_reports_every_family_on_the_same_users() -> None:
    from pipelines.models.recommender import benchmark_recommenders

    result = benchmark_recommenders(rebuying_log(), protocol="random", seed=42)
    assert {"champion", "popularity", "buy_again", "ease", "item_knn", "blend"} <= set(
        result["results"]
    )
    assert result["results"]["champion"]["label"] == result["winner"]
    assert all(0 <= r["ndcg_at_10"] <= 1 for r in result["results"].values())
    again = benchmark_recommenders(rebuying_log(), protocol="random", seed=42)
    assert again["results"] == result["results"], "the same seed gives the same figures"
