"""Propensity on the shop-style presets, imported as a shop would: it must beat the RFM rules.

The presets are exports shaped like real shops' files (an order-line log that is mostly repeat
purchases; a click log with a long tail of one-visit users). Each goes through the importer, then
:func:`fit_propensity_on_events` builds the features as the features DAG does and scores the model
and the recency / frequency heuristics on the same test rows.
"""

from __future__ import annotations

import math

import pytest

from pipelines.config import Settings
from pipelines.data.importer import import_file
from pipelines.data.shop_styles import write_shop_export
from pipelines.models.propensity import fit_propensity_on_events

# big enough that a test AUC differs from another by noise of ~0.01, small enough for CI
PRESETS = {
    "gift-wholesale": {"customers": 800, "items": 600},
    "fashion-clicks": {"customers": 12_000, "items": 600},
}
FIT = {"time_budget_s": 20, "max_candidates": 3, "importance_repeats": 1, "n_threads": 1}


@pytest.fixture(scope="module", params=sorted(PRESETS))
def preset_result(request, tmp_path_factory):
    style = request.param
    folder = tmp_path_factory.mktemp(style)
    export = write_shop_export(style, folder / "export", **PRESETS[style])
    report = import_file(
        export.events,
        "events",
        export.mapping,
        settings=Settings(home=folder / "home"),
        event_type=export.event_type,
        timezone=export.timezone,
        timestamp_format=export.timestamp_format,
    )
    assert report.accepted is not None
    return style, fit_propensity_on_events(report.accepted, snapshot_days=120, **FIT)


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982): the standard error of an AUC measured on these many rows."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return math.sqrt(variance)


def test_propensity_beats_recency_and_frequency_on_each_preset(preset_result):
    style, result = preset_result
    metrics = result.metrics()
    figures = {k: round(v, 3) for k, v in metrics.items() if k.endswith("test_roc_auc")}
    labels = result.test_predictions["label"]
    positives = int(labels.sum())
    noise = 2 * auc_standard_error(metrics["test_roc_auc"], positives, len(labels) - positives)
    # beating a rule by less than two standard errors of the test AUC is a tie, not a win
    for rule in ("recency", "frequency"):
        assert metrics["test_roc_auc"] > metrics[f"{rule}_heuristic_test_roc_auc"] + noise, (
            style,
            rule,
            round(noise, 4),
            figures,
        )


def test_an_order_log_uses_the_customer_s_own_rhythm(preset_result):
    # a 30-day window cannot tell a six-weekly reorderer from a lapsed customer; the lifetime
    # purchase days and the gap between them can, so they must reach the model
    style, result = preset_result
    rhythm = {"purchase_days_total", "days_between_purchases", "purchase_overdue_ratio"}
    assert rhythm <= set(result.feature_columns), (style, result.unsupported_columns)
