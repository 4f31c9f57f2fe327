"""The drift alert of a model, composed from a drift result: what drifted, by how much, and the
prediction drift beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.alerts.records import Alert, Severity
from pipelines.monitoring.drift import DriftResult


def drifted_features(result: DriftResult, limit: int | None = None) -> list[dict[str, Any]]:
    """The drifted columns of a drift result as plain records, worst first."""
    rows = [
        {
            "column": c.column,
            "score": round(c.score, 6),
            "threshold": c.threshold,
            "method": c.method,
        }
        for c in result.drifted_columns
    ]
    return rows[:limit] if limit else rows


def drift_alert(
    result: DriftResult,
    *,
    model: str,
    version: str | int | None,
    day: date | None = None,
    report: str | Path | None = None,
    actions: Sequence[str] = (),
    prediction: DriftResult | None = None,
    metrics: Sequence[Mapping[str, Any]] = (),
) -> Alert:
    """The drift alert of a model: critical when the dataset drifted, else a warning.

    ``metrics`` are performance numbers if any (``name``, ``value``, ``baseline``,
    ``threshold``, ``passed``, as the gates record them).
    """
    drifted = len(result.drifted_columns)
    what = (
        "Data drift"
        if result.dataset_drifted
        else ("Feature drift" if drifted else "Prediction drift")
    )
    summary = (
        f"{what} on {model}"
        + (f" v{version}" if version is not None else "")
        + f": {drifted}/{len(result.columns)} features drifted "
        f"(share {result.drift_share:.2f}, alert at {result.drift_share_threshold:.2f})"
    )
    details: dict[str, Any] = {
        "drifted_features": drifted_features(result),
        "drift_share": round(result.drift_share, 4),
        "drift_share_threshold": result.drift_share_threshold,
        "columns_compared": len(result.columns),
        "rows": {"reference": result.reference_rows, "current": result.current_rows},
        "sampled": result.sampled,
        "skipped": result.skipped,
    }
    if prediction is not None:
        details["prediction_drift"] = {
            "drifted": prediction.dataset_drifted,
            "columns": [
                {"column": c.column, "score": round(c.score, 6), "threshold": c.threshold}
                for c in prediction.columns
            ],
        }
        if prediction.dataset_drifted:
            summary += "; predictions drifted"
    if metrics:
        details["metrics"] = [dict(m) for m in metrics]
    severity: Severity = (
        "critical"
        if result.dataset_drifted or (prediction is not None and prediction.dataset_drifted)
        else "warning"
    )
    return Alert(
        type="drift",
        severity=severity,
        summary=summary,
        day=day,
        model=model,
        version=None if version is None else str(version),
        details=details,
        actions=list(actions),
        report=None if report is None else str(report),
        runbook=f"personalize reports {model}",
    )
