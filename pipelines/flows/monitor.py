"""The daily watch over every champion: drift, live performance, and what to do about them.

``dags/monitor.py`` runs after the ``features`` asset and calls :func:`check_data_for_run`, one
:func:`monitor_model_for_run` per model and :func:`plan_retrain_for_run`. For each champion:

* **data drift** of its inputs — the reference sample stored with the champion's training run
  against the day's features (Evidently, test status), only over columns whose windows are filled
  alike on both sides;
* **prediction drift** — the champion's scores (propensity), segment shares (segmentation) or
  recommended categories (recommender) against the reference;
* **live performance** once labels have matured — propensity snapshots one label horizon
  (``propensity_horizon_days``) back, the recommender on the last days' interactions — for the
  champion and, in shadow on the same rows, the ``previous_champion``.

The gates (:mod:`pipelines.gates`) turn those numbers into actions: alert, retrain (the DAG
triggers ``train``), or roll back through :func:`pipelines.registry.rollback`. Every alert carries
``ts`` = the end of the monitored day, so cool-downs are measured in data time and replaying a
range of days gives the same alerts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.models.catalog import UnknownModel, spec_of
from pipelines.registry import CHAMPION, PREVIOUS

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.gates import MonitorDecision, MonitoringConfig
    from pipelines.monitoring.drift import DriftResult

log = logging.getLogger(__name__)

GAP_LOOKBACK_DAYS = 7  # missing feature days looked for behind the monitored day


class MonitoringError(Exception):
    """Monitoring that cannot judge a day, with what to do about it."""


# ---- DAG task bodies --------------------------------------------------------------------------


def check_data_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    return check_data(get_settings(), day_from_context(context))


def monitor_model_for_run(model: str, context: Mapping[str, Any]) -> dict[str, Any]:
    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    return monitor_model(get_settings(), model, day_from_context(context))


def plan_retrain_for_run(
    verdicts: list[Mapping[str, Any]], context: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The train run to trigger (conf), or None when no model asked for one."""
    from pipelines.days import day_from_context

    models = sorted({v["model"] for v in verdicts if v and v.get("retrain")})
    if not models:
        return None
    return {"day": day_from_context(context).isoformat(), "models": ",".join(models)}


# ---- data presence ----------------------------------------------------------------------------


def check_data(settings: Settings, day: date) -> dict[str, Any]:
    """Missing or late data is its own alert, never a silent pass.

    The day's features must exist (else the run fails after alerting); feature days missing in
    the week before — a quarantined batch, a day that never landed — are alerted once each.
    """
    from pipelines.data.partitions import partition_days

    feature_days = set(partition_days(settings.feast_offline_dir, "user_activity"))
    if not feature_days:
        raise MonitoringError("no features at all yet: nothing to monitor")
    first = min(feature_days)
    lookback = [day - timedelta(days=back) for back in range(GAP_LOOKBACK_DAYS, -1, -1)]
    missing = [d for d in lookback if d >= first and d not in feature_days]
    from pipelines.alerts.records import active_conditions

    alerted = active_conditions(settings.alerts_file)
    for gap in missing:
        alert = _missing_data_alert(settings, gap, day)
        if alert.key not in alerted:  # a gap is news once, not every day of the lookback
            _deliver(settings, alert)
    if day in missing:
        raise MonitoringError(
            f"no features for {day}: ingest or features did not complete for that day "
            f"(see `personalize status`); monitoring cannot judge it"
        )
    return {"day": day.isoformat(), "missing_days": [d.isoformat() for d in missing]}


def _missing_data_alert(settings: Settings, gap: date, seen_on: date) -> Any:
    from pipelines.alerts.records import Alert

    quarantined = sorted(p.parent.name for p in settings.quarantine_dir.glob(f"*/date={gap}/*"))
    why = "its batch is in quarantine" if quarantined else "no batch was loaded for it"
    return Alert(
        type="missing_data",
        severity="critical",
        summary=f"No features for {gap}: {why}; models are judged without that day",
        day=gap,
        details={"noticed_on": seen_on.isoformat(), "quarantine": quarantined},
        runbook=f"personalize status; personalize run ingest --date {gap} --follow",
        ts=_data_time(seen_on),
        key=f"missing_data:{gap.isoformat()}",
    )


# ---- one model, one day -----------------------------------------------------------------------


def monitor_model(settings: Settings, model: str, day: date) -> dict[str, Any]:
    """Judge ``model``'s champion on ``day``; alert, roll back, and say whether to retrain."""
    from pipelines import registry
    from pipelines.gates import load_monitoring_config

    try:
        spec_of(model)
    except UnknownModel as unknown:
        raise MonitoringError(str(unknown)) from None
    registry.reconcile_manual_moves(settings, model)
    current = registry.aliases(settings, model)
    champion = current.get(CHAMPION)
    if champion is None:
        return {"model": model, "day": day.isoformat(), "verdict": "no champion yet"}
    from pipelines.validation.ingest import closed_day_reason

    closed = closed_day_reason(settings, day)
    if closed is not None:
        # a day without trading says nothing about drift or quality: its 1-day windows are empty
        # by design, and judging them would page someone every Saturday
        return {"model": model, "version": champion, "day": day.isoformat(),
                "verdict": f"not judged: {closed}", "retrain": False, "actions": []}  # fmt: skip
    config = load_monitoring_config(settings.gates_file)
    version = registry.mlflow_client(settings).get_model_version(model, str(champion))
    trained_until = date.fromisoformat(version.tags.get("data.window_end", day.isoformat()))
    directory = settings.reports_dir / model / day.isoformat()
    verdict: dict[str, Any] = {
        "model": model,
        "version": champion,
        "day": day.isoformat(),
        "reports": {},
        "actions": [],
        "retrain": False,
    }

    drift, prediction, html = _drift(settings, model, champion, day, trained_until, directory)
    if drift is not None:
        verdict["drift"] = drift.to_dict() | {"summary": drift.summary()}
        verdict["reports"]["drift"] = str(html)
    if prediction is not None:
        verdict["prediction_drift"] = prediction.to_dict() | {"summary": prediction.summary()}

    performance = _live_performance(settings, model, day, trained_until, current, config)
    if performance is not None:
        verdict["performance"] = performance.to_dict()
        _act_on_performance(settings, model, champion, day, performance, html, verdict)

    if drift is not None:
        act_on_drift(settings, model, champion, day, drift, prediction, html, config, verdict)

    verdict["verdict"] = _headline(verdict)
    directory.mkdir(parents=True, exist_ok=True)
    summary_path = directory / "summary.json"
    summary_path.write_text(json.dumps(verdict, indent=2, default=str) + "\n")
    _log_to_mlflow(settings, model, champion, day, directory, verdict)
    return {k: verdict[k] for k in ("model", "version", "day", "verdict", "retrain", "actions")}


def _headline(verdict: Mapping[str, Any]) -> str:
    parts = []
    if verdict.get("drift"):
        parts.append(verdict["drift"]["summary"].split(":")[0])
    if verdict.get("performance"):
        parts.append(f"performance: {verdict['performance']['action']}")
    if verdict["actions"]:
        parts.append("; ".join(verdict["actions"]))
    return " | ".join(parts) or "nothing to judge yet"


# ---- drift ------------------------------------------------------------------------------------


def _drift(
    settings: Settings,
    model: str,
    version: int,
    day: date,
    trained_until: date,
    directory: Path,
) -> tuple[DriftResult | None, DriftResult | None, Path | None]:
    """Data and prediction drift against the champion's reference sample, saved as reports."""
    from pipelines import registry
    from pipelines.gates import load_monitoring_config
    from pipelines.models.runs import first_feature_day
    from pipelines.monitoring.drift import (
        REPORT_COLUMNS,
        comparable_columns,
        data_drift,
        save_report,
    )
    from pipelines.monitoring.reference import reference_days

    try:
        reference = registry.load_reference_sample(settings, model, CHAMPION)
    except registry.RegistryError as problem:
        log.warning("%s: no drift check: %s", model, problem)
        return None, None, None
    spec = spec_of(model)
    champion = registry.load_version(settings, model, version)
    current = spec.monitor_inputs(settings, champion, day) if spec.monitor_inputs else None
    if current is None:
        return None, None, None
    if spec.drift is not None:
        return spec.drift(settings, reference, current, day, trained_until, directory)
    prediction_column = spec.prediction_column or ""
    first = first_feature_day(settings)
    inputs = spec.monitor_columns or [c for c in reference.columns if c in current.columns]
    columns = [c for c in inputs if c in current.columns and c != prediction_column]
    columns = [c for c in columns if c not in ("user_id", "event_timestamp", "rank", "item_id")]
    # the reference's shortest history is that of its first day
    kept, skipped = comparable_columns(
        columns,
        (reference_days(first, trained_until)[0] - first).days + 1,
        (day - first).days + 1,
    )
    config = load_monitoring_config(settings.gates_file)
    threshold = config.drift_share_threshold
    if not kept:
        return None, None, None
    has_prediction = prediction_column in reference.columns and prediction_column in current.columns
    compared = kept + ([prediction_column] if has_prediction else [])
    if has_prediction and not _is_numeric(current[prediction_column]):
        # labels (segment ids) are compared by how often each is given, on both sides alike
        reference = reference.assign(
            **{prediction_column: reference[prediction_column].astype(str)}
        )
        current = current.assign(**{prediction_column: current[prediction_column].astype(str)})
    # one Evidently run (and one HTML page) for the inputs and the output: the plots dominate
    # a report's time, and an engineer reads both on the same page
    both, snapshot = data_drift(
        reference,
        current,
        compared,
        seed=settings.train_seed,
        drift_share_threshold=threshold,
        report_columns=REPORT_COLUMNS,
        always_report=[*config.key_features.get(model, ()), prediction_column],
        tests=config.drift_tests,
    )
    drift = _subset(both, [c for c in both.columns if c.column != prediction_column], threshold)
    drift.skipped.update(skipped)
    prediction = None
    if has_prediction:
        prediction = _subset(both, [c for c in both.columns if c.column == prediction_column], 1.0)
    html, _ = save_report(snapshot, drift, directory, "drift")
    if prediction is not None:
        (directory / "prediction_drift.json").write_text(
            json.dumps({**prediction.to_dict(), "report_html": str(html)}, indent=2, default=str)
        )
    return drift, prediction, html


def _is_numeric(values: pd.Series) -> bool:
    from pandas.api.types import is_numeric_dtype

    return is_numeric_dtype(values)


def _subset(result: DriftResult, columns: list[Any], threshold: float) -> DriftResult:
    """The verdict over some of a report's columns, with its own share and dataset verdict."""
    from dataclasses import replace

    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return replace(
        result,
        columns=columns,
        drift_share=share,
        drift_share_threshold=threshold,
        dataset_drifted=bool(columns) and share >= threshold,
        skipped=dict(result.skipped),
    )


def act_on_drift(
    settings: Settings,
    model: str,
    version: int,
    day: date,
    drift: DriftResult,
    prediction: DriftResult | None,
    html: Path | None,
    config: MonitoringConfig,
    verdict: dict[str, Any],
) -> None:
    """Carry out the drift decision for one model and day: alert, retrain, or resolve.

    ``verdict`` (the task's record) gets the decision, ``retrain`` and the actions taken.
    Below the threshold nothing is alerted (the findings are in the report); over it, a retrain
    pages at once, and the same drift while the retrain cools down waits for the digest.
    """
    from pipelines.alerts.records import Alert, condition_key, resolve
    from pipelines.gates import drift_action, drift_severity
    from pipelines.monitoring.drift_alerts import drift_alert

    decision = drift_action(
        drift.drift_share,
        [c.column for c in drift.drifted_columns],
        config.key_features.get(model, ()),
        config,
        _last_retrain(settings, model),
        _data_time(day),
        model=model,
    )
    verdict["drift_decision"] = decision.to_dict()
    alert = drift_alert(
        drift, model=model, version=version, day=day, report=html, prediction=prediction
    )
    alert.ts = _data_time(day)
    if decision.action == "none":
        resolved = resolve(settings.alerts_file, condition_key(alert), now=_data_time(day))
        if resolved is not None:
            _deliver(settings, resolved)
            verdict["actions"].append("drift resolved")
        return
    if decision.action == "alert_and_retrain":
        verdict["retrain"] = True
        action = f"retrain triggered (train for {day}, {model})"
        alert.actions.append(action)
        verdict["actions"].append(action)
    alert.details["decision"] = decision.reason
    alert.severity = drift_severity(decision)
    _deliver(settings, alert)
    if verdict["retrain"]:
        _deliver(
            settings,
            Alert(
                type="retrain",
                severity="info",
                summary=f"Retraining {model} (champion v{version}) after drift on {day}",
                day=day,
                model=model,
                version=str(version),
                details={"reason": decision.reason},
                actions=[f"train triggered for {day}"],
                report=None if html is None else str(html),
                runbook=f"personalize models {model}; personalize history {model}",
                ts=_data_time(day),
            ),
        )


def _last_retrain(settings: Settings, model: str) -> datetime | None:
    from pipelines.alerts.records import read_alerts

    stamps = [
        datetime.fromisoformat(r["ts"])
        for r in read_alerts(settings.alerts_file)
        if r.get("type") == "retrain" and r.get("model") == model
    ]
    return max(stamps) if stamps else None


# ---- live performance -------------------------------------------------------------------------


def _live_performance(
    settings: Settings,
    model: str,
    day: date,
    trained_until: date,
    current: Mapping[str, int],
    config: MonitoringConfig,
) -> MonitorDecision | None:
    """Champion vs previous champion (shadow) on the same matured rows, judged by the gate."""
    from pipelines import registry
    from pipelines.gates import performance_action

    floor = config.floors.get(model)
    if floor is None:
        return None
    spec = spec_of(model)
    if spec.live_evidence is None:
        return None
    champion = registry.load_version(settings, model, current[CHAMPION])
    evidence = spec.live_evidence(settings, day, trained_until, champion)
    if evidence is None:
        return None
    champion_live = evidence(champion)
    previous_live = None
    if current.get(PREVIOUS) is not None:
        previous_live = evidence(registry.load_version(settings, model, current[PREVIOUS]))
    return performance_action(
        champion_live, previous_live, floor, bootstrap=config.bootstrap, model=model
    )


def _act_on_performance(
    settings: Settings,
    model: str,
    champion: int,
    day: date,
    decision: MonitorDecision,
    html: Path | None,
    verdict: dict[str, Any],
) -> None:
    from pipelines import registry
    from pipelines.alerts.records import Alert

    numbers = {k: v for k, v in decision.to_dict().items() if k not in ("action", "reason")}
    if decision.action == "none":
        return
    if decision.action == "rollback":
        move = registry.rollback(settings, model, reason=decision.reason, actor="monitor")
        action = f"rolled back from v{move.from_version} to v{move.to_version}"
        verdict["actions"].append(action)
        _deliver(
            settings,
            Alert(
                type="rollback",
                severity="critical",
                summary=f"{model} rolled back from v{move.from_version} to v{move.to_version}: "
                f"live performance of v{champion} {decision.reason.split(': ', 1)[-1]}",
                day=day,
                model=model,
                version=str(champion),
                details={"performance": numbers, "reason": decision.reason},
                actions=[action],
                report=None if html is None else str(html),
                runbook=f"personalize history {model}; personalize models {model}",
                ts=_data_time(day),
            ),
        )
        return
    severity = "critical" if decision.action == "alert_no_previous" else "warning"
    _deliver(
        settings,
        Alert(
            type="performance",
            severity=severity,
            summary=f"{model} v{champion}: {decision.reason.split(': ', 1)[-1]}",
            day=day,
            model=model,
            version=str(champion),
            details={"performance": numbers, "reason": decision.reason},
            actions=["nothing moved: no previous champion to roll back to"]
            if decision.action == "alert_no_previous"
            else [],
            report=None if html is None else str(html),
            runbook=f"personalize models {model}; personalize run train --date {day}",
            ts=_data_time(day),
        ),
    )


# ---- edges ------------------------------------------------------------------------------------


def _data_time(day: date) -> datetime:
    from pipelines.days import end_of_day

    return end_of_day(day)


def _deliver(settings: Settings, alert: Any) -> None:
    from pipelines.alerts.delivery import deliver

    report = deliver(alert, settings)
    if not report.sent:
        log.info("alert not sent: %s", report.reason)


def _log_to_mlflow(
    settings: Settings,
    model: str,
    version: int,
    day: date,
    directory: Path,
    verdict: Mapping[str, Any],
) -> None:
    """The day's reports as a run of the monitoring experiment, tagged with model and version."""
    import mlflow

    from pipelines.registry import MONITORING_EXPERIMENT, experiment_id

    experiment = experiment_id(settings, MONITORING_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment, run_name=f"{model}-{day}"):
        mlflow.set_tags(
            {
                "model": model,
                "version": str(version),
                "day": day.isoformat(),
                "verdict": str(verdict["verdict"])[:5000],
            }
        )
        metrics = {}
        if verdict.get("drift"):
            metrics["drift_share"] = verdict["drift"]["drift_share"]
        performance = verdict.get("performance") or {}
        for key in ("value", "baseline", "delta"):
            if isinstance(performance.get(key), int | float):
                metrics[f"live_{key}"] = performance[key]
        if metrics:
            mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(directory), artifact_path="reports")


def list_reports(settings: Settings, model: str | None = None) -> list[dict[str, Any]]:
    """Every monitoring summary on disk, newest day first: what ``personalize reports`` prints."""
    found = []
    for summary in settings.reports_dir.glob("*/*/summary.json"):
        if model and summary.parent.parent.name != model:
            continue
        try:
            record = json.loads(summary.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.append(
            {
                "model": record.get("model"),
                "day": record.get("day"),
                "version": record.get("version"),
                "verdict": record.get("verdict"),
                "actions": record.get("actions", []),
                "report": (record.get("reports") or {}).get("drift"),
                "summary": str(summary),
            }
        )
    return sorted(found, key=lambda r: (r["day"] or "", r["model"] or ""), reverse=True)


def day_report(settings: Settings, day: date) -> list[str]:
    """After a monitor run: each model's verdict for the day and its report."""
    return [
        f"{r['model']} v{r['version']}: {r['verdict']}"
        + (f" — {r['report']}" if r["report"] else "")
        for r in list_reports(settings)
        if r["day"] == day.isoformat()
    ]


def send_digest_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """Monitor DAG task body: the digest of the run's data day."""
    from pipelines.alerts.digest import send_digest
    from pipelines.config import get_settings
    from pipelines.days import day_from_context

    return send_digest(get_settings(), day_from_context(context))
