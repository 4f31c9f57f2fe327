"""Where the platform leans on Evidently internals, and only here (tested for the pinned range).

* :func:`column_drift` — one column's drift verdict from the column drift calculation that
  Evidently's ``ValueDrift`` runs (``evidently.legacy.calculations.data_drift``), without
  rendering its two plotly figures: ~0.25 s a column that a screening of 40 columns does not
  need. The HTML report still comes from the public ``Report`` API, for the columns a person
  opens.

``tests/pipelines/monitoring/test_evidently_compat.py`` checks, against the installed Evidently,
that this gives the same method, score and verdict as the public ``ValueDrift`` metric; the pin
below is the range it was written for (pyproject pins the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

EVIDENTLY_RANGE = (">=0.7", "<0.8")


@dataclass(frozen=True)
class ColumnVerdict:
    method: str
    score: float
    threshold: float
    drifted: bool


def column_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    column: str,
    *,
    numerical: bool,
    method: str | None,
    threshold: float | None,
) -> ColumnVerdict:
    """Evidently's drift test of ``column`` with ``method`` and ``threshold`` (None: Evidently's
    own choice by type and sample size)."""
    from evidently.legacy.calculations.data_drift import DataDriftOptions, get_one_column_drift
    from evidently.legacy.core import ColumnType
    from evidently.legacy.metric_results import DatasetColumns, DatasetUtilityColumns

    options = DataDriftOptions(
        per_feature_stattest={column: method} if method else None,
        per_feature_threshold={column: threshold} if threshold is not None else None,
    )
    drift = get_one_column_drift(
        current_data=current,
        reference_data=reference,
        column_name=column,
        options=options,
        dataset_columns=DatasetColumns(
            utility_columns=DatasetUtilityColumns(date=None, id=None, target=None, prediction=None),
            target_type=None,
            task=None,
            num_feature_names=[column] if numerical else [],
            cat_feature_names=[] if numerical else [column],
            text_feature_names=[],
            datetime_feature_names=[],
            target_names=None,
        ),
        column_type=ColumnType.Numerical if numerical else ColumnType.Categorical,
        agg_data=True,
    )
    return ColumnVerdict(
        method=str(drift.stattest_name),
        score=float(drift.drift_score),
        threshold=float(drift.stattest_threshold),
        drifted=bool(drift.drift_detected),
    )
