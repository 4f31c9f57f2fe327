"""A model, described once: what the platform needs to train, gate, monitor and explain it.

Training (``pipelines.flows.train``), the gate, the monitor (``pipelines.flows.monitor``), the CLI
and the story read a :class:`ModelSpec` and nothing else about a model; the built-in ones are in
``pipelines/models/specs/`` and listed by :mod:`pipelines.models.catalog`. A fourth model is one
new spec module (registered with :func:`pipelines.models.catalog.register`) plus its thresholds
in ``gates.toml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import HoldoutScores
    from pipelines.monitoring.drift import DriftResult
    from pipelines.registry import TrainingRun

# scores an estimator on rows whose outcome is known now: the live performance of a champion
LiveEvidence = Callable[[Any], "HoldoutScores"]


@dataclass(frozen=True)
class ModelSpec:
    """One model of the platform.

    ``build_run(settings, end)`` fits and evaluates it on the window ending with ``end`` and
    returns what to log (:class:`~pipelines.registry.TrainingRun`: the model, its metrics, the
    holdout the gate scores, the drift reference). ``score_holdout(estimator, holdout)`` is what
    the gate compares challenger and champion with; ``stability(challenger, champion, holdout)``
    adds agreement figures where ids must stay stable (segments).

    ``monitor_inputs(settings, champion, day)`` is the day's inputs with the champion's output in
    ``prediction_column`` (None: nothing to judge that day); ``monitor_columns`` the columns
    drift compares (None: those of the reference sample). A model whose inputs are not a row per
    customer brings its own ``drift(...)`` comparison. ``live_evidence(settings, day,
    trained_until, champion)`` gives a scorer of matured outcomes for the live performance gate.
    """

    name: str
    purpose: str
    build_run: Callable[[Settings, date], TrainingRun]
    score_holdout: Callable[[Any, Mapping[str, pd.DataFrame]], HoldoutScores]
    feature_service: str | None = None
    label_horizon_days: Callable[[Settings], int] | None = None
    stability: Callable[[Any, Any, Mapping[str, pd.DataFrame]], dict[str, float]] | None = None
    monitor_inputs: Callable[[Settings, Any, date], pd.DataFrame | None] | None = None
    prediction_column: str | None = None
    monitor_columns: tuple[str, ...] | None = None
    drift: (
        Callable[
            [Settings, pd.DataFrame, pd.DataFrame, date, date, Path],
            tuple[DriftResult | None, DriftResult | None, Path | None],
        ]
        | None
    ) = None
    live_evidence: Callable[[Settings, date, date, Any], LiveEvidence | None] | None = None
    # what `personalize models` shows of each version, the headline first
    key_metrics: tuple[str, ...] = ()
