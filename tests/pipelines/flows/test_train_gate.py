"""The gate on real MLflow versions: challenger and champion scored on the same fresh holdout.

Propensity-shaped models of known quality (logistic regressions that see the signal, part of it,
or only noise) are registered with a holdout, then gated and promoted as the train DAG does.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import registry
from pipelines.config import Settings
from pipelines.flows.train import carry_out_gate, gate_version
from pipelines.registry import CHAMPION, PREVIOUS

MODEL = "propensity"


def shop_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal, weak, noise = rng.normal(size=(3, n))
    chance = 1 / (1 + np.exp(-(2.5 * signal + 0.8 * weak - 1.0)))
    return pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "event_timestamp": pd.Timestamp("2026-02-01", tz="UTC"),
            "signal": signal,
            "weak": weak,
            "noise": noise,
            "label": (rng.random(n) < chance).astype(int),
        }
    )


TRAIN, HOLDOUT = shop_rows(3000, seed=1), shop_rows(4000, seed=2)


def fitted(columns: list[str], rows: pd.DataFrame = TRAIN):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    select = ColumnTransformer([("keep", "passthrough", columns)])
    return make_pipeline(select, LogisticRegression()).fit(rows, rows["label"])


def register(settings: Settings, estimator, holdout: pd.DataFrame = HOLDOUT) -> int:
    import mlflow

    def log_model(name: str):
        return mlflow.sklearn.log_model(
            estimator, name=name, pip_requirements=registry.pinned_requirements()
        )

    run = registry.TrainingRun(
        model=MODEL,
        log_model=log_model,
        tables={"holdout/rows.parquet": holdout},
        lineage=registry.Lineage(date(2026, 1, 1), date(2026, 1, 31), (), "0" * 64, ()),
    )
    return registry.log_and_register(settings, run).version


@pytest.fixture
def store(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


def gate_and_promote(settings: Settings, version: int) -> tuple[str, dict]:
    record = gate_version(settings, MODEL, version)
    return record.decision, carry_out_gate(settings, record) | {"reason": record.reason}


def test_the_gate_matrix_on_registered_versions(store: Settings) -> None:
    noise_only = register(store, fitted(["noise"]))
    decision, outcome = gate_and_promote(store, noise_only)
    assert (decision, outcome["action"]) == ("rejected", "stop")  # first model, fails roc_auc
    assert "roc_auc" in outcome["reason"]
    assert CHAMPION not in registry.aliases(store, MODEL)

    partial = register(store, fitted(["weak", "signal"], TRAIN.head(300)))
    decision, outcome = gate_and_promote(store, partial)
    assert (decision, outcome["action"]) == ("blessed", "promote")  # first model, passes
    assert registry.aliases(store, MODEL)[CHAMPION] == partial

    full = register(store, fitted(["signal", "weak"]))
    twin = register(store, fitted(["signal", "weak"], TRAIN.sample(2900, random_state=3)))
    worse = register(store, fitted(["signal"]))

    decision, outcome = gate_and_promote(store, full)  # clearly better than the 300-row fit?
    tags = registry.mlflow_client(store).get_model_version(MODEL, str(full)).tags
    assert tags["gate.decision"] == decision
    if decision == "blessed":
        assert registry.aliases(store, MODEL).items() >= {CHAMPION: full, PREVIOUS: partial}.items()

    decision, outcome = gate_and_promote(store, twin)  # the same model on almost the same rows
    assert decision == "rejected" and "not significant" in outcome["reason"]

    decision, outcome = gate_and_promote(store, worse)  # loses the weak feature: clearly worse
    assert decision == "rejected"
    assert registry.aliases(store, MODEL)[CHAMPION] in (partial, full)

    version = registry.mlflow_client(store).get_model_version(MODEL, str(worse))
    assert version.tags["gate.decision"] == "rejected"
    assert version.tags["gate.roc_auc.passed"] == "false"
    assert "roc_auc" in version.description


def test_clearly_better_is_promoted_over_a_champion(store: Settings) -> None:
    weak_only = register(store, fitted(["weak", "noise"]))
    registry.tag_version(store, MODEL, weak_only, {"gate.decision": "blessed"})
    registry.promote(store, MODEL, weak_only, actor="test", reason="seed a champion")
    strong = register(store, fitted(["signal", "weak"]))
    decision, outcome = gate_and_promote(store, strong)
    # a champion of AUC ~0.6 against one of ~0.85: the whole interval is above 0
    assert decision == "blessed", outcome["reason"]
    assert registry.aliases(store, MODEL).items() >= {CHAMPION: strong, PREVIOUS: weak_only}.items()
    (promotion,) = [r for r in registry.read_audit(store, MODEL) if r["to_version"] == strong]
    assert promotion["gate"]["decision"] == "blessed"


def test_a_missing_metric_rejects_with_a_reason(store: Settings) -> None:
    one_class = HOLDOUT.assign(label=0)  # ROC-AUC is undefined on a holdout without buyers
    version = register(store, fitted(["signal", "weak"]), holdout=one_class)
    decision, outcome = gate_and_promote(store, version)
    assert decision == "rejected"
    assert "roc_auc" in outcome["reason"]


def test_a_hand_moved_champion_is_what_the_next_gate_compares_against(store: Settings) -> None:
    good = register(store, fitted(["signal", "weak"]))
    gate_and_promote(store, good)
    hand_picked = register(store, fitted(["weak", "noise"]))
    # what the MLflow UI does: point the alias at another version directly
    registry.mlflow_client(store).set_registered_model_alias(MODEL, CHAMPION, str(hand_picked))
    challenger = register(store, fitted(["signal", "weak"], TRAIN.head(2000)))
    record = gate_version(store, MODEL, challenger)
    assert record.champion_version == hand_picked
    moves = [(r["action"], r["from_version"], r["to_version"]) for r in registry.read_audit(store)]
    assert ("manual", good, hand_picked) in moves


def test_the_gate_compares_against_an_older_hand_picked_champion_not_a_newer_version(
    store: Settings,
) -> None:
    from sklearn.metrics import roc_auc_score

    strong_model = fitted(["signal", "weak"])
    strong = register(store, strong_model)
    rejected = register(store, fitted(["noise"]))
    assert gate_and_promote(store, rejected)[0] == "rejected"  # never champion
    # an engineer picks the older version by hand (`personalize models promote ... --force`)
    registry.promote(
        store, MODEL, strong, actor="oncall", reason="hand-picked", require_blessed=False
    )
    assert rejected > strong and registry.aliases(store, MODEL)[CHAMPION] == strong

    challenger = register(store, fitted(["signal"]))  # clearly better than noise, worse than v1
    record = gate_version(store, MODEL, challenger)
    assert record.champion_version == strong  # not the newest other version, not challenger - 1
    (change,) = [c for c in record.checks if c.kind == "change"]
    expected = roc_auc_score(HOLDOUT["label"], strong_model.predict_proba(HOLDOUT)[:, 1])
    assert change.champion == pytest.approx(expected)
    # against the newer, rejected noise model it would have been blessed and promoted
    assert record.decision == "rejected" and "worse than champion" in record.reason
    assert carry_out_gate(store, record)["action"] == "stop"
    assert registry.aliases(store, MODEL)[CHAMPION] == strong
