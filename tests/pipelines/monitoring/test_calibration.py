"""Drift thresholds calibrated on clean days, recorded in gates.toml, read back by monitoring."""

from __future__ import annotations

import shutil
from datetime import date
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines import gates
from pipelines.cli import app
from pipelines.data.generator import ShopSpec
from pipelines.models.testing import synthetic_shop
from pipelines.monitoring.calibration import (
    choose_thresholds,
    clean_drift_scores,
    drift_tests_toml,
    write_drift_tests,
)
from pipelines.monitoring.drift import DriftTests

TODAY = date(2026, 12, 6)


def scores(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"day": TODAY, "column": c, "kind": k, "score": s} for c, k, s in rows])


def test_thresholds_are_the_largest_clean_score_plus_headroom_rounded_up() -> None:
    clean = scores(
        [
            ("views_1d", "numerical", 0.05),
            ("device_share_web_1d", "numerical", 0.161),
            ("top_category_1", "categorical", 0.04),
        ]
    )
    calibration = choose_thresholds(clean, headroom=0.25, seeds=(1, 2), days=63)
    assert calibration.tests.numerical_threshold == 0.21  # 0.161 x 1.25 = 0.20125 -> 0.21
    assert calibration.tests.categorical_threshold == 0.05
    assert calibration.figures["numerical"]["worst_column"] == "device_share_web_1d"
    assert calibration.figures["numerical"]["clean_scores"] == 2
    # a type without clean scores keeps the threshold it had
    only_numbers = choose_thresholds(clean[clean["kind"] == "numerical"])
    assert only_numbers.tests.categorical_threshold == DriftTests().categorical_threshold
    with pytest.raises(ValueError, match="headroom"):
        choose_thresholds(clean, headroom=-0.1)


def packaged_gates(tmp_path: Path) -> Path:
    copy = tmp_path / "gates.toml"
    shutil.copy(str(resources.files("pipelines").joinpath("gates.toml")), copy)
    return copy


def test_the_record_is_written_into_gates_toml_and_read_back_by_monitoring(tmp_path) -> None:
    path = packaged_gates(tmp_path)
    before = path.read_text()
    calibration = choose_thresholds(
        scores([("views_1d", "numerical", 0.4), ("top_category_1", "categorical", 0.08)]),
        seeds=(1, 2, 3),
        days=63,
    )
    write_drift_tests(path, calibration, TODAY)
    config = gates.load_monitoring_config(path)
    assert config.drift_tests == DriftTests(numerical_threshold=0.5, categorical_threshold=0.1)
    assert config.drift_calibration["by"] == "personalize monitor calibrate"
    assert config.drift_calibration["seeds"] == [1, 2, 3]
    assert config.drift_calibration["numerical_clean_max"] == 0.4
    # written twice: one table, replaced, and the rest of the file as it was
    write_drift_tests(path, calibration, TODAY)
    text = path.read_text()
    assert text.count("[monitoring.drift_tests]") == 1
    assert "[monitoring.performance_floor]" in text and "[models.propensity.value]" in text
    assert gates.load_monitoring_config(path).floors == gates.load_monitoring_config().floors
    assert before.count("\n[") == text.count("\n[")


def test_a_p_value_test_in_gates_toml_is_refused_naming_the_key(tmp_path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text('[monitoring.drift_tests]\ncategorical = { method = "chisquare" }\n')
    with pytest.raises(gates.GateConfigError, match=r"monitoring\.drift_tests.*not an effect size"):
        gates.load_monitoring_config(path)


def test_the_versioned_gates_file_records_its_calibration() -> None:
    config = gates.load_monitoring_config()
    assert config.drift_calibration.get("by") == "personalize monitor calibrate"
    assert config.drift_tests.numerical_method == "wasserstein"
    assert config.drift_tests.categorical_method == "jensenshannon"


@pytest.fixture(scope="module")
def clean_shop(tmp_path_factory):
    return synthetic_shop(
        tmp_path_factory.mktemp("clean"), ShopSpec(users=400, items=120, days=56, seed=3)
    )


def test_clean_days_are_scored_against_a_whole_week_before_them(clean_shop) -> None:
    columns = ["views_1d", "views_30d", "top_category_1", "days_since_last_event"]
    columns += ["purchase_days_total"]
    found = clean_drift_scores(clean_shop.user_activity, clean_shop.days, seed=3, columns=columns)
    days = sorted(found["day"].unique())
    # 56 days: the last third (18 days) is compared with the whole week just before it, whose
    # 30-day windows are already full
    assert len(days) == 18 and days[0] == clean_shop.days[38] and days[-1] == clean_shop.days[-1]
    assert set(found["kind"]) == {"numerical", "categorical"}
    assert set(found["column"]) == {"views_1d", "views_30d", "top_category_1"}
    # recency and the lifetime rhythm grow with the history: never compared here
    assert not {"days_since_last_event", "purchase_days_total"} & set(found["column"])
    with pytest.raises(ValueError, match="too few"):
        clean_drift_scores(clean_shop.user_activity, clean_shop.days[:8])


def test_calibrate_command_writes_the_thresholds(tmp_path) -> None:
    path = packaged_gates(tmp_path)
    result = CliRunner().invoke(
        app,
        ["--home", str(tmp_path / "home"), "monitor", "calibrate", "--seed", "5",
         "--days", "56", "--users", "300", "--items", "100", "--write", str(path)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "-> threshold" in result.output and f"wrote [monitoring.drift_tests] to {path}" in (
        result.output.replace("\n", "")
    )
    config = gates.load_monitoring_config(path)
    assert config.drift_calibration["seeds"] == [5] and config.drift_calibration["days"] == 56
    figures = config.drift_calibration
    assert config.drift_tests.numerical_threshold >= figures["numerical_clean_max"]


def test_the_toml_table_is_valid_toml() -> None:
    import tomllib

    calibration = choose_thresholds(scores([("views_1d", "numerical", 0.1)]), seeds=(1,), days=50)
    table = tomllib.loads(drift_tests_toml(calibration, TODAY))["monitoring"]["drift_tests"]
    assert table["numerical"] == {"method": "wasserstein", "threshold": 0.13}
    assert table["calibration"]["on"] == "2026-12-06"
