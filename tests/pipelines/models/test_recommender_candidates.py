"""Which recommender candidates a training run tries: all by default, or the ones named."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.models.runs import TrainingError
from pipelines.models.specs.recommender import recommender_candidates

ITEMS = pd.DataFrame({"item_id": ["i1", "i2"], "category": ["books", "toys"]})


def test_all_candidates_by_default(tmp_path) -> None:
    labels = recommender_candidates(Settings(home=tmp_path), ITEMS)
    families = {label.split("(", 1)[0] for label in labels}
    assert families == {"popularity", "item_knn", "category_affinity", "ease"}


def test_naming_families_keeps_only_them(tmp_path) -> None:
    settings = Settings(home=tmp_path, recommender_candidates="popularity, ease")
    labels = recommender_candidates(settings, ITEMS)
    assert "popularity" in labels and all(
        label == "popularity" or label.startswith("ease(") for label in labels
    )


def test_an_unknown_name_says_which_exist(tmp_path) -> None:
    settings = Settings(home=tmp_path, recommender_candidates="popularity,deep_learning")
    with pytest.raises(TrainingError, match=r"deep_learning.*known: category_affinity"):
        recommender_candidates(settings, ITEMS)
