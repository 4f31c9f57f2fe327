"""The gates: blessing, promotion, rollback and monitoring decisions, from synthetic evidence."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pipelines import gates
from pipelines.config import Settings
from pipelines.gates import (
    BootstrapConfig,
    ChangeThreshold,
    GateConfigError,
    GateRecord,
    HoldoutScores,
    ModelGateConfig,
    PerformanceFloor,
    RollbackError,
    ValueThreshold,
)

N_ROWS = 4000


# ---- synthetic evidence ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.random(N_ROWS) < 0.15).astype(int)


def propensity_scores(labels: np.ndarray, signal: float, seed: int) -> HoldoutScores:
    """A model whose scores separate the classes by ``signal`` standard deviations."""
    noise = np.random.default_rng(seed).normal(size=len(labels))
    scores = 1 / (1 + np.exp(-(signal * labels + noise - 2.0)))
    metrics = {m: gates.classification_metric(m, labels, scores) for m in ("roc_auc", "brier")}
    return HoldoutScores(metrics=metrics, labels=labels, scores=scores)


def per_user(values: np.ndarray, metric: str = "ndcg_at_10") -> HoldoutScores:
    return HoldoutScores(metrics={metric: float(values.mean())}, per_unit={metric: values})


@pytest.fixture(scope="module")
def config() -> dict[str, ModelGateConfig]:
    return gates.load_gate_config()


@pytest.fixture(scope="module")
def champion(labels: np.ndarray) -> HoldoutScores:
    return propensity_scores(labels, signal=1.5, seed=1)


def one_line(text: str) -> bool:
    return "\n" not in text and len(text) <= gates.MAX_REASON


# ---- configuration --------------------------------------------------------------------------


def test_default_thresholds_are_the_documented_ones(config: dict[str, ModelGateConfig]) -> None:
    propensity = config["propensity"]
    assert {(t.metric, t.op, t.bound) for t in propensity.value} == {
        ("roc_auc", ">=", 0.65),
        ("brier", "<=", 0.25),
    }
    assert propensity.change == (ChangeThreshold("roc_auc", "higher", "absolute", 0.0),)
    assert [(t.metric, t.bound) for t in config["recommender"].value] == [("ndcg_at_10", 0.02)]
    assert [c.metric for c in config["recommender"].change] == ["ndcg_at_10"]
    segmentation = config["segmentation"]
    assert {(t.metric, t.bound) for t in segmentation.value} == {
        ("silhouette", 0.15),
        ("smallest_segment_share", 0.02),
    }
    assert segmentation.change == ()
    assert [(t.metric, t.bound) for t in segmentation.stability] == [("label_agreement", 0.6)]
    assert propensity.bootstrap.n_resamples == 1000 and propensity.bootstrap.confidence == 0.95
    assert propensity.source.startswith("pipelines/gates.toml sha256:")


def test_auto_promote_is_on_locally_and_off_in_prod() -> None:
    assert all(c.auto_promote for c in gates.load_gate_config(profile="local").values())
    assert not any(c.auto_promote for c in gates.load_gate_config(profile="prod").values())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gates.toml"
    path.write_text(text)
    return path


def test_per_model_auto_promote_and_bootstrap_override_the_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[bootstrap]
n_resamples = 500
[auto_promote]
local = true
prod = false
[models.propensity]
auto_promote = { prod = true }
bootstrap = { seed = 3 }
[models.propensity.value]
roc_auc = { min = 0.6, max = 0.99 }
[models.recommender]
auto_promote = false
[models.recommender.value]
ndcg_at_10 = { min = 0.01 }
""",
    )
    prod = gates.load_gate_config(path, "prod")
    assert prod["propensity"].auto_promote is True
    assert prod["propensity"].bootstrap == BootstrapConfig(500, 0.95, 3)
    assert [t.rule for t in prod["propensity"].value] == [">= 0.6", "<= 0.99"]
    assert gates.load_gate_config(path, "local")["recommender"].auto_promote is False


def test_settings_override_auto_promote_for_every_model(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", profile="local", auto_promote=False)
    assert not any(c.auto_promote for c in gates.load_gate_config_for(settings).values())
    prod = Settings(home=tmp_path / "home", profile="prod")
    assert not any(c.auto_promote for c in gates.load_gate_config_for(prod).values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[models.propensity.value]\nroc_auc = { mni = 0.7 }", ["models.propensity.value", "mni"]),
        ("[models.propensity.value]\nroc_acu = { min = 0.7 }", ["propensity", "roc_acu"]),
        ('[models.propensity.value]\nroc_auc = { min = "high" }', ["roc_auc.min", "'high'"]),
        (
            "[models.propensity.value]\nroc_auc = { min = 0.7 }\n"
            '[models.propensity.change]\nroc_auc = { direction = "up" }',
            ["models.propensity.change.roc_auc", "direction", "'up'"],
        ),
        (
            "[models.propensity.value]\nroc_auc = { min = 0.7 }\n"
            '[models.propensity.change]\nroc_auc = { direction = "higher", kind = "ratio" }',
            ["kind", "'ratio'"],
        ),
        ("[models.propensity.change]\nroc_auc = { direction = 'higher' }", ["at least one value"]),
        ("[bootstrap]\nconfidence = 1.5\n[models.x.value]\na = { min = 1 }", ["confidence"]),
        ("[models.x.value]\na = { min = 1 }\n[models.x]\nauto_promote = 'yes'", ["auto_promote"]),
        ("[model.propensity.value]\nroc_auc = { min = 0.7 }", ["top level", "model"]),
        ("models = 3", ["models", "table"]),
        ("[models.propensity.value\n", ["not valid TOML"]),
    ],
)
def test_bad_config_names_file_model_and_key(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(GateConfigError) as error:
        gates.load_gate_config(path)
    message = str(error.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_missing_file_and_unknown_profile_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(GateConfigError, match=r"no-such\.toml.*PERSONALIZE_GATES_FILE"):
        gates.load_gate_config(tmp_path / "no-such.toml")
    with pytest.raises(GateConfigError, match="'staging'"):
        gates.load_gate_config(profile="staging")


def test_monitoring_section() -> None:
    monitoring = gates.load_monitoring_config()
    assert monitoring.drift_share_threshold == 0.3
    assert monitoring.retrain_cooldown_hours == 168
    assert monitoring.bootstrap.confidence == pytest.approx(0.95)
    assert "device_share_ios_1d" in monitoring.key_features["propensity"]
    assert monitoring.floors["propensity"] == PerformanceFloor("roc_auc", 0.60, "higher")
    assert "segmentation" not in monitoring.floors


def test_bad_monitoring_section_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[monitoring.performance_floor]\npropensity = { metric = 'roc_auc' }")
    with pytest.raises(GateConfigError, match=r"monitoring\.performance_floor\.propensity.*min"):
        gates.load_monitoring_config(path)
    path = write(tmp_path, "[monitoring]\ndrift_share_threshold = 30")
    with pytest.raises(GateConfigError, match="drift_share_threshold"):
        gates.load_monitoring_config(path)


# ---- metrics and the paired bootstrap -------------------------------------------------------


def pairwise_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """The definition, O(n^2): weighted share of (positive, negative) pairs ordered right."""
    pos, neg = y == 1, y == 0
    diff = s[pos][:, None] - s[neg][None, :]
    wins = (diff > 0) + 0.5 * (diff == 0)
    pair_weights = w[pos][:, None] * w[neg][None, :]
    return float((wins * pair_weights).sum() / pair_weights.sum())


def stepwise_average_precision(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """The definition (as scikit-learn's): sum over thresholds of recall gain x precision."""
    ap, previous_recall = 0.0, 0.0
    for threshold in np.unique(s)[::-1]:
        above = s >= threshold
        tp, fp = (w * y * above).sum(), (w * (1 - y) * above).sum()
        recall = tp / (w * y).sum()
        if tp + fp > 0:
            ap += (recall - previous_recall) * tp / (tp + fp)
        previous_recall = recall
    return float(ap)


@pytest.mark.parametrize("positive_rate", [0.1, 0.8])  # either class may be the minority
@pytest.mark.parametrize("ties", [False, True])
def test_classification_metrics_follow_their_definitions_under_bootstrap_weights(
    positive_rate: float, ties: bool
) -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(400) < positive_rate).astype(int)
    s = np.clip(0.25 * y + 0.75 * rng.random(400), 0, 1)
    if ties:
        s = np.round(s, 1)
    ones = np.ones(400)
    assert gates.classification_metric("roc_auc", y, s) == pytest.approx(pairwise_auc(y, s, ones))
    assert gates.classification_metric("pr_auc", y, s) == pytest.approx(
        stepwise_average_precision(y, s, ones)
    )
    assert gates.classification_metric("brier", y, s) == pytest.approx(np.mean((s - y) ** 2))
    # a bootstrap resample is a weighting: the weighted metrics must follow the definitions too
    weights = rng.integers(0, 4, size=(2, 400)).astype(float)
    for name, reference in (("roc_auc", pairwise_auc), ("pr_auc", stepwise_average_precision)):
        got = gates.ROW_METRICS[name](y.astype(float), s)(weights)
        np.testing.assert_allclose(got, [reference(y, s, w) for w in weights])


def test_lift_and_ece_are_what_they_say() -> None:
    y = np.array([1] * 10 + [0] * 90)
    s = np.linspace(1, 0, 100)  # the ten positives score highest
    assert gates.classification_metric("lift_top_decile", y, s) == pytest.approx(10.0)
    calibrated = np.full(100, 0.1)
    assert gates.classification_metric("ece", y, calibrated) == pytest.approx(0.0)
    assert gates.classification_metric("ece", y, np.full(100, 0.3)) == pytest.approx(0.2)
    # a tie straddling the cut counts pro rata: row order must not decide the lift
    assert gates.classification_metric("lift_top_decile", y, np.full(100, 0.5)) == 1.0


@pytest.mark.parametrize("ties", [False, True])
def test_gate_metrics_agree_with_what_the_models_report(ties: bool) -> None:
    """The change check's values must be the numbers the model logged (no sklearn here)."""
    from pipelines.models import classification

    rng = np.random.default_rng(5)
    y = (rng.random(1003) < 0.12).astype(int)
    p = np.clip(0.3 * y + 0.7 * rng.random(1003), 0, 1)
    if ties:
        p = np.round(p, 1)  # isotonic calibration gives steps
    assert gates.classification_metric("lift_top_decile", y, p) == pytest.approx(
        classification.lift_at(y, p, 0.1)
    )
    assert gates.classification_metric("ece", y, p) == pytest.approx(
        classification.expected_calibration_error(y, p)
    )
    assert gates.classification_metric("brier", y, p) == pytest.approx(classification.brier(y, p))


def test_paired_bootstrap_is_paired_and_reproducible() -> None:
    rng = np.random.default_rng(11)
    users = rng.gamma(0.5, 0.2, 3000)  # users differ a lot; that must cancel out
    a, b = users + rng.normal(0.004, 0.01, 3000), users + rng.normal(0.0, 0.01, 3000)
    result = gates.paired_bootstrap(per_user(a), per_user(b), "ndcg_at_10", seed=5)
    assert result.delta == pytest.approx(a.mean() - b.mean())
    assert result.ci_low < result.delta < result.ci_high
    expected_half_width = 1.96 * np.std(a - b) / math.sqrt(3000)
    assert (result.ci_high - result.ci_low) / 2 == pytest.approx(expected_half_width, rel=0.15)
    assert result.ci_low > 0  # +0.004 with paired noise 0.014: clearly significant
    again = gates.paired_bootstrap(per_user(a), per_user(b), "ndcg_at_10", seed=5)
    assert (again.ci_low, again.ci_high) == (result.ci_low, result.ci_high)


def test_paired_bootstrap_aligns_by_ids_and_refuses_different_holdouts(
    labels: np.ndarray, champion: HoldoutScores
) -> None:
    challenger = propensity_scores(labels, 2.0, seed=2)
    ids = np.arange(N_ROWS)
    shuffle = np.random.default_rng(0).permutation(N_ROWS)
    reordered = HoldoutScores(
        labels=labels[shuffle], scores=champion.scores[shuffle], row_ids=ids[shuffle]
    )
    aligned = HoldoutScores(labels=labels, scores=challenger.scores, row_ids=ids)
    plain = gates.paired_bootstrap(challenger, champion, "roc_auc", n_resamples=200)
    by_id = gates.paired_bootstrap(aligned, reordered, "roc_auc", n_resamples=200)
    assert by_id.delta == pytest.approx(plain.delta)
    with pytest.raises(gates.EvidenceError, match="same holdout"):
        gates.paired_bootstrap(
            challenger, HoldoutScores(labels=labels[:10], scores=labels[:10]), "roc_auc"
        )
    with pytest.raises(gates.EvidenceError, match="labels differ"):
        gates.paired_bootstrap(
            challenger, HoldoutScores(labels=1 - labels, scores=champion.scores), "roc_auc"
        )
    with pytest.raises(gates.EvidenceError, match="per_unit"):
        gates.paired_bootstrap(challenger, champion, "ndcg_at_10")


# ---- blessing -------------------------------------------------------------------------------


def check(record: GateRecord, metric: str, kind: str) -> gates.MetricCheck:
    return next(c for c in record.checks if c.metric == metric and c.kind == kind)


def test_clearly_better_challenger_is_blessed(
    labels: np.ndarray, champion: HoldoutScores, config: dict[str, ModelGateConfig]
) -> None:
    record = gates.bless("propensity", config, propensity_scores(labels, 2.2, seed=2), champion)
    assert record.decision == "blessed", record.reason
    change = check(record, "roc_auc", "change")
    assert change.passed and change.ci_low > 0
    assert change.champion == pytest.approx(champion.metrics["roc_auc"])
    assert "better than champion" in change.reason
    assert record.reason.startswith("blessed:") and one_line(record.reason)


def test_clearly_worse_challenger_is_rejected(
    labels: np.ndarray, champion: HoldoutScores, config: dict[str, ModelGateConfig]
) -> None:
    worse = propensity_scores(labels, 1.2, seed=3)
    assert worse.metrics["roc_auc"] >= 0.70  # passes the value threshold: the change decides
    record = gates.bless("propensity", config, worse, champion)
    assert record.decision == "rejected"
    assert [c.kind for c in record.failed_checks()] == ["change"]
    assert "worse than champion" in record.reason and "(needs > 0)" in record.reason
    assert check(record, "roc_auc", "change").ci_high < 0


def test_better_within_noise_is_rejected_as_not_significant(
    labels: np.ndarray, champion: HoldoutScores, config: dict[str, ModelGateConfig]
) -> None:
    same_skill = propensity_scores(labels, 1.5, seed=5)
    record = gates.bless("propensity", config, same_skill, champion)
    change = check(record, "roc_auc", "change")
    assert change.delta > 0 and change.ci_low < 0 < change.ci_high  # better, but within noise
    assert record.decision == "rejected"
    assert "not significant (needs > 0)" in record.reason
    assert record.reason.startswith("rejected: roc_auc +0.")


def test_first_model_is_judged_by_value_thresholds_alone(
    labels: np.ndarray, config: dict[str, ModelGateConfig]
) -> None:
    good = gates.bless("propensity", config, propensity_scores(labels, 1.5, seed=1), None)
    assert good.decision == "blessed" and not good.has_champion
    assert {c.kind for c in good.checks} == {"value"}
    assert "first model" in good.reason
    weak = propensity_scores(labels, 0.3, seed=1)
    bad = gates.bless("propensity", config, weak, None)
    assert bad.decision == "rejected"
    assert f"roc_auc {weak.metrics['roc_auc']:.4f} fails >= 0.65" in bad.reason


def test_a_challenger_above_a_max_bound_is_rejected(
    labels: np.ndarray, champion: HoldoutScores, config: dict[str, ModelGateConfig]
) -> None:
    """gates.toml: propensity ``brier = { max = 0.25 }``, checked with or without a champion."""
    sharp = propensity_scores(labels, 2.2, seed=2)  # clearly better than the champion
    # the same ranking, squeezed into [0.5, 1]: roc_auc unchanged, the probabilities far too high
    squeezed = 0.5 + 0.5 * sharp.scores
    overconfident = HoldoutScores(
        metrics={m: gates.classification_metric(m, labels, squeezed) for m in ("roc_auc", "brier")},
        labels=labels,
        scores=squeezed,
    )
    assert overconfident.metrics["roc_auc"] == pytest.approx(sharp.metrics["roc_auc"])
    brier = overconfident.metrics["brier"]
    assert brier > 0.25 and sharp.metrics["brier"] < 0.25
    assert gates.bless("propensity", config, sharp, champion).decision == "blessed"

    for against in (None, champion):  # first model, and against a champion it out-ranks
        record = gates.bless("propensity", config, overconfident, against)
        assert record.decision == "rejected", record.reason
        assert [(c.metric, c.kind) for c in record.failed_checks()] == [("brier", "value")]
        assert f"brier {brier:.4f} fails <= 0.25" in record.reason
        assert record.to_tags()["gate.brier.passed"] == "false"

    # the bound itself passes (max is inclusive), anything above it fails
    at_bound = gates.bless("propensity", config, HoldoutScores({"roc_auc": 0.8, "brier": 0.25}))
    above = gates.bless("propensity", config, HoldoutScores({"roc_auc": 0.8, "brier": 0.2501}))
    assert (at_bound.decision, above.decision) == ("blessed", "rejected")


@pytest.mark.parametrize("value", ["absent", None, float("nan"), "0.8", float("inf")])
def test_missing_or_nan_metric_rejects_with_a_reason(
    value: object, config: dict[str, ModelGateConfig]
) -> None:
    metrics: dict[str, object] = {"brier": 0.1}
    if value != "absent":
        metrics["roc_auc"] = value
    record = gates.bless("propensity", config, HoldoutScores(metrics=metrics), None)
    assert record.decision == "rejected"
    failed = record.failed_checks()
    assert [c.metric for c in failed] == ["roc_auc"]
    assert "roc_auc" in record.reason
    assert ("missing" in record.reason) or ("not a finite number" in record.reason)


def test_missing_evidence_for_the_comparison_rejects(
    champion: HoldoutScores, config: dict[str, ModelGateConfig]
) -> None:
    numbers_only = HoldoutScores(metrics={"roc_auc": 0.9, "brier": 0.1})
    record = gates.bless("propensity", config, numbers_only, champion)
    assert record.decision == "rejected"
    assert "no holdout evidence for roc_auc from the challenger" in record.reason
    nan_champion = HoldoutScores(
        metrics={"roc_auc": float("nan")}, labels=champion.labels, scores=champion.scores
    )
    record = gates.bless("propensity", config, champion, nan_champion)
    assert record.decision == "rejected" and "champion's metrics" in record.reason


def test_unknown_model_is_a_config_error(config: dict[str, ModelGateConfig]) -> None:
    with pytest.raises(GateConfigError, match="churn"):
        gates.bless("churn", config, HoldoutScores(), None)


def ranking_config(kind: str, min_improvement: float) -> ModelGateConfig:
    return ModelGateConfig(
        "recommender",
        value=(ValueThreshold("ndcg_at_10", ">=", 0.02),),
        change=(ChangeThreshold("ndcg_at_10", "higher", kind, min_improvement),),  # type: ignore[arg-type]
        bootstrap=BootstrapConfig(500, 0.95, 1),
    )


def test_relative_and_absolute_change_thresholds() -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 0.1, 5000)  # ndcg around 0.05
    champion, challenger = per_user(base), per_user(base + rng.normal(0.01, 0.005, 5000))
    # +0.01 on 0.05 is +20 %: enough for "10 % better", not for "0.02 better"
    relative = gates.bless("recommender", ranking_config("relative", 0.10), challenger, champion)
    assert relative.decision == "blessed", relative.reason
    assert check(relative, "ndcg_at_10", "change").delta == pytest.approx(0.2, abs=0.02)
    assert "+20." in relative.reason and "(needs > +10.0%)" in relative.reason
    absolute = gates.bless("recommender", ranking_config("absolute", 0.02), challenger, champion)
    assert absolute.decision == "rejected"
    assert "improvement too small" in absolute.reason and "(needs > 0.02)" in absolute.reason


def test_non_inferiority_threshold_accepts_an_equal_model() -> None:
    rng = np.random.default_rng(4)
    base = rng.uniform(0, 0.1, 5000)
    champion, equal = per_user(base), per_user(base + rng.normal(0, 0.002, 5000))
    record = gates.bless("recommender", ranking_config("absolute", -0.005), equal, champion)
    assert record.decision == "blessed", record.reason
    assert "not worse than champion" in record.reason
    strict = gates.bless("recommender", ranking_config("absolute", 0.0), equal, champion)
    assert strict.decision == "rejected"


def test_lower_is_better_metric(labels: np.ndarray, champion: HoldoutScores) -> None:
    config = ModelGateConfig(
        "propensity",
        value=(ValueThreshold("brier", "<=", 0.25),),
        change=(ChangeThreshold("brier", "lower"),),
        bootstrap=BootstrapConfig(500, 0.95, 1),
    )
    sharper = propensity_scores(labels, 3.0, seed=5)
    assert sharper.metrics["brier"] < champion.metrics["brier"]
    better = gates.bless("propensity", config, sharper, champion)
    assert better.decision == "blessed", better.reason
    assert check(better, "brier", "change").delta < 0 and "(needs < 0)" in better.reason
    worse = gates.bless("propensity", config, champion, sharper)
    assert worse.decision == "rejected" and "worse than champion" in worse.reason


def test_segmentation_value_and_stability(config: dict[str, ModelGateConfig]) -> None:
    fit = HoldoutScores(metrics={"silhouette": 0.31, "smallest_segment_share": 0.07})
    first = gates.bless("segmentation", config, fit, None)
    assert first.decision == "blessed" and [c.kind for c in first.checks] == ["value", "value"]
    champion = HoldoutScores(metrics={"silhouette": 0.35, "smallest_segment_share": 0.08})
    stable = gates.bless("segmentation", config, fit, champion, stability={"label_agreement": 0.83})
    assert stable.decision == "blessed"  # lower silhouette than the champion does not matter
    assert check(stable, "label_agreement", "stability").challenger == 0.83
    unstable = gates.bless(
        "segmentation", config, fit, champion, stability={"label_agreement": 0.41}
    )
    assert unstable.decision == "rejected"
    assert "label_agreement 0.4100 fails >= 0.6" in unstable.reason
    unknown = gates.bless("segmentation", config, fit, champion)
    assert unknown.decision == "rejected" and "pass stability=" in unknown.reason
    tiny = HoldoutScores(metrics={"silhouette": 0.31, "smallest_segment_share": 0.01})
    assert gates.bless("segmentation", config, tiny, None).decision == "rejected"


def test_recommender_judged_on_per_user_ndcg(config: dict[str, ModelGateConfig]) -> None:
    rng = np.random.default_rng(9)
    champion = rng.binomial(1, 0.2, 3000) * rng.uniform(0.1, 1, 3000)
    challenger = np.where(rng.random(3000) < 0.1, rng.uniform(0.2, 1, 3000), champion)
    record = gates.bless("recommender", config, per_user(challenger), per_user(champion))
    assert record.decision == "blessed", record.reason


# ---- the record as tags, markdown and JSON --------------------------------------------------


@pytest.fixture(scope="module")
def compared(
    labels: np.ndarray, champion: HoldoutScores, config: dict[str, ModelGateConfig]
) -> GateRecord:
    return gates.bless(
        "propensity",
        config,
        propensity_scores(labels, 1.5, seed=5),
        champion,
        challenger_version=8,
        champion_version=5,
    )


def test_tags_are_mlflow_safe_strings(compared: GateRecord) -> None:
    tags = compared.to_tags()
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.reason"] == compared.reason
    assert tags["gate.champion_version"] == "5"
    assert tags["gate.roc_auc.passed"] == "false" and tags["gate.brier.passed"] == "true"
    change = check(compared, "roc_auc", "change")
    assert float(tags["gate.roc_auc.baseline"]) == pytest.approx(change.champion, abs=1e-5)
    assert float(tags["gate.roc_auc.delta"]) == pytest.approx(change.delta, abs=1e-5)
    assert tags["gate.roc_auc.ci"].startswith("[-") and "not significant" in tags["gate.reason"]
    assert "change > 0" in tags["gate.roc_auc.threshold"]
    assert "gate.brier.baseline" not in tags  # brier has no change threshold
    assert all(isinstance(v, str) for v in tags.values())
    assert all(
        len(k) <= gates.MAX_TAG_KEY and len(v) <= gates.MAX_TAG_VALUE for k, v in tags.items()
    )


def test_markdown_description(compared: GateRecord) -> None:
    text = compared.to_markdown()
    assert text.startswith("**Gate: rejected**: propensity v8 vs champion v5")
    assert compared.reason in text
    assert "| roc_auc | change |" in text and "**fail**" in text and "| brier | value |" in text
    assert len(text) <= gates.MAX_DESCRIPTION


def test_record_round_trips_through_json(compared: GateRecord) -> None:
    data = json.loads(json.dumps(compared.to_dict(), allow_nan=False))
    assert GateRecord.from_dict(data) == compared
    missing = gates.bless(
        "propensity", gates.load_gate_config(), HoldoutScores({"roc_auc": float("nan")}), None
    )
    json.dumps(missing.to_dict(), allow_nan=False)  # NaN never reaches the audit log


# ---- promotion and rollback -----------------------------------------------------------------


def test_promotion_action(compared: GateRecord, labels: np.ndarray, config) -> None:
    assert gates.promotion_action(compared, auto_promote=True).action == "stop"
    assert "not promoted: rejected" in gates.promotion_action(compared, True).reason
    blessed = gates.bless("propensity", config, propensity_scores(labels, 1.5, 1), None)
    assert gates.promotion_action(blessed, auto_promote=True).action == "promote"
    waiting = gates.promotion_action(blessed, auto_promote=False)
    assert waiting.action == "await_review" and "auto_promote is off" in waiting.reason


def test_rollback_target() -> None:
    assert gates.rollback_target("propensity", 5, 3) == 3
    assert gates.rollback_target("propensity", 5, 3, to_version=2) == 2
    assert gates.rollback_target("propensity", 5, None, to_version=2) == 2
    with pytest.raises(RollbackError, match="no previous champion recorded for propensity; pass"):
        gates.rollback_target("propensity", 5, None)
    with pytest.raises(RollbackError, match="already the champion"):
        gates.rollback_target("propensity", 5, 3, to_version=5)
    with pytest.raises(RollbackError, match="--to 0"):
        gates.rollback_target("propensity", 5, 3, to_version=0)


# ---- monitoring -----------------------------------------------------------------------------

NOW = datetime(2026, 2, 1, 6, tzinfo=UTC)
KEY = ("days_since_last_event", "purchases_30d")


@pytest.fixture(scope="module")
def monitoring() -> gates.MonitoringConfig:
    return gates.load_monitoring_config()


def test_drift_below_threshold_does_nothing(monitoring: gates.MonitoringConfig) -> None:
    decision = gates.drift_action(0.1, ["views_1d"], KEY, monitoring, None, NOW)
    assert decision.action == "none"
    assert "10%" in decision.reason and "views_1d" in decision.reason


def test_drift_share_or_key_feature_triggers_retrain(monitoring: gates.MonitoringConfig) -> None:
    wide = gates.drift_action(0.45, ["views_1d", "carts_1d"], KEY, monitoring, None, NOW)
    assert wide.action == "alert_and_retrain" and "45%" in wide.reason
    key = gates.drift_action(0.05, ["purchases_30d"], KEY, monitoring, None, NOW, model="x")
    assert key.action == "alert_and_retrain"
    assert key.drifted_key_features == ("purchases_30d",) and "purchases_30d" in key.reason


def test_retrain_at_most_once_per_cooldown(monitoring: gates.MonitoringConfig) -> None:
    cooldown = timedelta(hours=monitoring.retrain_cooldown_hours)
    recent = NOW - timedelta(hours=5)
    held = gates.drift_action(0.5, [], KEY, monitoring, recent, NOW)
    assert held.action == "alert" and "retrain held" in held.reason
    assert held.next_retrain_at == (recent + cooldown).isoformat()
    naive_old = (NOW - cooldown - timedelta(hours=1)).replace(tzinfo=None)  # naive = UTC
    assert gates.drift_action(0.5, [], KEY, monitoring, naive_old, NOW).action == (
        "alert_and_retrain"
    )


def test_missing_drift_share_alerts_without_retraining(
    monitoring: gates.MonitoringConfig,
) -> None:
    decision = gates.drift_action(float("nan"), [], KEY, monitoring, None, NOW)
    assert decision.action == "alert" and "missing" in decision.reason
    assert json.dumps(decision.to_dict())


def test_drift_decision_at_the_edges_of_threshold_and_cooldown(
    monitoring: gates.MonitoringConfig,
) -> None:
    """gates.toml: at or above ``drift_share_threshold`` (or a key feature) alert and retrain;
    a retrain waits until ``retrain_cooldown_hours`` after the last one have passed."""
    limit = monitoring.drift_share_threshold
    keys = monitoring.key_features["propensity"]
    ordinary = ["views_7d", "spend_7d"]
    assert not set(ordinary) & set(keys)

    def decide(share, drifted=ordinary, last=None):
        return gates.drift_action(share, drifted, keys, monitoring, last, NOW, model="propensity")

    at_limit, below = decide(limit), decide(limit - 1e-9)
    assert (at_limit.action, gates.drift_severity(at_limit)) == ("alert_and_retrain", "critical")
    assert (below.action, gates.drift_severity(below)) == ("none", "info")
    key = decide(limit - 1e-9, [*ordinary, keys[0]])
    assert key.action == "alert_and_retrain" and key.drifted_key_features == (keys[0],)
    assert decide(0.0, [keys[-1]]).action == "alert_and_retrain"  # one key feature is enough

    cooldown = timedelta(hours=monitoring.retrain_cooldown_hours)
    ready = decide(0.5, last=NOW - cooldown)  # exactly one cool-down ago: retrain again
    assert ready.action == "alert_and_retrain" and ready.next_retrain_at is None
    held = decide(0.5, last=NOW - cooldown + timedelta(seconds=1))
    assert (held.action, gates.drift_severity(held)) == ("alert", "warning")
    assert held.next_retrain_at == (NOW + timedelta(seconds=1)).isoformat()
    assert "retrain held" in held.reason
    calm_while_cooling = decide(0.0, [], last=NOW - timedelta(hours=1))
    assert calm_while_cooling.action == "none"  # the cool-down never invents an alert


FLOOR = PerformanceFloor("roc_auc", 0.65)
BOOT = BootstrapConfig(400, 0.95, 0)


def test_below_floor_rolls_back_or_says_there_is_nothing_to_roll_back_to(
    labels: np.ndarray, champion: HoldoutScores
) -> None:
    weak = propensity_scores(labels, 0.5, seed=6)
    assert weak.metrics["roc_auc"] < 0.65
    rollback = gates.performance_action(weak, champion, FLOOR, bootstrap=BOOT, model="propensity")
    assert rollback.action == "rollback"
    assert "breaks the floor >= 0.65" in rollback.reason and rollback.delta < 0
    alone = gates.performance_action(weak, None, FLOOR, bootstrap=BOOT)
    assert alone.action == "alert_no_previous"
    assert "no previous champion to roll back to" in alone.reason


def test_significantly_worse_than_previous_rolls_back(
    labels: np.ndarray, champion: HoldoutScores
) -> None:
    slipped = propensity_scores(labels, 1.1, seed=7)
    assert slipped.metrics["roc_auc"] >= 0.65  # above the floor: the comparison decides
    decision = gates.performance_action(slipped, champion, FLOOR, bootstrap=BOOT)
    assert decision.action == "rollback" and decision.ci_high < 0
    assert "significantly worse than the previous champion" in decision.reason


def test_within_noise_or_no_previous_keeps_the_champion(
    labels: np.ndarray, champion: HoldoutScores
) -> None:
    same = propensity_scores(labels, 1.5, seed=4)
    decision = gates.performance_action(same, champion, FLOOR, bootstrap=BOOT)
    assert decision.action == "none" and decision.ci_low < 0 < decision.ci_high
    alone = gates.performance_action(champion, None, FLOOR, bootstrap=BOOT)
    assert alone.action == "none" and "no previous champion to compare" in alone.reason
    blind = gates.performance_action(HoldoutScores(), champion, FLOOR, bootstrap=BOOT)
    assert blind.action == "alert" and "missing" in blind.reason


def test_lower_is_better_floor(labels: np.ndarray, champion: HoldoutScores) -> None:
    floor = PerformanceFloor("brier", 0.05, "lower")
    decision = gates.performance_action(champion, None, floor, bootstrap=BOOT)
    assert decision.action == "alert_no_previous" and "<= 0.05" in decision.reason
