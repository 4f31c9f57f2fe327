"""Drift thresholds calibrated on clean days: what the statistic reads when nothing changed.

An effect-size threshold is only meaningful beside the values the statistic takes on days where
nothing was planted: the day-to-day noise of a shop's features at its sample sizes. Here:

* :func:`clean_drift_scores` -- every comparable column's drift score (the method of
  :class:`~pipelines.monitoring.drift.DriftTests`) for each clean day against a reference of
  whole weeks, as monitoring compares a day with the champion's reference;
* :func:`choose_thresholds` -- per column type, the largest clean score plus a headroom, with the
  figures it came from (a pure function of the scores);
* :func:`drift_tests_toml` / :func:`write_drift_tests` -- the ``[monitoring.drift_tests]`` table
  of gates.toml that records the chosen thresholds and how they were calibrated.

``personalize monitor calibrate`` runs it over generated clean shops (several seeds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.features.schema import TIMESTAMP
from pipelines.monitoring.drift import DriftTests, comparable_columns, data_drift

REFERENCE_WEEKS = 1
DEFAULT_HEADROOM = 0.25
KINDS = ("numerical", "categorical")


@dataclass(frozen=True)
class Calibration:
    """Chosen thresholds per column type and the clean figures behind them."""

    tests: DriftTests
    figures: dict[str, dict[str, Any]]  # kind -> clean_days, clean_p50, clean_p99, clean_max...
    headroom: float
    seeds: tuple[int, ...]
    days: int

    def record(self, on: date) -> dict[str, Any]:
        """The ``calibration`` entry of gates.toml: how the thresholds were chosen."""
        record: dict[str, Any] = {
            "by": "personalize monitor calibrate",
            "on": on.isoformat(),
            "seeds": list(self.seeds),
            "days": self.days,
            "rule": f"largest clean score x {1 + self.headroom:g}, rounded up to 0.01",
        }
        for kind, figures in self.figures.items():
            record[f"{kind}_clean_scores"] = figures["clean_scores"]
            record[f"{kind}_clean_max"] = figures["clean_max"]
            record[f"{kind}_worst_column"] = figures["worst_column"]
        return record


def _kind(values: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return "numerical" if numeric else "categorical"


def clean_drift_scores(
    user_activity: pd.DataFrame,
    days: Sequence[date],
    *,
    tests: DriftTests | None = None,
    reference_weeks: int = REFERENCE_WEEKS,
    seed: int = 0,
    columns: Sequence[str] | None = None,
    progress: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """``[day, column, kind, score]`` for every day after a whole-week reference.

    ``user_activity`` holds one feature row per user per day (stamped ``event_timestamp`` = the
    end of the day) for consecutive ``days`` of a shop where nothing was planted. The reference
    is the ``reference_weeks`` whole weeks just before the last third of the days, each later
    day is compared with it over the columns whose windows are filled alike
    (:func:`~pipelines.monitoring.drift.comparable_columns`).
    """
    tests = DriftTests() if tests is None else tests
    days = sorted(days)
    span = 7 * reference_weeks
    start = len(days) - max(len(days) // 3, 1) - span
    if start < 0:
        raise ValueError(
            f"{len(days)} days are too few for a {span}-day reference and later days to compare; "
            f"pass at least {span + 2} days"
        )
    reference_days, current_days = days[start : start + span], days[start + span :]
    stamps = pd.to_datetime(user_activity[TIMESTAMP], utc=True).dt.date - timedelta(days=1)
    reference = user_activity[stamps.isin(reference_days)]
    features = [c for c in (columns or user_activity.columns) if c not in ("user_id", TIMESTAMP)]
    kinds = {c: _kind(user_activity[c]) for c in features}
    rows = []
    for day in current_days:
        kept, _ = comparable_columns(
            features, (reference_days[0] - days[0]).days + 1, (day - days[0]).days + 1
        )
        current = user_activity[stamps == day]
        result, _ = data_drift(reference, current, kept, seed=seed, report_columns=1, tests=tests)
        rows += [
            {"day": day, "column": c.column, "kind": kinds[c.column], "score": c.score}
            for c in result.columns
        ]
        if progress is not None:
            progress()
    return pd.DataFrame(rows, columns=["day", "column", "kind", "score"])


def choose_thresholds(
    scores: pd.DataFrame,
    *,
    tests: DriftTests | None = None,
    headroom: float = DEFAULT_HEADROOM,
    seeds: Sequence[int] = (),
    days: int = 0,
) -> Calibration:
    """Per column type: threshold = the largest clean score x (1 + ``headroom``), rounded up
    to 0.01, so no clean day of the calibration shops would have drifted. A type without
    clean scores keeps its current threshold."""
    if headroom < 0:
        raise ValueError(f"headroom must be >= 0, got {headroom}")
    tests = DriftTests() if tests is None else tests
    chosen = {f"{k}_threshold": t for k in KINDS for t in [tests.for_column(k == KINDS[0])[1]]}
    figures: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        part = scores[scores["kind"] == kind]
        if part.empty:
            continue
        worst = part.loc[part["score"].idxmax()]
        top = float(worst["score"])
        chosen[f"{kind}_threshold"] = max(math.ceil(top * (1 + headroom) * 100) / 100, 0.01)
        figures[kind] = {
            "clean_scores": len(part),
            "clean_p50": round(float(part["score"].median()), 4),
            "clean_p99": round(float(part["score"].quantile(0.99)), 4),
            "clean_max": round(top, 4),
            "worst_column": str(worst["column"]),
            "method": tests.for_column(kind == KINDS[0])[0],
            "threshold": chosen[f"{kind}_threshold"],
        }
    new_tests = DriftTests(
        numerical_method=tests.numerical_method,
        categorical_method=tests.categorical_method,
        numerical_threshold=chosen["numerical_threshold"],
        categorical_threshold=chosen["categorical_threshold"],
    )
    return Calibration(new_tests, figures, headroom, tuple(seeds), days)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def drift_tests_toml(calibration: Calibration, on: date) -> str:
    """The ``[monitoring.drift_tests]`` table for gates.toml."""
    tests = calibration.tests
    record = ", ".join(f"{k} = {_toml_value(v)}" for k, v in calibration.record(on).items())
    return (
        "[monitoring.drift_tests]\n"
        "# Per-column drift statistic (an effect size) and its threshold, by column type.\n"
        f'numerical = {{ method = "{tests.numerical_method}", '
        f"threshold = {tests.numerical_threshold:g} }}\n"
        f'categorical = {{ method = "{tests.categorical_method}", '
        f"threshold = {tests.categorical_threshold:g} }}\n"
        f"calibration = {{ {record} }}\n"
    )


_SECTION = re.compile(r"^\[monitoring\.drift_tests\]\n(?:(?!\[).*\n?)*", re.MULTILINE)


def write_drift_tests(path: Path, calibration: Calibration, on: date) -> Path:
    """Replace (or append) the ``[monitoring.drift_tests]`` table of the gates file ``path``;
    the rest of the file is kept as it is."""
    text = Path(path).read_text(encoding="utf-8")
    block = drift_tests_toml(calibration, on) + "\n"
    if _SECTION.search(text):
        text = _SECTION.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    Path(path).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return Path(path)
