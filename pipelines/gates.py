"""Pure decisions: bless a challenger, promote or not, roll back, act on monitoring.

Every function here takes numbers and returns a small record that says what to do and why, in the
manner of TFX's Evaluator blessing. Nothing here touches MLflow, Airflow or the disk except
reading the threshold file: ``pipelines.registry`` and the DAGs carry the decisions out, the CLI
prints them and alerts paste their ``reason`` unchanged.

* A challenger is **blessed** when it meets every *value* threshold and, once a champion exists,
  every *change* threshold against the champion evaluated on the same fresh holdout. A change is
  judged by a **paired bootstrap** confidence interval of the difference, so noise neither promotes
  nor blocks a model: "better" means the whole interval lies above the required improvement.
* A missing metric (absent, None, NaN, not a number) never passes and never crashes: the check
  fails with a reason naming the metric.
* Thresholds live in the versioned ``pipelines/gates.toml`` (or ``Settings.gates_file``).

Imports: stdlib and numpy only, so DAG tasks and the CLI can decide without loading sklearn.
"""

from __future__ import annotations

import functools
import hashlib
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

# ---- drift statistics: which effect size per column type, and its threshold -------------------

NUMERICAL_METHODS = ("wasserstein", "psi", "jensenshannon", "hellinger")
CATEGORICAL_METHODS = ("jensenshannon", "psi", "hellinger")


@dataclass(frozen=True)
class DriftTests:
    """The per-column drift statistic and its threshold, by column type."""

    numerical_method: str = "wasserstein"
    numerical_threshold: float = 0.1
    categorical_method: str = "jensenshannon"
    categorical_threshold: float = 0.1

    def __post_init__(self) -> None:
        numerical = (
            "numerical",
            self.numerical_method,
            NUMERICAL_METHODS,
            self.numerical_threshold,
        )
        categorical = (
            "categorical",
            self.categorical_method,
            CATEGORICAL_METHODS,
            self.categorical_threshold,
        )
        for kind, method, allowed, threshold in (numerical, categorical):
            if method not in allowed:
                raise ValueError(
                    f"{kind} drift method {method!r} is not an effect size; use one of {allowed}"
                )
            if not threshold > 0:
                raise ValueError(f"{kind} drift threshold must be > 0, got {threshold!r}")

    def for_column(self, numerical: bool) -> tuple[str, float]:
        if numerical:
            return self.numerical_method, self.numerical_threshold
        return self.categorical_method, self.categorical_threshold


PROFILES = ("local", "prod")
DEFAULT_GATES_RESOURCE = "gates.toml"

# Metric names the models log; a threshold on another name for these models is a typo.
KNOWN_METRICS: dict[str, tuple[str, ...]] = {
    "propensity": ("roc_auc", "pr_auc", "brier", "ece", "lift_top_decile"),
    "recommender": ("ndcg_at_10", "recall_at_10", "hit_rate_at_10", "map_at_10", "coverage_at_10"),
    "segmentation": ("silhouette", "smallest_segment_share", "label_agreement"),
}

# MLflow: tag keys <= 250 characters; the registry truncates values and descriptions at 5000.
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000
MAX_REASON = 1000
MAX_DESCRIPTION = 5000

Decision = Literal["blessed", "rejected"]
CheckKind = Literal["value", "change", "stability"]
PromotionActionName = Literal["promote", "await_review", "stop"]
MonitorActionName = Literal["none", "alert", "alert_and_retrain", "rollback", "alert_no_previous"]


class GateError(ValueError):
    """Base class of the gate's errors."""


class GateConfigError(GateError):
    """The threshold file is missing, unreadable or has a wrong key or value."""


class EvidenceError(GateError):
    """Holdout evidence cannot support a comparison (missing, misaligned or malformed)."""


class RollbackError(GateError):
    """There is no version to roll back to."""


# ---- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueThreshold:
    """``metric op bound``, e.g. ``roc_auc >= 0.70``."""

    metric: str
    op: Literal[">=", "<="]
    bound: float

    @property
    def rule(self) -> str:
        return f"{self.op} {self.bound:g}"

    def holds(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


@dataclass(frozen=True)
class ChangeThreshold:
    """The challenger must beat the champion on ``metric`` by more than ``min_improvement``.

    ``improvement`` is the difference in the good direction (``champion - challenger`` for a
    lower-is-better metric), absolute or relative to the champion's value; ``min_improvement`` 0
    means "significantly better", slightly negative means "not significantly worse than".
    """

    metric: str
    direction: Literal["higher", "lower"] = "higher"
    kind: Literal["absolute", "relative"] = "absolute"
    min_improvement: float = 0.0

    @property
    def rule(self) -> str:
        """The requirement on the raw delta (challenger - champion), as people read it."""
        bound = (
            self.min_improvement if self.direction == "higher" else -self.min_improvement
        ) + 0.0
        op = ">" if self.direction == "higher" else "<"
        text = f"{bound:+.1%}" if self.kind == "relative" else f"{bound:g}"
        return f"{op} {text}"


@dataclass(frozen=True)
class BootstrapConfig:
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class ModelGateConfig:
    """Everything the gate needs to judge one model, with ``auto_promote`` resolved per profile."""

    model: str
    value: tuple[ValueThreshold, ...] = ()
    change: tuple[ChangeThreshold, ...] = ()
    stability: tuple[ValueThreshold, ...] = ()
    bootstrap: BootstrapConfig = BootstrapConfig()
    auto_promote: bool = False
    source: str = "<inline>"


@dataclass(frozen=True)
class PerformanceFloor:
    """Live ``metric`` must stay ``>= bound`` (higher is better) or ``<= bound`` (lower)."""

    metric: str
    bound: float
    direction: Literal["higher", "lower"] = "higher"

    @property
    def rule(self) -> str:
        return f"{'>=' if self.direction == 'higher' else '<='} {self.bound:g}"

    def holds(self, value: float) -> bool:
        return value >= self.bound if self.direction == "higher" else value <= self.bound


@dataclass(frozen=True)
class MonitoringConfig:
    drift_share_threshold: float = 0.3
    retrain_cooldown_hours: float = 24.0
    significance: float = 0.05
    key_features: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    floors: Mapping[str, PerformanceFloor] = field(default_factory=dict)
    bootstrap: BootstrapConfig = BootstrapConfig(confidence=0.95)
    source: str = "<inline>"
    drift_tests: DriftTests = field(default_factory=lambda: DriftTests())
    drift_calibration: Mapping[str, Any] = field(default_factory=dict)


def _read_toml(path: Path | str | None) -> tuple[dict[str, Any], str, str]:
    """``(data, source, stamp)``: ``source`` names the file in errors, ``stamp`` (name and content
    digest) tells an audit reader exactly which thresholds judged a model."""
    if path is None:
        resource = resources.files("pipelines").joinpath(DEFAULT_GATES_RESOURCE)
        source, label = str(resource), f"pipelines/{DEFAULT_GATES_RESOURCE}"
        text = resource.read_text(encoding="utf-8")
    else:
        source = label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise GateConfigError(
                f"{source}: cannot read the gate thresholds ({error}); fix PERSONALIZE_GATES_FILE "
                f"or unset it to use the versioned pipelines/gates.toml"
            ) from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GateConfigError(f"{source}: not valid TOML ({error})") from error
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return data, source, f"{label} sha256:{digest}"


class _Where:
    """Builds error messages that name the file and the table/key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> GateConfigError:
        return GateConfigError(f"{self.source}: [{where}] {message}")

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, got {value!r}")
        return value

    def number(self, value: Any, where: str, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self.fail(where, f"{key} must be a number, got {value!r}")
        return float(value)

    def choice(self, value: Any, where: str, key: str, allowed: Sequence[str]) -> str:
        if value not in allowed:
            raise self.fail(where, f"{key} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def unknown(self, table: Mapping[str, Any], where: str, allowed: Iterable[str]) -> None:
        extra = sorted(set(table) - set(allowed))
        if extra:
            raise self.fail(
                where, f"unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}"
            )


def _bootstrap(raw: Any, base: BootstrapConfig, w: _Where, where: str) -> BootstrapConfig:
    table = w.table(raw, where)
    w.unknown(table, where, ("n_resamples", "confidence", "seed"))
    n = table.get("n_resamples", base.n_resamples)
    if isinstance(n, bool) or not isinstance(n, int) or n < 50:
        raise w.fail(where, f"n_resamples must be an integer >= 50 (1000 is usual); got {n!r}")
    confidence = w.number(table.get("confidence", base.confidence), where, "confidence")
    if not 0.5 <= confidence < 1:
        raise w.fail(where, f"confidence must be in [0.5, 1), e.g. 0.95; got {confidence!r}")
    seed = table.get("seed", base.seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise w.fail(where, f"seed must be a non-negative integer; got {seed!r}")
    return BootstrapConfig(n, confidence, seed)


def _auto_promote(raw: Any, profile: str, w: _Where, where: str) -> bool | None:
    if isinstance(raw, bool):
        return raw
    table = w.table(raw, where)
    w.unknown(table, where, PROFILES)
    value = table.get(profile)
    if value is not None and not isinstance(value, bool):
        raise w.fail(where, f"{profile} must be true or false; got {value!r}")
    return value


def _metric_name(model: str, metric: str, w: _Where, where: str) -> str:
    known = KNOWN_METRICS.get(model)
    if known is not None and metric not in known:
        raise w.fail(where, f"unknown metric {metric!r} for {model}; known: {', '.join(known)}")
    return metric


def _value_thresholds(model: str, raw: Any, w: _Where, where: str) -> tuple[ValueThreshold, ...]:
    out: list[ValueThreshold] = []
    for metric, spec in w.table(raw, where).items():
        _metric_name(model, metric, w, where)
        spec = w.table(spec, f"{where}.{metric}")
        w.unknown(spec, f"{where}.{metric}", ("min", "max"))
        if not spec:
            raise w.fail(f"{where}.{metric}", "give min = ... and/or max = ...")
        if "min" in spec:
            out.append(ValueThreshold(metric, ">=", w.number(spec["min"], where, f"{metric}.min")))
        if "max" in spec:
            out.append(ValueThreshold(metric, "<=", w.number(spec["max"], where, f"{metric}.max")))
    return tuple(out)


def _change_thresholds(model: str, raw: Any, w: _Where, where: str) -> tuple[ChangeThreshold, ...]:
    out: list[ChangeThreshold] = []
    for metric, spec in w.table(raw, where).items():
        _metric_name(model, metric, w, where)
        at = f"{where}.{metric}"
        spec = w.table(spec, at)
        w.unknown(spec, at, ("direction", "kind", "min_improvement"))
        direction = w.choice(spec.get("direction"), at, "direction", ("higher", "lower"))
        kind = w.choice(spec.get("kind", "absolute"), at, "kind", ("absolute", "relative"))
        minimum = w.number(spec.get("min_improvement", 0.0), at, "min_improvement")
        out.append(ChangeThreshold(metric, direction, kind, minimum))  # type: ignore[arg-type]
    return tuple(out)


def load_gate_config(
    path: Path | str | None = None, profile: str = "local"
) -> dict[str, ModelGateConfig]:
    """Per-model gate thresholds from ``path`` (default: the versioned ``pipelines/gates.toml``).

    ``auto_promote`` is resolved for ``profile``: the model's own setting, else the file's
    ``[auto_promote]``, else on for ``local`` and off for ``prod``.
    """
    if profile not in PROFILES:
        raise GateConfigError(f"profile {profile!r}: use one of {', '.join(PROFILES)}")
    data, source, stamp = _read_toml(path)
    w = _Where(source)
    w.unknown(data, "top level", ("bootstrap", "auto_promote", "models", "monitoring"))
    base = _bootstrap(data.get("bootstrap", {}), BootstrapConfig(), w, "bootstrap")
    default_auto = _auto_promote(data.get("auto_promote", {}), profile, w, "auto_promote")
    if default_auto is None:
        default_auto = profile == "local"
    models = w.table(data.get("models", {}), "models")
    if not models:
        raise w.fail("models", "no model has thresholds; add [models.<name>.value]")
    configs: dict[str, ModelGateConfig] = {}
    for model, raw in models.items():
        where = f"models.{model}"
        table = w.table(raw, where)
        w.unknown(table, where, ("value", "change", "stability", "auto_promote", "bootstrap"))
        value = _value_thresholds(model, table.get("value", {}), w, f"{where}.value")
        if not value:
            raise w.fail(
                f"{where}.value",
                f"{model} needs at least one value threshold: a first model "
                "is judged by value thresholds alone",
            )
        auto = _auto_promote(table.get("auto_promote", {}), profile, w, f"{where}.auto_promote")
        configs[model] = ModelGateConfig(
            model=model,
            value=value,
            change=_change_thresholds(model, table.get("change", {}), w, f"{where}.change"),
            stability=_value_thresholds(model, table.get("stability", {}), w, f"{where}.stability"),
            bootstrap=_bootstrap(table.get("bootstrap", {}), base, w, f"{where}.bootstrap"),
            auto_promote=default_auto if auto is None else auto,
            source=stamp,
        )
    return configs


def load_monitoring_config(path: Path | str | None = None) -> MonitoringConfig:
    """The ``[monitoring]`` section: drift, cool-down, live performance floors, significance."""
    data, source, stamp = _read_toml(path)
    w = _Where(source)
    table = w.table(data.get("monitoring", {}), "monitoring")
    w.unknown(
        table,
        "monitoring",
        (
            "drift_share_threshold",
            "retrain_cooldown_hours",
            "significance",
            "n_resamples",
            "seed",
            "key_features",
            "performance_floor",
            "drift_tests",
        ),
    )
    share = w.number(table.get("drift_share_threshold", 0.3), "monitoring", "drift_share_threshold")
    if not 0 < share <= 1:
        raise w.fail("monitoring", f"drift_share_threshold must be in (0, 1]; got {share!r}")
    cooldown = w.number(
        table.get("retrain_cooldown_hours", 24.0), "monitoring", "retrain_cooldown_hours"
    )
    if cooldown < 0:
        raise w.fail("monitoring", f"retrain_cooldown_hours must be >= 0; got {cooldown!r}")
    significance = w.number(table.get("significance", 0.05), "monitoring", "significance")
    if not 0 < significance < 0.5:
        raise w.fail("monitoring", f"significance must be in (0, 0.5); got {significance!r}")
    boot = _bootstrap(
        {k: table[k] for k in ("n_resamples", "seed") if k in table}
        | {"confidence": 1 - significance},
        BootstrapConfig(),
        w,
        "monitoring",
    )
    key_features: dict[str, tuple[str, ...]] = {}
    for model, names in w.table(table.get("key_features", {}), "monitoring.key_features").items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise w.fail("monitoring.key_features", f"{model} must be a list of feature names")
        key_features[model] = tuple(names)
    floors: dict[str, PerformanceFloor] = {}
    where = "monitoring.performance_floor"
    for model, spec in w.table(table.get("performance_floor", {}), where).items():
        spec = w.table(spec, f"{where}.{model}")
        w.unknown(spec, f"{where}.{model}", ("metric", "min", "max"))
        metric = spec.get("metric")
        if not isinstance(metric, str):
            raise w.fail(f"{where}.{model}", f"metric must be a metric name; got {metric!r}")
        _metric_name(model, metric, w, f"{where}.{model}")
        if ("min" in spec) == ("max" in spec):
            raise w.fail(f"{where}.{model}", "give exactly one of min = ... or max = ...")
        direction = "higher" if "min" in spec else "lower"
        bound = w.number(spec.get("min", spec.get("max")), f"{where}.{model}", "min/max")
        floors[model] = PerformanceFloor(metric, bound, direction)
    tests, calibration = _drift_tests(table.get("drift_tests", {}), w)
    return MonitoringConfig(
        share, cooldown, significance, key_features, floors, boot, stamp, tests, calibration
    )


def _drift_tests(spec: Any, w: _Where) -> tuple[DriftTests, dict[str, Any]]:
    """``[monitoring.drift_tests]``: the statistic and threshold per column type, and the record
    of how the thresholds were calibrated."""
    where = "monitoring.drift_tests"
    spec = w.table(spec, where)
    w.unknown(spec, where, ("numerical", "categorical", "calibration"))
    options: dict[str, Any] = {}
    for kind in ("numerical", "categorical"):
        if kind not in spec:
            continue
        entry = w.table(spec[kind], f"{where}.{kind}")
        w.unknown(entry, f"{where}.{kind}", ("method", "threshold"))
        if "method" in entry:
            options[f"{kind}_method"] = str(entry["method"])
        if "threshold" in entry:
            threshold = w.number(entry["threshold"], f"{where}.{kind}", "threshold")
            options[f"{kind}_threshold"] = threshold
    try:
        tests = DriftTests(**options)
    except ValueError as problem:
        raise w.fail(where, str(problem)) from problem
    return tests, dict(w.table(spec.get("calibration", {}), f"{where}.calibration"))


def load_gate_config_for(settings: Any) -> dict[str, ModelGateConfig]:
    """Gate configs for a ``Settings`` (its ``gates_file`` and ``profile``); a set
    ``settings.auto_promote`` (``PERSONALIZE_AUTO_PROMOTE``) overrides every model's."""
    configs = load_gate_config(getattr(settings, "gates_file", None), settings.profile)
    override = getattr(settings, "auto_promote", None)
    if override is None:
        return configs
    return {name: replace(c, auto_promote=bool(override)) for name, c in configs.items()}


# ---- holdout evidence and the paired bootstrap ----------------------------------------------


@dataclass(frozen=True, eq=False)
class HoldoutScores:
    """What one model did on the holdout: enough for value checks and a paired bootstrap.

    ``metrics``: the numbers the model reports (value thresholds read these first).
    ``labels`` / ``scores``: per-row outcome (0/1) and predicted probability, for classification
    metrics (``roc_auc``, ``pr_auc``, ``brier``, ``ece``, ``lift_top_decile``) resampled by row.
    ``per_unit``: per-unit values whose mean is the metric (per-user ``ndcg_at_10`` ...),
    resampled by unit. ``row_ids`` / ``unit_ids`` (optional) align two models' rows or units;
    without them both models must list the same rows in the same order.
    """

    metrics: Mapping[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    per_unit: Mapping[str, np.ndarray] = field(default_factory=dict)
    row_ids: np.ndarray | None = None
    unit_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("labels", "scores", "row_ids", "unit_ids"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, np.asarray(value))
        object.__setattr__(
            self, "per_unit", {k: np.asarray(v, dtype=float) for k, v in self.per_unit.items()}
        )
        object.__setattr__(self, "metrics", dict(self.metrics))


@dataclass(frozen=True)
class PairedDelta:
    """``delta = challenger - champion`` (or relative to the champion) with its bootstrap CI."""

    metric: str
    challenger: float
    champion: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    relative: bool
    n_units: int
    n_resamples: int  # resamples that gave a finite delta


def _finite(value: Any) -> float | None:
    """A real, finite number as float; None for anything else (None, NaN, inf, text, bool)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# Metric(weights (B, n)) -> (B,) for one model's rows; weights are bootstrap counts.
WeightedMetric = Callable[[np.ndarray], np.ndarray]


def _dot(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row-wise weighted sums. einsum, not BLAS: BLAS threads stall on a shared, busy machine."""
    return np.einsum("ij,j->i", weights, values)


def _groups(sorted_scores: np.ndarray) -> np.ndarray | None:
    """Start index of each run of tied scores, or None when there are no ties."""
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    return None if len(starts) == len(sorted_scores) else starts


def _grouped(matrix: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
    return matrix if starts is None else np.add.reduceat(matrix, starts, axis=1)


def _roc_auc(y: np.ndarray, s: np.ndarray) -> WeightedMetric:
    """Mann-Whitney AUC under bootstrap weights, ties counting half.

    Per resample, only one class needs a cumulative sum: for each row of the other class,
    ``searchsorted`` finds how many rows of the cumulated class score below (and tie with) it, so
    the cost is one pass over the weights instead of a sort per resample. Rows ordered
    positives-first (as :func:`paired_bootstrap` arranges them) need no reordering at all.
    """
    by_class = np.argsort(-y, kind="stable")
    identity = bool((by_class == np.arange(len(y))).all())
    n_pos = int(y.sum())
    positives, negatives = slice(0, n_pos), slice(n_pos, len(y))
    s_by_class = s[by_class]
    # cumulate the smaller class; look up the larger one
    cum, look = (positives, negatives) if n_pos <= len(y) - n_pos else (negatives, positives)
    cum_order = np.argsort(s_by_class[cum], kind="mergesort")
    cum_scores = s_by_class[cum][cum_order]
    look_scores = s_by_class[look]
    low = np.searchsorted(cum_scores, look_scores, side="left")
    high = np.searchsorted(cum_scores, look_scores, side="right")
    tied = not np.array_equal(low, high)

    def metric(weights: np.ndarray) -> np.ndarray:
        w = weights if identity else np.take(weights, by_class, axis=1)
        w_cum = np.take(w[:, cum], cum_order, axis=1)
        running = np.zeros((len(w), w_cum.shape[1] + 1))
        np.cumsum(w_cum, axis=1, out=running[:, 1:])
        below = np.take(running, low, axis=1)
        if tied:
            below = 0.5 * (below + np.take(running, high, axis=1))
        w_look = w[:, look]
        below_sum = np.einsum("ij,ij->i", w_look, below)
        total_pos, total_neg = w[:, positives].sum(axis=1), w[:, negatives].sum(axis=1)
        pairs = total_pos * total_neg
        # cumulated negatives: positives' wins directly; cumulated positives: the complement
        wins = below_sum if cum == negatives else pairs - below_sum
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)

    return metric


def _average_precision(y: np.ndarray, s: np.ndarray) -> WeightedMetric:
    order = np.argsort(-s, kind="mergesort")
    y_sorted = y[order].astype(float)
    starts = _groups(-s[order])

    def metric(weights: np.ndarray) -> np.ndarray:
        w = weights[:, order]
        pos = _grouped(w * y_sorted, starts)
        seen = np.cumsum(_grouped(w, starts), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(seen > 0, np.cumsum(pos, axis=1) / seen, 0.0)
            total = pos.sum(axis=1)
            return np.where(total > 0, np.einsum("ij,ij->i", pos, precision) / total, np.nan)

    return metric


def _brier(y: np.ndarray, s: np.ndarray) -> WeightedMetric:
    error = (s - y) ** 2
    return lambda weights: _dot(weights, error) / weights.sum(axis=1)


def _ece(y: np.ndarray, s: np.ndarray, bins: int = 10) -> WeightedMetric:
    """Expected calibration error over ``bins`` equal-width probability bins."""
    index = np.clip((s * bins).astype(int), 0, bins - 1)
    gap = np.zeros((len(s), bins))
    gap[np.arange(len(s)), index] = y - s

    def metric(weights: np.ndarray) -> np.ndarray:
        return np.abs(np.einsum("ij,jk->ik", weights, gap)).sum(axis=1) / weights.sum(axis=1)

    return metric


def _lift_top_decile(y: np.ndarray, s: np.ndarray) -> WeightedMetric:
    """Positive rate among the 10 % highest scores over the overall positive rate.

    A group of tied scores straddling the cut counts pro rata (as
    ``pipelines.models.classification.lift_at`` does), so row order never matters.
    """
    order = np.argsort(-s, kind="mergesort")
    y_sorted = y[order].astype(float)
    starts = _groups(-s[order])

    def metric(weights: np.ndarray) -> np.ndarray:
        w = weights[:, order]
        size = _grouped(w, starts)
        positives = _grouped(w * y_sorted, starts)
        total = size.sum(axis=1, keepdims=True)
        top = 0.1 * total
        before = np.cumsum(size, axis=1) - size
        taken = np.clip(top - before, 0.0, size)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(size > 0, taken / size, 0.0)
            top_rate = np.einsum("ij,ij->i", share, positives) / top[:, 0]
            base_rate = positives.sum(axis=1) / total[:, 0]
            return np.where(base_rate > 0, top_rate / base_rate, np.nan)

    return metric


ROW_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], WeightedMetric]] = {
    "roc_auc": _roc_auc,
    "pr_auc": _average_precision,
    "brier": _brier,
    "ece": _ece,
    "lift_top_decile": _lift_top_decile,
}


def _check_rows(labels: Any, scores: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or s.shape != y.shape:
        raise EvidenceError(
            f"{who}: labels {y.shape} and scores {s.shape} must be 1-d and of equal length"
        )
    if len(y) == 0:
        raise EvidenceError(f"{who}: no holdout rows")
    if not np.isin(y, (0, 1)).all():
        raise EvidenceError(f"{who}: labels must be 0/1")
    if not np.isfinite(s).all():
        raise EvidenceError(f"{who}: {int((~np.isfinite(s)).sum())} scores are NaN or infinite")
    return y.astype(float), s


def classification_metric(name: str, labels: Any, scores: Any) -> float:
    """``roc_auc`` (Mann-Whitney, ties count half), ``pr_auc`` (average precision), ``brier``,
    ``ece`` (10 equal-width bins) or ``lift_top_decile`` of one model on its holdout rows;
    NaN when undefined (one class only)."""
    if name not in ROW_METRICS:
        raise EvidenceError(f"{name!r} is not a classification metric: {', '.join(ROW_METRICS)}")
    y, s = _check_rows(labels, scores, "holdout")
    return float(ROW_METRICS[name](y, s)(np.ones((1, len(y))))[0])


def _aligned(
    a_ids: np.ndarray | None, b_ids: np.ndarray | None, n_a: int, n_b: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the shared rows/units in each model's arrays, in the same order."""
    if a_ids is not None and b_ids is not None:
        if len(a_ids) != n_a or len(b_ids) != n_b:
            raise EvidenceError(f"{what} ids do not match the number of {what}s")
        if len(np.unique(a_ids)) != n_a or len(np.unique(b_ids)) != n_b:
            raise EvidenceError(f"{what} ids repeat: give one entry per {what}")
        _, ia, ib = np.intersect1d(a_ids, b_ids, assume_unique=True, return_indices=True)
        if len(ia) == 0:
            raise EvidenceError(f"challenger and champion share no {what}: not the same holdout")
        return ia, ib
    if n_a != n_b:
        raise EvidenceError(
            f"challenger has {n_a} {what}s and champion {n_b}: evaluate both on the same holdout "
            f"(or pass {what}_ids to align them)"
        )
    return np.arange(n_a), np.arange(n_b)


def _paired_metrics(
    challenger: HoldoutScores, champion: HoldoutScores, metric: str
) -> tuple[WeightedMetric, WeightedMetric, int]:
    if metric in challenger.per_unit and metric in champion.per_unit:
        a, b = challenger.per_unit[metric], champion.per_unit[metric]
        if a.ndim != 1 or b.ndim != 1:
            raise EvidenceError(f"per_unit[{metric!r}] must be 1-d")
        ia, ib = _aligned(challenger.unit_ids, champion.unit_ids, len(a), len(b), "unit")
        a, b = a[ia], b[ib]
        for who, x in (("challenger", a), ("champion", b)):
            bad = int((~np.isfinite(x)).sum())
            if bad:
                raise EvidenceError(f"{who}: per_unit[{metric!r}] has {bad} NaN/infinite values")
        return (
            (lambda w: _dot(w, a) / w.sum(axis=1)),
            (lambda w: _dot(w, b) / w.sum(axis=1)),
            len(a),
        )
    if metric in ROW_METRICS:
        sides = []
        for who, h in (("challenger", challenger), ("champion", champion)):
            if h.labels is None or h.scores is None:
                raise EvidenceError(
                    f"no holdout evidence for {metric} from the {who}: pass labels and scores"
                )
            sides.append(_check_rows(h.labels, h.scores, who))
        (ya, sa), (yb, sb) = sides
        ia, ib = _aligned(challenger.row_ids, champion.row_ids, len(ya), len(yb), "row")
        if not np.array_equal(ya[ia], yb[ib]):
            raise EvidenceError(
                "challenger and champion labels differ on the same rows: not the same holdout"
            )
        # positives first: the bootstrap weights then need no reordering for roc_auc
        first = np.argsort(-ya[ia], kind="stable")
        ia, ib = ia[first], ib[first]
        return ROW_METRICS[metric](ya[ia], sa[ia]), ROW_METRICS[metric](yb[ib], sb[ib]), len(ia)
    missing = [
        who
        for who, h in (("challenger", challenger), ("champion", champion))
        if metric not in h.per_unit
    ]
    raise EvidenceError(
        f"no holdout evidence for {metric} from the {' and '.join(missing)}: "
        f"pass per_unit[{metric!r}] for both models"
    )


@functools.cache
def _poisson_table() -> np.ndarray:
    """Poisson(1) counts indexed by a uniform 16-bit integer (quantile lookup)."""
    cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(16)])
    counts = np.searchsorted(np.round(cdf * 65536), np.arange(65536), side="right")
    return counts.astype(np.uint8)  # a small table stays in cache


def resample_weights(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` bootstrap resamples of ``n`` units as weights, shape ``(size, n)``.

    Poisson bootstrap: each unit is drawn an independent Poisson(1) number of times, the
    large-sample equivalent of drawing ``n`` units with replacement (Hanley & MacGibbon 2006;
    Chamandy et al. 2012). It needs one 16-bit random number and a table lookup per unit instead
    of a draw plus a bincount, which makes a 20k x 1000 resampling several times cheaper.
    """
    draws = rng.integers(0, 65536, size=(size, n), dtype=np.uint16)
    return _poisson_table()[draws].astype(float)


def paired_bootstrap(
    challenger: HoldoutScores,
    champion: HoldoutScores,
    metric: str,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    relative: bool = False,
) -> PairedDelta:
    """``challenger - champion`` on ``metric`` with a percentile bootstrap interval.

    Both models are resampled with the *same* rows (or units) each time, so what they share
    (hard users, easy users) cancels and the interval measures only how far they differ.
    Resamples are Poisson-weighted (:func:`resample_weights`) and seeded: same evidence and seed,
    same interval. With
    ``relative`` the delta is ``(challenger - champion) / |champion|``. Raises
    :class:`EvidenceError` when the evidence cannot support the comparison.
    """
    if n_resamples < 1 or not 0 < confidence < 1:
        raise GateError(f"n_resamples={n_resamples!r} and confidence={confidence!r} out of range")
    metric_a, metric_b, n = _paired_metrics(challenger, champion, metric)
    full = np.ones((1, n))
    value_a, value_b = float(metric_a(full)[0]), float(metric_b(full)[0])
    if not (math.isfinite(value_a) and math.isfinite(value_b)):
        raise EvidenceError(f"{metric} is undefined on this holdout (one class only?)")
    if relative and value_b == 0:
        raise EvidenceError(f"champion {metric} is 0: a relative change is undefined")

    def delta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not relative:
            return a - b
        with np.errstate(invalid="ignore", divide="ignore"):
            return (a - b) / np.abs(b)

    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, 2_000_000 // max(n, 1)))
    deltas = []
    for start in range(0, n_resamples, chunk):
        weights = resample_weights(rng, n, min(chunk, n_resamples - start))
        deltas.append(delta(metric_a(weights), metric_b(weights)))
    values = np.concatenate(deltas)
    values = values[np.isfinite(values)]
    if len(values) < max(10, n_resamples // 2):
        raise EvidenceError(
            f"{metric}: only {len(values)} of {n_resamples} resamples were defined; "
            f"the holdout is too small or too unbalanced"
        )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    point = float(delta(np.array([value_a]), np.array([value_b]))[0])
    return PairedDelta(
        metric,
        value_a,
        value_b,
        point,
        float(low),
        float(high),
        confidence,
        relative,
        n,
        len(values),
    )


# ---- blessing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricCheck:
    """One threshold applied to one metric; ``reason`` says in a phrase why it passed or failed."""

    metric: str
    kind: CheckKind
    passed: bool
    reason: str
    rule: str
    threshold: float | None = None
    challenger: float | None = None
    champion: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    relative: bool = False


def _fmt(value: float | None, relative: bool = False, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    if relative:
        return f"{value:+.1%}" if sign else f"{value:.1%}"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _interval(check: MetricCheck) -> str:
    r = check.relative
    return (
        f"{_fmt(check.delta, r, True)} [{_fmt(check.ci_low, r, True)}, "
        f"{_fmt(check.ci_high, r, True)}]"
    )


@dataclass(frozen=True)
class GateRecord:
    """The gate's decision about one challenger, as data: tags, markdown, JSON."""

    model: str
    decision: Decision
    reason: str
    checks: tuple[MetricCheck, ...]
    has_champion: bool
    challenger_version: int | None = None
    champion_version: int | None = None
    config_source: str = ""
    confidence: float = 0.95

    @property
    def blessed(self) -> bool:
        return self.decision == "blessed"

    def failed_checks(self) -> list[MetricCheck]:
        return [c for c in self.checks if not c.passed]

    def to_tags(self) -> dict[str, str]:
        """MLflow model-version tags: ``gate.decision``, ``gate.reason`` and per metric
        ``gate.<metric>.value / baseline / delta / ci / threshold / passed`` (strings)."""
        tags = {
            "gate.decision": self.decision,
            "gate.reason": self.reason[:MAX_TAG_VALUE],
            "gate.has_champion": str(self.has_champion).lower(),
        }
        if self.champion_version is not None:
            tags["gate.champion_version"] = str(self.champion_version)
        if self.config_source:
            tags["gate.config"] = self.config_source[-MAX_TAG_VALUE:]
        by_metric: dict[str, list[MetricCheck]] = {}
        for check in self.checks:
            by_metric.setdefault(check.metric, []).append(check)
        for metric, checks in by_metric.items():
            prefix = f"gate.{metric}"[: MAX_TAG_KEY - 10]
            value = next((c.challenger for c in checks if c.challenger is not None), None)
            tags[f"{prefix}.value"] = "missing" if value is None else f"{value:.6g}"
            tags[f"{prefix}.threshold"] = "; ".join(f"{c.kind} {c.rule}" for c in checks)
            tags[f"{prefix}.passed"] = str(all(c.passed for c in checks)).lower()
            change = next((c for c in checks if c.kind == "change"), None)
            if change is not None and change.champion is not None:
                tags[f"{prefix}.baseline"] = f"{change.champion:.6g}"
            if change is not None and change.delta is not None:
                tags[f"{prefix}.delta"] = f"{change.delta:+.6g}"
                tags[f"{prefix}.ci"] = f"[{change.ci_low:+.6g}, {change.ci_high:+.6g}]"
        return {k: v[:MAX_TAG_VALUE] for k, v in tags.items()}

    def to_markdown(self) -> str:
        """The model version's description: decision, reason and one row per check."""
        versus = (
            f"champion v{self.champion_version}"
            if self.champion_version is not None
            else ("the champion" if self.has_champion else "")
        )
        version = f" v{self.challenger_version}" if self.challenger_version is not None else ""
        against = f" vs {versus}" if versus else ", first model: value thresholds alone decide"
        ci = f"{self.confidence:.0%}"
        lines = [
            f"**Gate: {self.decision}**: {self.model}{version}{against}",
            "",
            self.reason,
            "",
            f"| metric | check | challenger | champion | delta [{ci} CI] | threshold | result |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            delta = _interval(c) if c.delta is not None else ""
            champion = _fmt(c.champion) if c.champion is not None else ""
            result = "pass" if c.passed else "**fail**"
            lines.append(
                f"| {c.metric} | {c.kind} | {_fmt(c.challenger)} | {champion} | {delta} "
                f"| {c.rule} | {result} |"
            )
        if self.config_source:
            lines += ["", f"Thresholds: `{self.config_source}`"]
        text = "\n".join(lines)
        return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 3] + "..."

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (NaN becomes None) for the audit log and XCom."""
        record = asdict(self)
        record["checks"] = [
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in c.items()
            }
            for c in record["checks"]
        ]
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateRecord:
        known = {f.name for f in fields(MetricCheck)}
        checks = tuple(
            MetricCheck(**{k: v for k, v in c.items() if k in known}) for c in data["checks"]
        )
        names = {f.name for f in fields(cls)} - {"checks"}
        return cls(checks=checks, **{k: v for k, v in data.items() if k in names})


def _value_check(
    threshold: ValueThreshold, value: Any, kind: CheckKind, who: str, hint: str = ""
) -> MetricCheck:
    base = {"metric": threshold.metric, "kind": kind, "rule": threshold.rule}
    number = _finite(value)
    if number is None:
        what = "missing" if value is None else f"not a finite number ({value!r})"
        return MetricCheck(
            **base,
            passed=False,
            threshold=threshold.bound,
            reason=f"{threshold.metric} {what} in the {who}'s metrics{hint}",
        )
    passed = threshold.holds(number)
    verdict = "" if passed else "fails "
    return MetricCheck(
        **base,
        passed=passed,
        threshold=threshold.bound,
        challenger=number,
        reason=f"{threshold.metric} {number:.4f} {verdict}{threshold.rule}",
    )


def _reported(h: HoldoutScores, metric: str) -> Any:
    """The model's own number, else the mean of its per-unit values, else from its rows."""
    if metric in h.metrics:
        return h.metrics[metric]
    if metric in h.per_unit and h.per_unit[metric].size:
        return float(np.mean(h.per_unit[metric]))
    if metric in ROW_METRICS and h.labels is not None and h.scores is not None:
        try:
            return classification_metric(metric, h.labels, h.scores)
        except EvidenceError:
            return None
    return None


def _change_check(
    threshold: ChangeThreshold,
    challenger: HoldoutScores,
    champion: HoldoutScores,
    boot: BootstrapConfig,
) -> MetricCheck:
    metric, relative = threshold.metric, threshold.kind == "relative"
    base = {"metric": metric, "kind": "change", "rule": threshold.rule, "relative": relative}
    raw_bound = threshold.min_improvement * (1 if threshold.direction == "higher" else -1)
    for who, h in (("challenger", challenger), ("champion", champion)):
        if metric in h.metrics and _finite(h.metrics[metric]) is None:
            return MetricCheck(
                **base,
                passed=False,
                threshold=raw_bound,
                reason=f"{metric} is {h.metrics[metric]!r} in the {who}'s metrics: cannot compare",
            )
    try:
        result = paired_bootstrap(
            challenger,
            champion,
            metric,
            n_resamples=boot.n_resamples,
            confidence=boot.confidence,
            seed=boot.seed,
            relative=relative,
        )
    except EvidenceError as error:
        return MetricCheck(**base, passed=False, threshold=raw_bound, reason=f"{metric}: {error}")
    sign = 1.0 if threshold.direction == "higher" else -1.0
    improvement = sign * result.delta
    worst = min(sign * result.ci_low, sign * result.ci_high)  # lower end of the improvement CI
    passed = worst > threshold.min_improvement
    check = MetricCheck(
        **base,
        passed=passed,
        threshold=raw_bound,
        challenger=result.challenger,
        champion=result.champion,
        delta=result.delta,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        reason="",
    )
    needs = f"(needs {threshold.rule})"
    if passed:
        verdict = "better than" if threshold.min_improvement >= 0 else "not worse than"
        text = f"{verdict} champion {_fmt(result.champion)} {needs}"
    elif improvement > threshold.min_improvement:
        text = f"not significant {needs}"
    elif improvement >= 0:
        text = f"improvement too small {needs}"
    else:
        best = max(sign * result.ci_low, sign * result.ci_high)
        verdict = "worse than" if best < 0 else "no better than"
        text = f"{verdict} champion {_fmt(result.champion)} {needs}"
    return replace(check, reason=f"{metric} {_interval(check)} {text}")


def _overall_reason(decision: Decision, checks: Sequence[MetricCheck], has_champion: bool) -> str:
    shown = [c for c in checks if not c.passed] if decision == "rejected" else list(checks)
    text = f"{decision}: " + "; ".join(c.reason for c in shown)
    if decision == "blessed" and not has_champion:
        text += " (first model: no champion to compare with)"
    text = " ".join(text.split())  # one line, whatever a reason contained
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def bless(
    model: str,
    config: ModelGateConfig | Mapping[str, ModelGateConfig],
    challenger: HoldoutScores,
    champion: HoldoutScores | None = None,
    *,
    stability: Mapping[str, Any] | None = None,
    challenger_version: int | None = None,
    champion_version: int | None = None,
) -> GateRecord:
    """Judge ``challenger`` against the thresholds of ``model`` (and against ``champion``).

    Value thresholds always apply. With a champion, change thresholds compare both models on the
    same holdout with a paired bootstrap, and stability thresholds read ``stability`` (e.g.
    ``{"label_agreement": 0.83}`` computed against the champion's labels). Anything missing
    fails its check with a reason; the decision is "blessed" only when every check passed.
    """
    if not isinstance(config, ModelGateConfig):
        if model not in config:
            raise GateConfigError(
                f"no gate thresholds for model {model!r} (have: {', '.join(sorted(config))}); "
                f"add [models.{model}.value] to the gates file"
            )
        config = config[model]
    checks: list[MetricCheck] = [
        _value_check(t, _reported(challenger, t.metric), "value", "challenger")
        for t in config.value
    ]
    if champion is not None:
        checks += [_change_check(t, challenger, champion, config.bootstrap) for t in config.change]
        given = dict(stability or {})
        for t in config.stability:
            value = given.get(t.metric, challenger.metrics.get(t.metric))
            hint = f"; pass stability={{{t.metric!r}: ...}} computed against the champion"
            checks.append(
                _value_check(t, value, "stability", "challenger", hint if value is None else "")
            )
    decision: Decision = "blessed" if checks and all(c.passed for c in checks) else "rejected"
    return GateRecord(
        model=model,
        decision=decision,
        reason=_overall_reason(decision, checks, champion is not None),
        checks=tuple(checks),
        has_champion=champion is not None,
        challenger_version=challenger_version,
        champion_version=champion_version,
        config_source=config.source,
        confidence=config.bootstrap.confidence,
    )


# ---- promotion and rollback -------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionDecision:
    action: PromotionActionName
    reason: str


def promotion_action(record: GateRecord, auto_promote: bool) -> PromotionDecision:
    """What to do with a gated challenger: promote it, wait for a person, or stop here."""
    if not record.blessed:
        return PromotionDecision("stop", f"not promoted: {record.reason}")
    if auto_promote:
        return PromotionDecision("promote", f"auto-promoted: {record.reason}")
    version = f" v{record.challenger_version}" if record.challenger_version is not None else ""
    return PromotionDecision(
        "await_review",
        f"blessed, awaiting review (auto_promote is off): promote {record.model}{version} "
        f"with `personalize promote` or the MLflow UI",
    )


def rollback_target(
    model: str,
    champion_version: int | None,
    previous_champion_version: int | None,
    to_version: int | None = None,
) -> int:
    """The version that becomes champion on a rollback of ``model``.

    ``to_version`` (``--to``) wins; otherwise the previous champion. Raises
    :class:`RollbackError` when there is nothing to roll back to.
    """
    if to_version is not None:
        if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 1:
            raise RollbackError(f"--to {to_version!r}: give a registered version number >= 1")
        if to_version == champion_version:
            raise RollbackError(
                f"v{to_version} is already the champion of {model}: nothing to roll back"
            )
        return to_version
    if previous_champion_version is None:
        raise RollbackError(f"no previous champion recorded for {model}; pass --to VERSION")
    if previous_champion_version == champion_version:
        raise RollbackError(
            f"the previous champion of {model} is the champion (v{champion_version}); "
            f"pass --to VERSION"
        )
    return int(previous_champion_version)


# ---- monitoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorDecision:
    """What monitoring should do now, and why; numbers for the alert's details."""

    action: MonitorActionName
    reason: str
    model: str | None = None
    metric: str | None = None
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    drift_share: float | None = None
    drifted_key_features: tuple[str, ...] = ()
    next_retrain_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["drifted_key_features"] = list(self.drifted_key_features)
        return record


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def drift_severity(decision: MonitorDecision) -> Literal["info", "warning", "critical"]:
    """How loud a drift decision is: ``critical`` pages now, ``warning`` waits for the digest.

    A page is for what on-call must act on: drift over the threshold that set off a retrain, or
    monitoring that could not measure drift at all. Drift while the retrain is cooling down was
    paged when the retrain started; each later day is a line in the digest.
    """
    if decision.action == "alert_and_retrain" or (
        decision.action == "alert" and decision.drift_share is None
    ):
        return "critical"
    return "warning" if decision.action == "alert" else "info"


def drift_action(
    drift_share: float | None,
    drifted_features: Iterable[str],
    key_features: Iterable[str],
    thresholds: MonitoringConfig,
    last_retrain_at: datetime | None,
    now: datetime,
    *,
    model: str | None = None,
) -> MonitorDecision:
    """Alert and retrain when the share of drifted features reaches the threshold or a key
    feature drifted; retrain at most once per cool-down (the alert still goes out)."""
    drifted = sorted(set(drifted_features))
    key_drifted = tuple(f for f in key_features if f in set(drifted))
    share = _finite(drift_share)
    who = f"{model}: " if model else ""
    if share is None:
        return MonitorDecision(
            "alert",
            f"{who}drift share is missing ({drift_share!r}): the drift report did not run "
            "or produced no result",
            model=model,
        )
    limit = thresholds.drift_share_threshold
    summary = f"drift share {share:.0%} (threshold {limit:.0%})"
    if share < limit and not key_drifted:
        listed = f"; drifted: {', '.join(drifted[:5])}" if drifted else ""
        return MonitorDecision(
            "none",
            f"{who}{summary}, no key feature drifted{listed}",
            model=model,
            threshold=limit,
            drift_share=share,
        )
    causes = []
    if share >= limit:
        causes.append(summary)
    if key_drifted:
        causes.append(f"key feature(s) drifted: {', '.join(key_drifted)}")
    cause = "; ".join(causes)
    if last_retrain_at is not None:
        ready_at = _utc(last_retrain_at) + timedelta(hours=thresholds.retrain_cooldown_hours)
        if _utc(now) < ready_at:
            return MonitorDecision(
                "alert",
                f"{who}{cause}; retrain held: last retrain {_utc(last_retrain_at).isoformat()}, "
                f"cool-down {thresholds.retrain_cooldown_hours:g} h until {ready_at.isoformat()}",
                model=model,
                threshold=limit,
                drift_share=share,
                drifted_key_features=key_drifted,
                next_retrain_at=ready_at.isoformat(),
            )
    return MonitorDecision(
        "alert_and_retrain",
        f"{who}{cause}; retraining",
        model=model,
        threshold=limit,
        drift_share=share,
        drifted_key_features=key_drifted,
    )


def performance_action(
    champion_live: HoldoutScores,
    previous_live: HoldoutScores | None,
    floor: PerformanceFloor,
    *,
    bootstrap: BootstrapConfig | None = None,
    model: str | None = None,
) -> MonitorDecision:
    """Roll back when the champion's live metric is below its floor, or significantly worse than
    the previous champion's on the same matured rows; with no previous champion, say so.

    ``previous_live`` is the previous champion scored on the same rows (None when there is no
    previous champion). ``bootstrap`` defaults to the monitoring significance (95 % two-sided).
    """
    boot = bootstrap or BootstrapConfig()
    metric, who = floor.metric, f"{model}: " if model else ""
    base: dict[str, Any] = {"model": model, "metric": metric, "threshold": floor.bound}
    value = _finite(_reported(champion_live, metric))
    if value is None:
        return MonitorDecision(
            "alert", f"{who}live {metric} is missing: cannot judge the champion", **base
        )
    base["value"] = value
    comparison: PairedDelta | None = None
    compare_note = ""
    if previous_live is not None:
        try:
            comparison = paired_bootstrap(
                champion_live,
                previous_live,
                metric,
                n_resamples=boot.n_resamples,
                confidence=boot.confidence,
                seed=boot.seed,
            )
        except EvidenceError as error:
            compare_note = f"; no comparison with the previous champion ({error})"
    if comparison is not None:
        base |= {
            "baseline": comparison.champion,
            "delta": comparison.delta,
            "ci_low": comparison.ci_low,
            "ci_high": comparison.ci_high,
        }
        ci = f"{comparison.delta:+.4f} [{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}]"
        compare_note = f"; vs previous champion {comparison.champion:.4f}: {ci}"
    if not floor.holds(value):
        text = f"{who}live {metric} {value:.4f} breaks the floor {floor.rule}{compare_note}"
        if previous_live is None:
            return MonitorDecision(
                "alert_no_previous", f"{text}; no previous champion to roll back to", **base
            )
        return MonitorDecision("rollback", f"{text}; rolling back", **base)
    if comparison is not None:
        sign = 1.0 if floor.direction == "higher" else -1.0
        best = max(sign * comparison.ci_low, sign * comparison.ci_high)
        if best < 0:
            return MonitorDecision(
                "rollback",
                f"{who}live {metric} {value:.4f} significantly worse than the previous "
                f"champion{compare_note}; rolling back",
                **base,
            )
    tail = compare_note or "; no previous champion to compare with"
    return MonitorDecision(
        "none", f"{who}live {metric} {value:.4f} meets the floor {floor.rule}{tail}", **base
    )
