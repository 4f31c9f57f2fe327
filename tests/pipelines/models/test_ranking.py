"""Ranking metrics against numbers worked out by hand on a three-user case."""

from __future__ import annotations

from math import log2

import pandas as pd
import pytest

from pipelines.models.ranking import metrics_at_k_figure, ranking_metrics


def recs_frame(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(u, item, rank) for u, items in lists.items() for rank, item in enumerate(items, 1)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rank"]).assign(score=0.0)


@pytest.fixture
def case() -> tuple[pd.DataFrame, pd.DataFrame]:
    # A: relevant a, c, z -> hits at ranks 1 and 3 (z never shown)
    # B: relevant s       -> hit at rank 4
    # C: relevant m       -> no list at all: counts as a miss, not as absent
    # D: not in truth     -> only counts towards coverage (shows w)
    recs = recs_frame(
        {
            "A": ["a", "b", "c", "d", "e"],
            "B": ["p", "q", "r", "s", "t"],
            "D": ["w"],
        }
    )
    truth = pd.DataFrame(
        {"user_id": ["A", "A", "A", "B", "C"], "item_id": ["a", "c", "z", "s", "m"]}
    )
    return recs, truth


def test_metrics_match_hand_computation(case: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recs, truth = case
    m = ranking_metrics(recs, truth, k_values=(3, 5), n_catalogue=20)

    # A at k=3: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal (3 relevant) = 1 + 1/log2(3) + 1/2
    ndcg_a = 1.5 / (1 + 1 / log2(3) + 0.5)  # 0.70392
    assert ndcg_a == pytest.approx(0.70392, abs=1e-5)
    # B at k=5: one relevant item at rank 4 -> 1/log2(5) over an ideal of 1
    ndcg_b5 = 1 / log2(5)  # 0.43068
    assert m["ndcg_at_3"] == pytest.approx(ndcg_a / 3)  # 0.23464
    assert m["ndcg_at_5"] == pytest.approx((ndcg_a + ndcg_b5) / 3)  # 0.37820

    # recall: A finds 2 of 3, B finds 0 of 1 in the top 3 and 1 of 1 in the top 5, C nothing
    assert m["recall_at_3"] == pytest.approx((2 / 3) / 3)  # 0.22222
    assert m["recall_at_5"] == pytest.approx((2 / 3 + 1) / 3)  # 0.55556

    # AP@k = sum of precision@i at each hit / min(k, |R|):
    # A: (1/1 + 2/3) / 3 = 0.55556 at k=3 and k=5; B: (1/4) / 1 = 0.25 at k=5
    assert m["map_at_3"] == pytest.approx((1 + 2 / 3) / 3 / 3)  # 0.18519
    assert m["map_at_5"] == pytest.approx(((1 + 2 / 3) / 3 + 0.25) / 3)  # 0.26852

    assert m["precision_at_3"] == pytest.approx((2 / 3) / 3)  # 0.22222
    assert m["precision_at_5"] == pytest.approx((2 / 5 + 1 / 5) / 3)  # 0.2
    assert m["hit_rate_at_3"] == pytest.approx(1 / 3)
    assert m["hit_rate_at_5"] == pytest.approx(2 / 3)
    # coverage over every list shown: top 3 = a b c p q r w (7 of 20), top 5 = 11 of 20
    assert m["coverage_at_3"] == pytest.approx(7 / 20)
    assert m["coverage_at_5"] == pytest.approx(11 / 20)


def test_default_names_cover_5_10_20_and_omit_coverage_without_catalogue(
    case: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    recs, truth = case
    m = ranking_metrics(recs, truth)
    families = ("precision", "recall", "ndcg", "map", "hit_rate")
    assert set(m) == {f"{f}_at_{k}" for f in families for k in (5, 10, 20)}
    # lists are 5 long: nothing changes beyond k=5 except precision, which keeps dividing by k
    assert m["ndcg_at_20"] == m["ndcg_at_5"]
    assert m["precision_at_10"] == pytest.approx(m["precision_at_5"] / 2)


def test_graded_ndcg_uses_relevance_as_gain() -> None:
    recs = recs_frame({"A": ["a", "b", "c"]})
    truth = pd.DataFrame(
        {"user_id": ["A"] * 3, "item_id": ["a", "c", "z"], "relevance": [3.0, 1.0, 2.0]}
    )
    # DCG = 3/log2(2) + 1/log2(4) = 3.5; ideal order 3, 2, 1 = 3 + 2/log2(3) + 1/2 = 4.76186
    expected = 3.5 / (3 + 2 / log2(3) + 0.5)  # 0.73501
    graded = ranking_metrics(recs, truth, k_values=(3,), graded=True)
    assert graded["ndcg_at_3"] == pytest.approx(expected)
    assert ranking_metrics(recs, truth, k_values=(3,))["ndcg_at_3"] == pytest.approx(0.70392, 1e-4)


def test_a_perfect_list_scores_one() -> None:
    recs = recs_frame({"A": ["a", "b"], "B": ["c"]})
    truth = pd.DataFrame({"user_id": ["A", "A", "B"], "item_id": ["b", "a", "c"]})
    m = ranking_metrics(recs, truth, k_values=(1, 2))
    for name in ("ndcg_at_2", "map_at_2", "recall_at_2", "hit_rate_at_1", "ndcg_at_1"):
        assert m[name] == pytest.approx(1.0), name


def test_bad_inputs_say_what_is_wrong(case: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    recs, truth = case
    with pytest.raises(ValueError, match="rank"):
        ranking_metrics(recs.drop(columns="rank"), truth)
    with pytest.raises(ValueError, match="twice"):
        ranking_metrics(pd.concat([recs, recs.iloc[:1].assign(rank=9)]), truth)
    with pytest.raises(ValueError, match="no relevant"):
        ranking_metrics(recs, truth.iloc[:0])
    with pytest.raises(ValueError, match="relevance"):
        ranking_metrics(recs, truth, graded=True)


def test_metrics_at_k_figure_draws_each_model_per_metric(
    case: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    recs, truth = case
    model = ranking_metrics(recs, truth, n_catalogue=20)
    baseline = {name: value / 2 for name, value in model.items()}
    figure = metrics_at_k_figure({"ease": model, "popularity": baseline}, title="test")
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in visible] == [
        "ndcg",
        "map",
        "precision",
        "recall",
        "hit rate",
        "coverage",
    ]
    ndcg_axis = visible[0]
    lines = {line.get_label(): line for line in ndcg_axis.get_lines()}
    assert set(lines) == {"ease", "popularity"}
    assert list(lines["ease"].get_xdata()) == [5, 10, 20]
    assert list(lines["ease"].get_ydata()) == [model[f"ndcg_at_{k}"] for k in (5, 10, 20)]
    assert lines["popularity"].get_linestyle() == "--"
    with pytest.raises(ValueError, match="ndcg_at_10"):
        metrics_at_k_figure({"x": {"auc": 0.5}})


def test_per_user_values_average_to_the_reported_metrics() -> None:
    from pipelines.models.ranking import per_user_ranking_metrics

    recs = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "z"], "rank": [1, 2, 1, 2]}
    )
    truth = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["y", "x", "x"]})
    per_user = per_user_ranking_metrics(recs, truth, k_values=(2,))
    assert list(per_user["user_id"]) == ["a", "b", "c"]  # c got no list: a miss, not absent
    # a: hit at rank 2 -> 1/log2(3); b: hit at rank 1 -> 1; c: 0
    assert per_user["ndcg_at_2"].tolist() == pytest.approx([1 / log2(3), 1.0, 0.0])
    overall = ranking_metrics(recs, truth, k_values=(2,))
    for column in per_user.columns.drop("user_id"):
        assert per_user[column].mean() == pytest.approx(overall[column])
