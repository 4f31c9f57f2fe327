"""Drift verdicts: like with like, sampling that keeps the verdicts, any column type, reports."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.generator import PlantedChange, ShopSpec
from pipelines.gates import load_monitoring_config
from pipelines.models.testing import synthetic_shop
from pipelines.monitoring.drift import (
    DEFAULT_MAX_ROWS,
    DriftError,
    DriftTests,
    comparable_columns,
    data_drift,
    prediction_drift,
    save_report,
    window_days,
)

DRIFT_DAY = date(2026, 1, 16)  # day index 15 of the quickstart shop
# every kind of user_activity feature: counts and money per window, rates, shares, RFM scores,
# recency, and a string column; the whole table would double the test time for no new case
SAMPLING_COLUMNS = [
    "views_1d",
    "views_7d",
    "views_30d",
    "purchases_7d",
    "spend_7d",
    "spend_30d",
    "sessions_30d",
    "avg_order_value_30d",
    "view_to_cart_rate_30d",
    "device_share_web_30d",
    "device_share_ios_30d",
    "device_share_android_30d",
    "rfm_monetary",
    "days_since_last_event",
    "top_category_1",
    "top_category_1_share",
]


@pytest.fixture(scope="module")
def activity(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The quickstart shop's daily user_activity, covariate drift planted on day 15."""
    spec = ShopSpec(drifts=(PlantedChange("covariate", DRIFT_DAY),))
    shop = synthetic_shop(tmp_path_factory.mktemp("shop"), spec)
    index = (shop.user_activity["event_timestamp"] - pd.Timestamp("2026-01-02", tz="UTC")).dt.days
    return shop.user_activity.assign(day_index=index.to_numpy())


def days(activity: pd.DataFrame, indexes: range | list[int]) -> pd.DataFrame:
    return activity[activity["day_index"].isin(list(indexes))].drop(columns="day_index")


def feature_columns(activity: pd.DataFrame) -> list[str]:
    return [c for c in activity.columns if c not in ("user_id", "event_timestamp", "day_index")]


# ---- like with like ---------------------------------------------------------------------------


def test_windows_are_read_from_names_and_the_schema() -> None:
    assert [window_days(c) for c in ("views_1d", "sessions_7d", "spend_30d")] == [1, 7, 30]
    assert window_days("rfm_recency") == window_days("top_category_2") == 30
    assert window_days("segment_name") == 30  # assigned from the 30-day profile
    assert window_days("days_since_last_purchase") == 90  # grows with the whole history
    assert window_days("rt_views_1h") == 0  # pushed by serving, no daily history


def test_columns_with_unequally_filled_windows_are_skipped_with_the_reason() -> None:
    columns = ["views_1d", "views_7d", "views_30d", "top_category_1", "rt_carts_1h"]
    kept, skipped = comparable_columns(columns, 12, 30)
    assert kept == ["views_1d", "views_7d", "rt_carts_1h"]
    assert "12/30 days in the reference but 30/30 in current" in skipped["views_30d"]
    assert set(skipped) == {"views_30d", "top_category_1"}
    # equal partial windows are like with like; full windows on both sides too
    assert comparable_columns(columns, 12, 12) == (columns, {})
    assert comparable_columns(columns, 31, 200)[0] == columns
    with pytest.raises(DriftError, match="history days must be at least 1"):
        comparable_columns(columns, 0, 5)


def test_clean_days_do_not_alarm_once_filling_windows_are_left_out(activity) -> None:
    # days 7 and 14: same weekday, both before the planted drift, 30-day windows 8/30 vs 15/30
    reference, current = days(activity, [7]), days(activity, [14])
    columns = feature_columns(activity)
    kept, skipped = comparable_columns(columns, 8, 15)

    # the false alarm being avoided: 15 days of views are more than 8 days of views
    naive, _ = data_drift(reference, current, ["views_30d", "sessions_30d", "spend_30d"])
    assert naive.dataset_drifted
    assert {c.column for c in naive.drifted_columns} >= {"views_30d", "sessions_30d"}

    # judged as monitoring judges: by the thresholds calibrated on clean shops (gates.toml)
    result, _ = data_drift(reference, current, kept, tests=load_monitoring_config().drift_tests)
    assert not result.dataset_drifted
    assert result.drifted_columns == []
    assert {c.column for c in result.columns} == set(kept)
    assert "views_30d" in skipped and "views_7d" in kept


# ---- sampling keeps the verdicts ----------------------------------------------------------------


def _split_users(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    odd = frame["user_id"].str[1:].astype(int) % 2 == 1
    return frame[~odd], frame[odd]


@pytest.mark.parametrize("case", ["planted drift", "clean"])
def test_a_sample_gives_the_same_verdict_per_column_as_every_row(activity, case) -> None:
    if case == "planted drift":  # the 15 days before the covariate drift against the 15 after
        reference, current = days(activity, range(0, 15)), days(activity, range(15, 30))
    else:  # the same 30 days, users split in two: one population, nothing changed
        reference, current = _split_users(days(activity, range(30)))
    assert min(len(reference), len(current)) > 2 * DEFAULT_MAX_ROWS  # a real sample

    full, _ = data_drift(reference, current, SAMPLING_COLUMNS, max_rows=None)
    sampled, _ = data_drift(reference, current, SAMPLING_COLUMNS)

    assert sampled.sampled and not full.sampled
    assert (sampled.reference_rows, sampled.current_rows) == (DEFAULT_MAX_ROWS, DEFAULT_MAX_ROWS)
    assert {c.column: c.drifted for c in sampled.columns} == {
        c.column: c.drifted for c in full.columns
    }
    assert sampled.dataset_drifted == full.dataset_drifted
    if case == "planted drift":
        # mobile devices took over: the device mix is among the drifted features
        assert {"device_share_web_30d", "device_share_ios_30d"} <= {
            c.column for c in full.drifted_columns
        }
    else:
        assert full.drifted_columns == []


def test_sampling_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 30_000)})
    current = pd.DataFrame({"x": rng.normal(0.05, 1, 30_000)})
    first, _ = data_drift(reference, current, max_rows=5_000, seed=11)
    again, _ = data_drift(reference, current, max_rows=5_000, seed=11)
    assert first.columns == again.columns
    with pytest.raises(DriftError, match="max_rows=500 is below"):
        data_drift(reference, current, max_rows=500)


# ---- any column type ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 3_000

    def frame(mobile_share: float, shift: float) -> pd.DataFrame:
        count = rng.poisson(3 + shift, n)
        return pd.DataFrame(
            {
                "user_id": [f"u{i:06d}" for i in range(n)],
                "device": np.where(rng.random(n) < mobile_share, "ios", "web").astype(object),
                "spend": rng.gamma(2.0, 10.0 * (1 + shift), n),
                "count": pd.array(np.where(rng.random(n) < 0.1, None, count), dtype="Int64"),
                "flag": rng.random(n) < 0.3,
                "when": pd.Timestamp("2026-01-01", tz="UTC"),
            }
        )

    reference = frame(0.3, 0.0)
    reference.loc[::50, "device"] = None  # a few unknown devices: nulls in a string column
    reference = reference.assign(
        mixed=[1, "1", 2.0, "b"] * (n // 4),
        ratio=np.where(np.arange(n) % 100 == 0, np.inf, 0.5),
        empty=np.nan,
        only_reference=1.0,
    )
    current = frame(0.7, 0.5).assign(
        mixed=[1, 2, 2, 1] * (n // 4),
        ratio=0.5,
        empty=np.nan,
    )
    return reference, current


def test_strings_nulls_and_mixed_dtypes_are_compared_or_skipped_with_a_reason(mixed) -> None:
    reference, current = mixed
    result, _ = data_drift(reference, current)
    by_column = {c.column: c for c in result.columns}

    assert set(by_column) == {"device", "spend", "count", "flag", "mixed", "ratio"}
    assert by_column["device"].drifted and by_column["device"].method == "jensenshannon"
    assert by_column["spend"].drifted and by_column["spend"].method == "wasserstein"
    assert by_column["count"].drifted  # nullable integers, nulls dropped
    assert not by_column["flag"].drifted  # booleans as two categories
    assert not by_column["ratio"].drifted  # infinities read as missing
    assert result.skipped == {
        "empty": "all values null in the reference",
        "when": "datetime column: not a feature to compare",
        "only_reference": "not in the current",
    }
    assert "user_id" not in by_column  # keys are never features
    # worst first: the drifted columns lead, the larger excess over the threshold first
    flags = [c.drifted for c in result.columns]
    assert flags == sorted(flags, reverse=True)


def test_nothing_comparable_is_an_error_naming_the_columns(mixed) -> None:
    reference, current = mixed
    with pytest.raises(DriftError, match="empty: all values null"):
        data_drift(reference, current, ["empty"])
    with pytest.raises(DriftError, match="current frame has no rows"):
        data_drift(reference, current.iloc[:0])


# ---- predictions and reports -------------------------------------------------------------------


def test_prediction_drift_of_scores_and_of_recommended_categories() -> None:
    rng = np.random.default_rng(1)
    scores = rng.beta(2, 8, 5_000)
    same, _ = prediction_drift(scores, rng.beta(2, 8, 5_000), name="p_purchase_7d")
    moved, _ = prediction_drift(scores, rng.beta(4, 6, 5_000), name="p_purchase_7d")
    assert not same.dataset_drifted
    assert moved.dataset_drifted and moved.columns[0].column == "p_purchase_7d"

    cats = ["books", "garden", "toys", "sports"]
    before = [list(rng.choice(cats, 3, p=[0.4, 0.3, 0.2, 0.1])) for _ in range(1_500)]
    after = [list(rng.choice(cats, 3, p=[0.1, 0.2, 0.3, 0.4])) for _ in range(1_500)]
    categories, _ = prediction_drift(before, after, name="recommended_category")
    assert categories.dataset_drifted
    assert categories.reference_rows == 4_500  # one row per recommendation
    assert categories.columns[0].method == "jensenshannon"


def test_report_files_hold_the_evidently_page_and_the_verdicts(mixed, tmp_path: Path) -> None:
    result, snapshot = data_drift(*mixed, ["device", "spend", "flag"])
    directory = tmp_path / "reports" / "propensity" / "2026-01-31"
    html_path, json_path = save_report(snapshot, result, directory)

    assert (html_path.name, json_path.name) == ("drift.html", "drift.json")
    assert html_path.parent == json_path.parent == directory
    html = html_path.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "device" in html and "spend" in html
    summary = json.loads(json_path.read_text())
    assert summary["drifted_columns"] == [c.column for c in result.drifted_columns]
    assert summary["columns"][0]["column"] == result.columns[0].column
    assert summary["report_html"] == str(html_path)
    assert summary["dataset_drifted"] == result.dataset_drifted


def test_the_preset_gives_the_same_verdicts(mixed) -> None:
    columns = ["device", "spend", "flag"]
    light, _ = data_drift(*mixed, columns)
    preset, _ = data_drift(*mixed, columns, preset=True)
    assert [(c.column, c.drifted) for c in preset.columns] == [
        (c.column, c.drifted) for c in light.columns
    ]
    assert preset.drift_share == light.drift_share


def test_screening_judges_every_column_as_the_full_report_and_draws_fewer(activity) -> None:
    """report_columns: same per-column verdicts and scores, a report of the interesting ones."""
    reference, current = days(activity, [20]), days(activity, [27])
    columns = [c for c in feature_columns(activity) if window_days(c) <= 7]
    full, _ = data_drift(reference, current, columns)
    screened, snapshot = data_drift(
        reference, current, columns, report_columns=3, always_report=["views_7d"]
    )
    assert [(c.column, c.drifted, round(c.score, 9)) for c in screened.columns] == [
        (c.column, c.drifted, round(c.score, 9)) for c in full.columns
    ]
    drawn = {m["config"]["column"] for m in snapshot.dict()["metrics"] if "column" in m["config"]}
    assert "views_7d" in drawn
    assert len(drawn) == max(3, sum(c.drifted for c in full.columns)) < len(columns)


# ---- effect sizes, not p-values -----------------------------------------------------------------


@pytest.mark.parametrize("report_columns", [None, 1])  # the full report and the screening
def test_columns_are_judged_by_effect_size_at_the_shop_s_sample_sizes(report_columns) -> None:
    # the false page being avoided: ~820 recommended categories against ~1,000 from the same mix
    # (a chi-square p-value flagged such a pair every clean day), and a negligible shift of a
    # number over 50k rows (a KS p-value is ~0 there)
    rng = np.random.default_rng(3)
    mix = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    names = list("abcde")
    reference = pd.DataFrame({"category": rng.choice(names, 1000, p=mix)})
    current = pd.DataFrame({"category": rng.choice(names, 820, p=mix)})
    result, _ = data_drift(reference, current, report_columns=report_columns)
    (column,) = result.columns
    assert (column.method, column.threshold, column.drifted) == ("jensenshannon", 0.1, False)

    moved = pd.DataFrame({"category": rng.choice(names, 820, p=mix[::-1])})
    assert data_drift(reference, moved, report_columns=report_columns)[0].columns[0].drifted

    numbers = pd.DataFrame({"x": rng.normal(0, 1, 50_000)})
    nudged = pd.DataFrame({"x": rng.normal(0.03, 1, 50_000)})
    result, _ = data_drift(numbers, nudged, max_rows=None, report_columns=report_columns)
    assert (result.columns[0].method, result.columns[0].drifted) == ("wasserstein", False)


def test_the_statistic_and_threshold_come_from_the_settings() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    current = pd.DataFrame({"x": rng.normal(0.06, 1, 20_000)})
    loose, _ = data_drift(reference, current, report_columns=1)
    strict, _ = data_drift(
        reference, current, report_columns=1, tests=DriftTests(numerical_threshold=0.03)
    )
    assert not loose.columns[0].drifted and strict.columns[0].drifted
    assert strict.columns[0].threshold == 0.03
    psi, _ = data_drift(reference, current, tests=DriftTests(numerical_method="psi"))
    assert psi.columns[0].method == "psi"
    with pytest.raises(ValueError, match="not an effect size"):
        DriftTests(categorical_method="chisquare")


def clumped(rng: np.random.Generator, customers: int, categories: list[str], prefix: str):
    """Each customer's five interactions of a day in one category (one order's lines)."""
    chosen = rng.choice(categories, customers)
    return pd.DataFrame(
        {
            "user_id": np.repeat([f"{prefix}{i}" for i in range(customers)], 5),
            "category": np.repeat(chosen, 5),
        }
    )


def test_a_small_day_over_the_threshold_by_noise_alone_is_not_drifted() -> None:
    """The effect size of a day of 25 customers drawn from the reference's own mix exceeds the
    threshold by chance; drawn as whole customers, the reference's days of that size reach it
    too, so it is noise. A day where those customers moved to another category is not."""
    rng = np.random.default_rng(5)
    names = list("abcdefghij")
    reference = clumped(rng, 400, names, "r")
    tests = DriftTests(categorical_threshold=0.13)
    small = clumped(rng, 25, names, "c")
    by_rows, _ = data_drift(reference, small, ["category"], report_columns=1, tests=tests)
    by_customers, _ = data_drift(
        reference, small, ["category"], report_columns=1, tests=tests, groups=["user_id"]
    )
    (rows,), (customers,) = by_rows.columns, by_customers.columns
    assert rows.score > 0.13 and customers.score == rows.score
    assert rows.drifted, "drawn row by row, the reference never reaches a clumped day"
    assert customers.noise_floor is not None and customers.noise_floor >= customers.score
    assert customers.within_noise and not customers.drifted and by_customers.drifted_columns == []
    assert "within the sampling noise" in by_customers.summary()

    moved = clumped(rng, 25, ["a", "b"], "m")
    result, _ = data_drift(
        reference, moved, ["category"], report_columns=1, tests=tests, groups=["user_id"]
    )
    assert result.columns[0].drifted and not result.columns[0].within_noise
