"""One small shop with real champions, published segments and recommendations, and its online
store, shared by the serving tests (built once: ~30 s)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from pipelines.config import Settings
from pipelines.data.generator import ShopSpec
from pipelines.days import end_of_day
from pipelines.features.online import materialize_interval
from pipelines.flows.train import (
    carry_out_gate,
    gate_version,
    publish_recommendations,
    publish_segments,
    train_model,
)
from pipelines.models.testing import curated_shop
from pipelines.registry import CHAMPION, aliases

START = date(2026, 1, 5)
DAYS = 40
TOKEN = "serving-test-token"


@dataclass(frozen=True)
class Shop:
    settings: Settings
    last_day: date
    champions: dict[str, int]
    next_recommender: int  # a registered recommender version that is not the champion


@pytest.fixture(scope="package")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    settings = Settings(
        home=tmp_path_factory.mktemp("serving") / "home",
        train_time_budget_seconds=2.0,
        serve_token=TOKEN,
        serve_max_body_bytes=16 * 1024,
        serve_max_batch_events=50,
    )
    days = curated_shop(settings, ShopSpec(users=300, items=80, days=DAYS, seed=11, start=START))
    last = days[-1]
    for model in ("segmentation", "propensity", "recommender"):
        trained = train_model(settings, model, last)
        carry_out_gate(settings, gate_version(settings, model, trained.version))
    publish_segments(settings, last)
    publish_recommendations(settings, last)
    materialize_interval(
        settings,
        end_of_day(last) - timedelta(days=1),
        end_of_day(last) + timedelta(seconds=1),
        tables=["user_activity", "item_popularity"],
    )
    champions = {m: aliases(settings, m)[CHAMPION] for m in ("propensity", "recommender")}
    # a second recommender, registered but not promoted: the alias swap moves to it
    second = train_model(settings, "recommender", last - timedelta(days=1)).version
    assert second != champions["recommender"]
    return Shop(settings, last, champions, second)
