"""Data and prediction drift with Evidently: one verdict per column, read from Evidently's tests.

``data_drift(reference, current)`` runs an Evidently 0.7 report with one ``ValueDrift`` metric
(and its test) per column, and turns the test results into a :class:`DriftResult`: which columns
drifted, with method, score and threshold, worst first, and whether the dataset as a whole drifted
(share of drifted columns >= ``drift_share_threshold``, the rule of Evidently's
``DriftedColumnsCount`` test). The verdict is the test *status*, never a raw score compared here.
The method and threshold of every column are set (:class:`DriftTests`, from gates.toml): effect
sizes -- normed Wasserstein distance for numbers, Jensen-Shannon distance for categories by
default -- never Evidently's own choice, which falls back to chi-square / KS p-values below 1000
rows: those flag tiny differences at the shop's sample sizes and paged on clean days.

Why not ``DataDriftPreset``: its metrics are exactly these (``DriftedColumnsCount`` plus one
``ValueDrift`` per column), but it computes every column's drift three times (per column, for the
count, and again for its summary table) and draws every plot twice: ~6 s of CPU for 2000 rows x
36 columns, above the 5 s budget before any data is compared. ``preset=True`` still uses it, and
its tests are read the same way.

Sampling: above ``max_rows`` rows a side is sampled uniformly with a fixed seed. The default
methods are distances, which do not grow with the sample size the way p-values shrink, so a
sample of 10 000 rows gives the same per-column verdicts as every row (a test in
``tests/pipelines/monitoring/test_drift.py`` checks it on planted drift and on clean data, and
``bench/monitor.py`` at 100k rows for 5k-50k samples). Measured by ``bench/monitor.py`` on the
shared 2-core machine, 36 propensity_v1 features: every one of 100k rows 9.9 s of CPU; a 10k
sample 4.5 s (1M rows: 3.7 s); ``DataDriftPreset`` on the same sample 8.3 s. About 3 s of it is
Evidently drawing two plotly figures per column whatever the sample, so smaller samples buy
little (5k: 3.3 s) while making borderline verdicts flip (2k rows flipped one of 30 columns).

Compare like with like: a 30-day feature computed after 12 days of history is not the same
quantity as after 30, so :func:`comparable_columns` drops the features whose window is filled to
a different extent on the two sides, with the reason, before any test is run.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.gates import DriftTests
from pipelines.monitoring.interactions import HISTORY_DAYS as PROFILE_HISTORY_DAYS
from pipelines.monitoring.interactions import HISTORY_PROFILE_COLUMNS as PROFILE_HISTORY_COLUMNS

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

# bench/monitor.py: 100k rows x the 36 propensity_v1 features in 4.5 s of CPU on 2 cores.
DEFAULT_MAX_ROWS = 10_000
# Never sample below this: a distance on fewer rows is mostly sampling noise.
MIN_SAMPLE_ROWS = 2_000
DEFAULT_DRIFT_SHARE = 0.5
# Draws of the sampling-noise floor: the largest of 40 is about the 97.5th percentile of what a
# day of the same size drawn from the reference scores, so a column flagged by the effect size
# alone on a small day (a few hundred rows) is not paged for noise.
NOISE_DRAWS = 40

# Columns that identify a row or stamp it: never features to compare.
KEY_COLUMNS = frozenset({"user_id", "item_id", "session_id", "event_id", "event_timestamp"})

# Window in days of features whose name does not end in _<N>d, from pipelines/features/schema.py:
# RFM scores rank 30-day purchases/spend (recency ranks days_since_last_event), the top categories
# are shares of the 30-day events and segments are assigned from the 30-day activity profile.
# Real-time counters (rt_*, 1 hour, pushed by serving) do not depend on the daily history at all.
_WINDOW_SUFFIX = re.compile(r"_(\d+)d$")
_THIRTY_DAY_PREFIXES = ("rfm_", "top_category_", "segment_")
# days_since_* carry forward beyond the 30-day window: after h days of history no value exceeds
# h, so the tail keeps growing with the history. Measured on the generated shop: a clean day
# after 34 days of history against one after 41 "drifts" in days_since_last_purchase. They are
# compared once both sides have this much history.
RECENCY_HORIZON_DAYS = 90
_RECENCY_PREFIX = "days_since_"
# lifetime counts and the rhythm built on them grow with the history in the same way
_LIFETIME_COLUMNS = frozenset(
    {"purchase_days_total", "days_between_purchases", "purchase_overdue_ratio"}
)

# Evidently's p-value tests: a lower score is worse (a distance: higher is worse).
_P_VALUE_HINTS = ("p_value", "anderson", "cramer", "epps", "fisher", "g_test", "mann", "t_test")


REPORT_COLUMNS = 12  # every column is judged; the HTML shows the drifted, key and closest ones


class DriftError(ValueError):
    """A drift comparison that cannot be made, with what to change."""


# Effect sizes, not p-values: a p-value test flags any difference once there are enough rows
# (chi-square on ~800 interactions' categories paged every clean day), a distance says how big the
# difference is whatever the sample. Evidently's names; thresholds are calibrated on clean days
# (`personalize monitor calibrate`) and recorded in gates.toml [monitoring.drift_tests].


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str  # Evidently's stattest id, as in the settings, e.g. "wasserstein"
    score: float
    threshold: float
    # Evidently's test status (FAIL = drifted), unless the score is within sampling noise
    drifted: bool
    # the score reached by samples of the current's size drawn from the reference itself: the
    # noise of a day this small; computed only for columns over the threshold (None otherwise)
    noise_floor: float | None = None

    @property
    def within_noise(self) -> bool:
        """Over the effect-size threshold, but no more than the reference's own samples reach."""
        return self.noise_floor is not None and self.score <= self.noise_floor

    @property
    def severity(self) -> float:
        """How far past (> 1) or short of (< 1) the threshold the score is, whatever the method."""
        if _is_p_value(self.method):
            return self.threshold / max(self.score, 1e-12)
        return self.score / self.threshold if self.threshold > 0 else math.inf


@dataclass
class DriftResult:
    drift_share: float  # drifted columns / compared columns
    dataset_drifted: bool  # drift_share >= drift_share_threshold
    drift_share_threshold: float
    columns: list[ColumnDrift]  # worst first
    reference_rows: int  # rows compared (after sampling)
    current_rows: int
    sampled: bool  # True if either side was sampled down to max_rows
    reference_rows_total: int = 0  # rows before sampling
    current_rows_total: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not compared

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["drifted_columns"] = [c.column for c in self.drifted_columns]
        return record

    def summary(self) -> str:
        """One line for logs and alerts: how many columns drifted, the worst few."""
        worst = ", ".join(
            f"{c.column} {c.score:.3g} (threshold {c.threshold:.3g})"
            for c in self.drifted_columns[:3]
        )
        verdict = "dataset drift" if self.dataset_drifted else "no dataset drift"
        noise = [c.column for c in self.columns if c.within_noise]
        return (
            f"{verdict}: {len(self.drifted_columns)}/{len(self.columns)} columns drifted "
            f"(share {self.drift_share:.2f}, threshold {self.drift_share_threshold:.2f})"
            + (f"; worst: {worst}" if worst else "")
            + (
                f"; over the threshold but within the sampling noise of "
                f"{self.current_rows} rows: {', '.join(noise[:3])}"
                if noise
                else ""
            )
        )


# ---- which columns can be compared ------------------------------------------------------------


def window_days(column: str) -> int:
    """Days of daily history a feature's value depends on; 0 if it does not depend on it."""
    match = _WINDOW_SUFFIX.search(column)
    if match:
        return int(match.group(1))
    if column.startswith(_THIRTY_DAY_PREFIXES):
        return 30
    if column.startswith(_RECENCY_PREFIX) or column in _LIFETIME_COLUMNS:
        return RECENCY_HORIZON_DAYS
    if column in PROFILE_HISTORY_COLUMNS:
        # the interaction profile looks HISTORY_DAYS back from the day before
        return PROFILE_HISTORY_DAYS + 1
    return 0


def comparable_columns(
    columns: Iterable[str], history_days_reference: int, history_days_current: int
) -> tuple[list[str], dict[str, str]]:
    """The columns whose windows are filled alike on both sides, and why the others are not.

    A ``w``-day feature computed after ``h`` days of history covers ``min(h, w)`` days: after 12
    days ``views_30d`` counts 12 days of views, and compared with a full 30-day reference it
    "drifts" although nothing changed. Such columns are skipped until both sides cover the same
    span (equal partial spans are comparable: like with like).
    """
    if history_days_reference < 1 or history_days_current < 1:
        raise DriftError(
            f"history days must be at least 1 (the feature day itself), got "
            f"reference={history_days_reference}, current={history_days_current}"
        )
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for column in columns:
        window = window_days(column)
        filled_reference = min(history_days_reference, window)
        filled_current = min(history_days_current, window)
        if filled_reference == filled_current:
            kept.append(column)
        else:
            skipped[column] = (
                f"{window}-day window filled {filled_reference}/{window} days in the reference "
                f"but {filled_current}/{window} in current: not comparable yet"
            )
    return kept, skipped


# ---- the comparison ---------------------------------------------------------------------------


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    seed: int = 0,
    drift_share_threshold: float = DEFAULT_DRIFT_SHARE,
    preset: bool = False,
    report_columns: int | None = None,
    always_report: Sequence[str] = (),
    tests: DriftTests | None = None,
    groups: Sequence[str] = (),
) -> tuple[DriftResult, Snapshot]:
    """Compare ``current`` with ``reference`` column by column; the verdicts and the Evidently run.

    ``columns`` defaults to the columns both frames have, minus keys and timestamps. Columns that
    cannot be tested are skipped with a reason rather than failing the run: missing on one side,
    null everywhere on one side, or datetimes. Strings, booleans and categories are compared as
    categories; a column numeric on one side and not on the other as categories (as strings).
    ``max_rows=None`` compares every row. With ``report_columns=N`` every column is still judged
    by Evidently's test, but the HTML report shows only the drifted columns, ``always_report``
    and the closest calls, at least N: what a person opens, at a fraction of the rendering time.
    ``tests`` is the statistic and effect-size threshold per column type (default
    :class:`DriftTests`: normed Wasserstein for numbers, Jensen-Shannon for categories).
    A column over its threshold must also be beyond the sampling noise of a day of the current's
    size; ``groups`` (e.g. ``("user_id", "event_timestamp")``: one customer's day) are the units
    drawn whole for that noise, when rows of a unit are alike (one order's lines): the day is
    then as small as its number of units, not rows.
    """
    tests = DriftTests() if tests is None else tests
    if not 0 < drift_share_threshold <= 1:
        raise DriftError(f"drift_share_threshold must be in (0, 1], got {drift_share_threshold}")
    if max_rows is not None and max_rows < MIN_SAMPLE_ROWS:
        raise DriftError(
            f"max_rows={max_rows} is below {MIN_SAMPLE_ROWS}: a distance on so few rows is mostly "
            "sampling noise; use a larger max_rows or None"
        )
    for name, frame in (("reference", reference), ("current", current)):
        if len(frame) == 0:
            raise DriftError(f"the {name} frame has no rows: nothing to compare")

    skipped: dict[str, str] = {}
    if columns is None:
        columns = [c for c in reference.columns if c in current.columns and c not in KEY_COLUMNS]
        for mine, other, name in (
            (reference, current, "current"),
            (current, reference, "reference"),
        ):
            for column in mine.columns:
                if column not in other.columns and column not in KEY_COLUMNS:
                    skipped[str(column)] = f"not in the {name}"
    present = []
    for column in columns:
        missing = [
            n for n, f in (("reference", reference), ("current", current)) if column not in f
        ]
        if missing:
            skipped[column] = f"not in the {' or the '.join(missing)}"
        else:
            present.append(column)

    # sample first: the conversions below then cost max_rows rows, not the whole frame
    ref_frame = _sample(_with_units(reference, present, groups), max_rows, seed)
    cur_frame = _sample(_with_units(current, present, groups), max_rows, seed + 1)
    ref_units, cur_units = ref_frame.pop(_UNIT).to_numpy(), cur_frame.pop(_UNIT).to_numpy()
    numerical, categorical = [], []
    ref_parts, cur_parts = {}, {}
    for column in present:
        kind, reason, ref_col, cur_col = _prepare_column(column, ref_frame, cur_frame)
        if reason:
            skipped[column] = reason + _sample_note(column, reason, reference, current)
            continue
        (numerical if kind == "num" else categorical).append(column)
        ref_parts[column], cur_parts[column] = ref_col, cur_col
    if not ref_parts:
        detail = "; ".join(f"{c}: {why}" for c, why in skipped.items()) or "no columns given"
        raise DriftError(f"no column can be compared ({detail})")
    ref_frame, cur_frame = pd.DataFrame(ref_parts), pd.DataFrame(cur_parts)

    if report_columns is None or preset:
        snapshot = _run_report(
            ref_frame, cur_frame, numerical, categorical, drift_share_threshold, preset, tests
        )
        column_results = sorted(
            _column_results(snapshot), key=lambda c: (not c.drifted, -c.severity, c.column)
        )
    else:
        # Evidently renders two plots per column while it computes, ~0.25 s a column: judge
        # every column with Evidently's own test (same method, threshold and verdict as its
        # ValueDrift), then draw the report for the columns a person will look at
        column_results = sorted(
            _screen(ref_frame, cur_frame, numerical, categorical, tests),
            key=lambda c: (not c.drifted, -c.severity, c.column),
        )
        shown = [c.column for c in column_results if c.drifted or c.column in always_report]
        shown += [c.column for c in column_results if c.column not in shown]
        shown = shown[: max(report_columns, sum(c.drifted for c in column_results))]
        snapshot = _run_report(
            ref_frame[shown],
            cur_frame[shown],
            [c for c in numerical if c in shown],
            [c for c in categorical if c in shown],
            drift_share_threshold,
            preset,
            tests,
        )
    column_results = _beyond_sampling_noise(
        column_results, ref_frame, cur_frame, numerical, tests, seed, ref_units, cur_units
    )
    drifted = sum(c.drifted for c in column_results)
    share = drifted / len(column_results) if column_results else 0.0
    result = DriftResult(
        drift_share=share,
        dataset_drifted=share >= drift_share_threshold,
        drift_share_threshold=drift_share_threshold,
        columns=column_results,
        reference_rows=len(ref_frame),
        current_rows=len(cur_frame),
        sampled=len(ref_frame) < len(reference) or len(cur_frame) < len(current),
        reference_rows_total=len(reference),
        current_rows_total=len(current),
        skipped=skipped,
    )
    return result, snapshot


def prediction_drift(
    reference_predictions: Sequence[Any] | pd.Series | np.ndarray,
    current_predictions: Sequence[Any] | pd.Series | np.ndarray,
    *,
    name: str = "prediction",
    max_rows: int | None = DEFAULT_MAX_ROWS,
    seed: int = 0,
    tests: DriftTests | None = None,
) -> tuple[DriftResult, Snapshot]:
    """Drift of what a model outputs: scores (numbers) or recommended categories (strings).

    A sequence of lists (each user's recommended categories) is flattened to one value per
    recommendation, so the comparison is of how often each category is recommended.
    """
    reference = _prediction_series(reference_predictions, name)
    current = _prediction_series(current_predictions, name)
    return data_drift(
        reference.to_frame(),
        current.to_frame(),
        [name],
        max_rows=max_rows,
        seed=seed,
        drift_share_threshold=1.0,
        tests=tests,
    )


def save_report(
    snapshot: Snapshot, result: DriftResult, directory: Path, name: str = "drift"
) -> tuple[Path, Path]:
    """Write ``<name>.html`` (Evidently's report) and ``<name>.json`` (the result) in ``directory``.

    The monitoring DAG passes ``reports/<model>/<date>/``, with ``name="drift"`` for the features
    and e.g. ``"prediction_drift"`` for the model's outputs; the JSON is what alerts and the CLI
    read, the HTML is what a person opens.
    """
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / f"{name}.html"
    json_path = directory / f"{name}.json"
    # Snapshot.save_html writes only when given a str; a Path is silently ignored
    snapshot.save_html(str(html_path))
    payload = {**result.to_dict(), "report_html": str(html_path)}
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return html_path, json_path


# ---- helpers ----------------------------------------------------------------------------------


def _prepare_column(
    column: str, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[str, str | None, pd.Series | None, pd.Series | None]:
    """(kind "num"/"cat", skip reason or None, reference values, current values)."""
    ref, cur = reference[column], current[column]
    if _is_datetime(ref) or _is_datetime(cur):
        return "", "datetime column: not a feature to compare", None, None
    numeric = _is_numeric(ref) and _is_numeric(cur)
    if numeric:
        ref = (
            pd.to_numeric(ref, errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
        )
        cur = (
            pd.to_numeric(cur, errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
        )
    else:
        ref, cur = _as_category_strings(ref), _as_category_strings(cur)
    for name, values in (("reference", ref), ("current", cur)):
        if values.isna().all():
            return "", f"all values null in the {name}", None, None
    return (
        "num" if numeric else "cat",
        None,
        ref.reset_index(drop=True),
        cur.reset_index(drop=True),
    )


def _sample_note(
    column: str,
    reason: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
) -> str:
    """For a column null in the sample only: say so, it is rare values and not missing data."""
    if not reason.startswith("all values null"):
        return ""
    full = reference if reason.endswith("reference") else current
    present = int(full[column].notna().sum())
    if present == 0:
        return ""
    return f" sample ({present} of {len(full)} rows have a value)"


def _is_datetime(values: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values) or isinstance(values.dtype, pd.PeriodDtype)


def _is_numeric(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    if values.dtype == object:
        # numbers stored as objects (a mixed-dtype read); any string makes it a category
        present = values.dropna()
        return len(present) > 0 and all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present
        )
    return False


def _as_category_strings(values: pd.Series) -> pd.Series:
    """Strings for every present value (so 1, "1" and 1.0 are one category), nulls kept null."""
    present = values.notna()
    out = pd.Series(np.full(len(values), np.nan, dtype=object), index=values.index)
    out[present] = [_category_label(v) for v in values[present]]
    return out


def _category_label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


_UNIT = "__sampling_unit__"


def _with_units(frame: pd.DataFrame, columns: Sequence[str], groups: Sequence[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` and the sampling unit of each row (its ``groups`` key, or the
    row itself)."""
    missing = [g for g in groups if g not in frame.columns]
    if missing:
        raise DriftError(f"group column(s) {missing} are not in the frame: {list(frame.columns)}")
    if groups:
        units = pd.MultiIndex.from_frame(frame[list(groups)].astype(str)).factorize()[0]
    else:
        units = np.arange(len(frame))
    return frame[list(columns)].assign(**{_UNIT: units})


def _sample(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None or len(frame) <= max_rows:
        return frame
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[rows].reset_index(drop=True)


def _run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    drift_share: float,
    preset: bool,
    tests: DriftTests,
) -> Snapshot:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    columns = [*numerical, *categorical]
    ordered = [c for c in reference.columns if c in columns]
    metrics = (
        [DataDriftPreset(columns=ordered, drift_share=drift_share)]
        if preset
        else [
            ValueDrift(
                column=c,
                method=tests.for_column(c in numerical)[0],
                threshold=tests.for_column(c in numerical)[1],
            )
            for c in ordered
        ]
    )
    report = Report(metrics, include_tests=True)
    return report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def _screen(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    tests: DriftTests,
) -> list[ColumnDrift]:
    """Each column's drift verdict from Evidently's column drift test, without rendering."""
    from pipelines.monitoring.evidently_compat import column_drift

    results = []
    for column in [c for c in reference.columns if c in numerical or c in categorical]:
        numeric = column in numerical
        method, threshold = tests.for_column(numeric)
        verdict = column_drift(
            reference, current, column, numerical=numeric, method=method, threshold=threshold
        )
        results.append(
            ColumnDrift(
                column=column,
                method=method or verdict.method,
                score=verdict.score,
                threshold=verdict.threshold,
                drifted=verdict.drifted,
            )
        )
    return results


def _beyond_sampling_noise(
    columns: list[ColumnDrift],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    tests: DriftTests,
    seed: int,
    reference_units: np.ndarray,
    current_units: np.ndarray,
) -> list[ColumnDrift]:
    """Columns over their threshold keep ``drifted`` only when the score is beyond the noise of
    a day of the current's size: the largest of :data:`NOISE_DRAWS` scores of days drawn from
    the reference (as many units as the current has, with replacement, each unit's rows whole),
    by the same Evidently statistic."""
    from dataclasses import replace

    from pipelines.monitoring.evidently_compat import column_drift

    if not any(c.drifted for c in columns):
        return columns
    rng = np.random.default_rng(seed)
    order = np.argsort(reference_units, kind="stable")
    starts = np.searchsorted(reference_units[order], np.unique(reference_units))
    lengths = np.diff(np.append(starts, len(order)))
    size = len(np.unique(current_units))
    draws = [rng.integers(0, len(starts), size) for _ in range(NOISE_DRAWS)]
    rows = [np.concatenate([order[starts[u] : starts[u] + lengths[u]] for u in d]) for d in draws]
    judged = []
    for verdict in columns:
        if not verdict.drifted or verdict.column not in reference.columns:
            judged.append(verdict)
            continue
        column = verdict.column
        sample = reference[[column]]
        method, threshold = tests.for_column(column in numerical)
        scores = [
            column_drift(
                sample,
                sample.iloc[chosen],
                column,
                numerical=column in numerical,
                method=method,
                threshold=threshold,
            ).score
            for chosen in rows
            if sample[column].iloc[chosen].notna().any()
        ]
        if not scores:
            judged.append(verdict)
            continue
        floor = float(max(scores))
        judged.append(replace(verdict, noise_floor=floor, drifted=verdict.score > floor))
    return sorted(judged, key=lambda c: (not c.drifted, -c.severity, c.column))


def _column_results(snapshot: Snapshot) -> list[ColumnDrift]:
    """One ColumnDrift per ValueDrift metric: resolved method and threshold, score, test status."""
    summary = snapshot.dict()
    status = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in summary["tests"]
        if test["metric_config"]["params"].get("type", "").endswith(":ValueDrift")
    }
    results = []
    for metric in summary["metrics"]:
        config = metric.get("config", {})
        if not config.get("type", "").endswith(":ValueDrift"):
            continue
        results.append(
            ColumnDrift(
                column=config["column"],
                method=str(config.get("method")),
                score=float(metric["value"]),
                threshold=float(config.get("threshold")),
                drifted=status.get(metric["id"]) == "FAIL",
            )
        )
    return results


def _prediction_series(values: Sequence[Any] | pd.Series | np.ndarray, name: str) -> pd.Series:
    series = (
        pd.Series(values) if not isinstance(values, pd.Series) else values.reset_index(drop=True)
    )
    if series.dtype == object and series.map(_is_list_like).any():
        series = series.explode(ignore_index=True)
    return series.rename(name)


def _is_list_like(value: Any) -> bool:
    return isinstance(value, list | tuple | set | np.ndarray)


def _is_p_value(method: str) -> bool:
    lowered = method.lower()
    return any(hint in lowered for hint in _P_VALUE_HINTS)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
