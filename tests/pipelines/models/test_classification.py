"""Binary-classification metrics against tiny examples worked out by hand, and the plots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.models.classification import (
    brier,
    calibration_bins,
    classification_metrics,
    expected_calibration_error,
    gains_curve,
    lift_at,
    log_loss,
    plot_calibration,
    plot_gains,
    plot_precision_recall,
    plot_roc,
    pr_auc,
    roc_auc,
    top_positives,
)


def test_roc_auc_counts_ordered_pairs_and_half_ties():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3/4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # one positive and one negative with the same score: a tie counts half
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 1, 1], [0.2, 0.9, 0.6]) == pytest.approx(1.0)


def test_ranking_metrics_are_nan_when_undefined_rather_than_raising():
    assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(pr_auc([0, 0], [0.2, 0.5]))
    assert math.isnan(lift_at([0, 0, 0], [0.1, 0.2, 0.3]))


def test_pr_auc_is_average_precision():
    # ranked: 1 (P=1/1), 0, 1 (P=2/3), 0 -> AP = (1 + 2/3) / 2
    assert pr_auc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)


def test_brier_and_log_loss_by_hand():
    assert brier([1, 0], [0.8, 0.4]) == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    # a confident wrong answer is clipped, not infinite
    assert math.isfinite(log_loss([1], [0.0]))


def test_expected_calibration_error_by_hand():
    # 2 bins: [0, .5) holds .2, .4 (mean .3, observed 1/2); [.5, 1] holds .6, 1.0 (mean .8,
    # observed 2/2). ECE = 1/2 * |.5 - .3| + 1/2 * |1 - .8| = .2 -- and 1.0 lands in the last bin
    y, p = [0, 1, 1, 1], [0.2, 0.4, 0.6, 1.0]
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.2)
    table = calibration_bins(y, p, bins=2)
    assert table["count"].tolist() == [2, 2]
    assert table["observed"].tolist() == pytest.approx([0.5, 1.0])
    # perfectly calibrated groups give 0
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)


def test_calibration_bins_leave_empty_bins_empty():
    table = calibration_bins([0, 1], [0.05, 0.15], bins=10)
    assert table["count"].sum() == 2
    assert np.isnan(table["mean_score"][5])


def test_lift_at_top_decile_by_hand():
    y = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]  # base rate 0.2
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    # the top 10% is one row, a buyer: rate 1.0 / 0.2 = 5x
    assert lift_at(y, p, 0.1) == pytest.approx(5.0)
    # the top 50% holds both buyers: rate 2/5 over 0.2 = 2x
    assert lift_at(y, p, 0.5) == pytest.approx(2.0)
    assert lift_at(y, p, 1.0) == pytest.approx(1.0)


def test_lift_shares_tied_scores_pro_rata_so_row_order_does_not_matter():
    # every score equal: the top tenth holds the base rate, whatever the row order
    assert lift_at([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], [0.3] * 10) == pytest.approx(1.0)
    assert lift_at([0, 0, 0, 0, 0, 0, 0, 0, 1, 1], [0.3] * 10) == pytest.approx(1.0)
    # top 2 of scores [.9, .5, .5, .5]: the .9 row plus a third of the three tied rows
    assert top_positives([0, 1, 1, 0], [0.9, 0.5, 0.5, 0.5], 2) == pytest.approx(2 / 3)
    assert top_positives([1, 0], [0.9, 0.1], 0) == 0.0


def test_gains_curve_runs_from_nothing_to_everything():
    shares, found = gains_curve([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], points=5)
    assert shares.tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert found.tolist() == pytest.approx([0, 0.5, 0.5, 1.0, 1.0])


def test_classification_metrics_is_a_flat_dict_of_floats():
    metrics = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert set(metrics) == {
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top_decile",
        "base_rate",
        "mean_score",
        "rows",
    }
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["base_rate"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "same rows"),
        ([], [], "empty"),
        ([0, 2], [0.1, 0.2], "0/1"),
        ([0, 1], [0.1, 1.2], r"\[0, 1\]"),
        ([0, 1], [0.1, np.nan], "NaN"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(y, p, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="bins=0"):
        expected_calibration_error([0, 1], [0.2, 0.8], bins=0)
    with pytest.raises(ValueError, match="fraction=0"):
        lift_at([0, 1], [0.2, 0.8], fraction=0)


def test_plots_return_figures_with_one_curve_per_score_and_leave_pyplot_alone():
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = {"model": np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1), "random": rng.random(300)}

    roc = plot_roc(y, scores)
    labels = [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    assert any(t.startswith("model (AUC") for t in labels)
    assert any(t.startswith("random (AUC") for t in labels)

    pr = plot_precision_recall(y, scores["model"])  # a bare array is one curve named "model"
    assert pr.axes[0].get_legend().get_texts()[0].get_text().startswith("model (AP")

    calibration = plot_calibration(y, scores)
    assert len(calibration.axes) == 2  # reliability diagram and rows per bin
    gains = plot_gains(y, scores)
    assert len(gains.axes) == 2  # gains and lift

    for figure in (roc, pr, calibration, gains):
        assert figure.get_axes()
        figure.savefig(__import__("io").BytesIO(), format="png")
    assert plt.get_fignums() == open_before


def test_plots_refuse_an_empty_mapping_and_single_class_roc():
    with pytest.raises(ValueError, match="empty mapping"):
        plot_roc([0, 1], {})
    with pytest.raises(ValueError, match="both classes"):
        plot_roc([1, 1], [0.2, 0.3])
