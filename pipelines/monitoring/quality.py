"""How trustworthy monitoring's pages are: false alarms on clean days, delay to a planted drift.

Monitoring judges a day by comparing the day's features with the champion's reference (whole
weeks before its training end), with the drift statistics and thresholds of gates.toml, then
:func:`~pipelines.gates.drift_action` decides and :func:`~pipelines.gates.drift_severity` says
how loud. :func:`judge_days` runs exactly those decisions over a shop's daily ``user_activity``
(no model needed: the drift decision reads only features), keeping the retrain cool-down as
monitoring does; :func:`alarm_figures` turns the days into what an on-call cares about: critical
and warning alerts per 30 clean days, and how many days after a planted change the first alert
came, naming which features.

``bench/monitor_quality.py`` runs it over seeds and drift kinds; the tests run it small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from pipelines.days import end_of_day
from pipelines.features.schema import TIMESTAMP
from pipelines.gates import MonitoringConfig, drift_action, drift_severity
from pipelines.monitoring.drift import comparable_columns, data_drift
from pipelines.monitoring.interactions import PROFILE_COLUMNS, PROFILE_UNIT, interaction_profiles

# the columns each model's monitoring compares (None: every user_activity feature)
MODEL_COLUMNS: dict[str, tuple[str, ...] | None] = {
    "propensity": None,
    "recommender": PROFILE_COLUMNS,
}
# the units a day's rows come in (drift.data_drift's groups): a customer's features are one row,
# a customer's interactions of a day many alike ones
MODEL_UNITS: dict[str, tuple[str, ...]] = {"propensity": (), "recommender": PROFILE_UNIT}
# which features each planted change moves (pipelines/data/generator.py): the one a detection
# should name
PLANTED_FEATURES: dict[str, tuple[str, ...]] = {
    "covariate": ("device_share_", "avg_view_price_", "avg_order_value_", "spend_"),
    "promo": ("views_", "carts_", "purchases_", "sessions_", "spend_", "avg_view_price_"),
    "concept": (
        "user_affinity",
        "top_category_",
        "carts_",
        "purchases_",
        "view_to_cart_rate_",
        "distinct_cat",
    ),
    "new-items": ("item_age", "top_category_", "distinct_categories_", "avg_view_price_"),
}


@dataclass(frozen=True)
class DayJudgement:
    day: date
    action: str  # drift_action's: none, alert, alert_and_retrain
    severity: str  # drift_severity's: info (nothing sent), warning (digest), critical (page)
    drift_share: float
    drifted: tuple[str, ...]
    reason: str


@dataclass
class AlarmFigures:
    clean_days: int
    critical_per_30_clean_days: float
    warning_per_30_clean_days: float
    detection_delay_days: int | None = None  # None: no alert from the onset on
    named: tuple[str, ...] = ()
    planted_feature_named: bool | None = None
    false_alarm_days: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean_days": self.clean_days,
            "critical_per_30_clean_days": round(self.critical_per_30_clean_days, 2),
            "warning_per_30_clean_days": round(self.warning_per_30_clean_days, 2),
            "detection_delay_days": self.detection_delay_days,
            "named": list(self.named),
            "planted_feature_named": self.planted_feature_named,
            "false_alarm_days": self.false_alarm_days,
        }


def daily_inputs(
    model: str,
    user_activity: pd.DataFrame,
    events: pd.DataFrame,
    items: pd.DataFrame,
    days: Sequence[date],
) -> pd.DataFrame:
    """What ``model``'s monitoring compares, one frame stamped by day: the customers' features
    (propensity), or each day's interactions profiled against their history (recommender)."""
    if model == "recommender":
        return interaction_profiles(events, items, days)
    return user_activity


def _days_of(user_activity: pd.DataFrame) -> pd.Series:
    # features of day D are stamped with D's end (D+1 00:00 UTC)
    return pd.to_datetime(user_activity[TIMESTAMP], utc=True).dt.date - timedelta(days=1)


def judge_days(
    user_activity: pd.DataFrame,
    *,
    first_day: date,
    reference_days: Sequence[date],
    days: Sequence[date],
    config: MonitoringConfig,
    model: str = "propensity",
    columns: Sequence[str] | None = None,
    seed: int = 0,
    retrain_weekly: bool = False,
    progress: Callable[[], None] | None = None,
) -> list[DayJudgement]:
    """Monitoring's drift decision for each of ``days`` against ``reference_days``.

    ``user_activity`` is the model's daily inputs (:func:`daily_inputs`), ``first_day`` the
    shop's first feature day (how full each window is). A retrain set off on one day holds the
    next ones for the cool-down, as the monitor DAG would. With ``retrain_weekly`` the champion
    is also refreshed as in production: by the weekly train (Mondays, up to the Sunday) and by
    each retrain drift sets off (up to that day), and the reference moves with it.
    """
    from pipelines.monitoring.reference import reference_days as reference_week

    stamps = _days_of(user_activity)
    features = [c for c in (columns or user_activity.columns) if c not in ("user_id", TIMESTAMP)]
    key_features = config.key_features.get(model, ())
    last_retrain: datetime | None = None
    reference_span = list(reference_days)
    reference = user_activity[stamps.isin(set(reference_span))]
    judged = []
    for day in days:
        if retrain_weekly and day.weekday() == 0 and reference_span[-1] < day - timedelta(days=1):
            reference_span = reference_week(first_day, day - timedelta(days=1))
            reference = user_activity[stamps.isin(set(reference_span))]
        kept, _ = comparable_columns(
            features,
            (min(reference_span) - first_day).days + 1,
            (day - first_day).days + 1,
        )
        current = user_activity[stamps == day]
        result, _ = data_drift(
            reference,
            current,
            kept,
            seed=seed,
            drift_share_threshold=config.drift_share_threshold,
            report_columns=1,
            tests=config.drift_tests,
            groups=MODEL_UNITS.get(model, ()),
        )
        drifted = tuple(c.column for c in result.drifted_columns)
        now = end_of_day(day)
        decision = drift_action(
            result.drift_share, drifted, key_features, config, last_retrain, now, model=model
        )
        if decision.action == "alert_and_retrain":
            last_retrain = now
            if retrain_weekly:
                reference_span = reference_week(first_day, day)
                reference = user_activity[stamps.isin(set(reference_span))]
        judged.append(
            DayJudgement(
                day=day,
                action=decision.action,
                severity=drift_severity(decision),
                drift_share=result.drift_share,
                drifted=drifted,
                reason=decision.reason,
            )
        )
        if progress is not None:
            progress()
    return judged


def alarm_figures(
    judged: Sequence[DayJudgement], onset: date | None = None, kind: str | None = None
) -> AlarmFigures:
    """False alarms per 30 clean days (the days before ``onset``, or all without one) and, with
    an ``onset``, the days from it to the first alert and whether the planted ``kind``'s
    features were among those named."""
    clean = [j for j in judged if onset is None or j.day < onset]
    per_30 = 30 / len(clean) if clean else 0.0
    figures = AlarmFigures(
        clean_days=len(clean),
        critical_per_30_clean_days=sum(j.severity == "critical" for j in clean) * per_30,
        warning_per_30_clean_days=sum(j.severity == "warning" for j in clean) * per_30,
        false_alarm_days=[j.day.isoformat() for j in clean if j.severity == "critical"],
    )
    if onset is None:
        return figures
    first = next((j for j in judged if j.day >= onset and j.action != "none"), None)
    if first is not None:
        figures.detection_delay_days = (first.day - onset).days
        figures.named = first.drifted
        if kind in PLANTED_FEATURES:
            figures.planted_feature_named = any(
                c.startswith(PLANTED_FEATURES[kind]) for c in first.drifted
            )
    return figures
