"""A fourth model is one spec plus its thresholds: registered, it trains, gates and is monitored.

The toy model tells whether a customer bought in the last week from their views, carts and
sessions of that week; it exists only in this test. Nothing else in the platform is told about
it: training, the gate and the monitor find it through the catalogue.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.data.generator import ShopSpec
from pipelines.flows.monitor import monitor_model
from pipelines.flows.train import carry_out_gate, gate_version, model_requested, train_model
from pipelines.models import catalog
from pipelines.models.runs import HOLDOUT_DIR, TrainingError, sklearn_logger, training_run
from pipelines.models.spec import ModelSpec
from pipelines.models.testing import curated_shop
from pipelines.registry import CHAMPION, aliases, curated_lineage

START = date(2026, 2, 2)
DAYS = 21
END = START + timedelta(days=DAYS - 2)
INPUTS = ["views_7d", "carts_7d", "sessions_7d"]
TOY = "weekly_buyer"


def _activity(settings: Settings, day: date) -> pd.DataFrame | None:
    from pipelines.features.offline import read_offline_partition

    return read_offline_partition(settings.feast_offline_dir, "user_activity", day)


def build_run(settings: Settings, end: date) -> Any:
    from sklearn.linear_model import LogisticRegression

    frame = _activity(settings, end)
    assert frame is not None
    frame = frame.assign(label=(frame["purchases_7d"] > 0).astype(int))
    train, test = frame.iloc[::2], frame.iloc[1::2]
    model = LogisticRegression(max_iter=500).fit(train[INPUTS], train["label"])
    accuracy = float((model.predict(test[INPUTS]) == test["label"]).mean())
    reference = frame[["user_id", *INPUTS]].assign(score=model.predict_proba(frame[INPUTS])[:, 1])
    return training_run(
        settings, TOY, "Who buys this week (a test model).",
        log_model=sklearn_logger(model, frame[INPUTS].head(5), skops=True),
        params={"inputs": ",".join(INPUTS)}, metrics={"accuracy": accuracy}, figures={},
        tables={f"{HOLDOUT_DIR}/rows.parquet": test[[*INPUTS, "label"]]},
        card_rows=[("accuracy", accuracy, None)], caveats=[], reference=reference,
        training_frame=frame, lineage=curated_lineage(settings, end - timedelta(days=6), end),
    )  # fmt: skip


def score_holdout(estimator: Any, holdout: Mapping[str, pd.DataFrame]) -> Any:
    from pipelines.gates import HoldoutScores

    rows = holdout["rows"]
    return HoldoutScores(
        metrics={"accuracy": float((estimator.predict(rows[INPUTS]) == rows["label"]).mean())}
    )


def monitor_inputs(settings: Settings, champion: Any, day: date) -> pd.DataFrame | None:
    frame = _activity(settings, day)
    if frame is None:
        return None
    return frame.assign(score=champion.predict_proba(frame[INPUTS])[:, 1])


SPEC = ModelSpec(
    name=TOY,
    purpose="Who buys this week (a test model).",
    build_run=build_run,
    score_holdout=score_holdout,
    monitor_inputs=monitor_inputs,
    prediction_column="score",
    monitor_columns=tuple(INPUTS),
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("toy-model") / "home"
    gates = home.parent / "gates.toml"
    shutil.copy(Path(__file__).parents[3] / "pipelines" / "gates.toml", gates)
    with gates.open("a") as out:  # the fourth model's thresholds, beside the others
        out.write(f"\n[models.{TOY}.value]\naccuracy = {{ min = 0.6 }}\n")
    settings = Settings(home=home, gates_file=gates)
    curated_shop(settings, ShopSpec(users=400, items=80, days=DAYS, seed=11, start=START))
    return settings


@pytest.fixture
def registered() -> Iterator[ModelSpec]:
    catalog.register(SPEC)
    yield SPEC
    catalog.unregister(TOY)


def test_a_registered_spec_trains_gates_and_is_monitored(
    shop: Settings, registered: ModelSpec
) -> None:
    assert TOY in catalog.model_names()
    assert model_requested(TOY, {}), "a run without a conf trains every model, this one too"
    trained = train_model(shop, TOY, END)
    record = gate_version(shop, TOY, trained.version)
    assert record.blessed, record.to_dict()
    outcome = carry_out_gate(shop, record)
    assert outcome["action"] == "promote"
    assert aliases(shop, TOY)[CHAMPION] == trained.version

    day = END + timedelta(days=1)
    verdict = monitor_model(shop, TOY, day)
    assert verdict["version"] == trained.version and verdict["retrain"] is False, verdict
    summary = json.loads((shop.reports_dir / TOY / day.isoformat() / "summary.json").read_text())
    assert {c["column"] for c in summary["drift"]["columns"]} == set(INPUTS)
    assert "prediction_drift" in summary


def test_an_unregistered_model_is_refused_by_name(shop: Settings) -> None:
    with pytest.raises(TrainingError, match=f"unknown model '{TOY}'; expected one of propensity"):
        train_model(shop, TOY, END)
    with pytest.raises(ValueError, match="built in"):
        catalog.unregister("propensity")
