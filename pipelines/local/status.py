"""One screen of the platform's state: DAG runs, models and their aliases, open alerts, quarantine.

What ``personalize status`` prints. Each part is read where it lives (Airflow's database, the MLflow
registry, ``alerts.jsonl``, the quarantine dir) and a part that cannot be read says why instead of
failing the whole screen.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pipelines.models.catalog import model_names
from pipelines.registry import CHALLENGER, CHAMPION, PREVIOUS

if TYPE_CHECKING:
    from pipelines.config import Settings

log = logging.getLogger(__name__)

KEY_METRICS = {
    "propensity": ("test_roc_auc", "test_brier"),
    "recommender": ("test_ndcg_at_10", "baseline_test_ndcg_at_10"),
    "segmentation": ("silhouette", "k"),
}
DAG_IDS = ("ingest", "features", "train", "monitor", "watchdog")


def model_status(settings: Settings, model: str) -> dict[str, Any]:
    """Champion, challenger and previous champion with key metrics, last gate, last alias move."""
    from pipelines import registry

    registry.reconcile_manual_moves(settings, model)
    rows = {row["version"]: row for row in registry.model_overview(settings, model, limit=200)}
    current = registry.aliases(settings, model)
    status: dict[str, Any] = {}
    for alias in (CHAMPION, CHALLENGER, PREVIOUS):
        version = current.get(alias)
        row = rows.get(version) if version is not None else None
        status[alias] = (
            None
            if row is None
            else {
                "version": version,
                "window": row["window"],
                "gate": row["gate"],
                "metrics": {m: row["metrics"].get(m) for m in KEY_METRICS[model]},
            }
        )
    gated = [row for row in rows.values() if row["gate"]]
    last_gate = max(gated, key=lambda r: r["version"]) if gated else None
    status["last_gate"] = (
        None
        if last_gate is None
        else {
            "version": last_gate["version"],
            "decision": last_gate["gate"],
            "reason": last_gate["gate_reason"],
        }
    )
    moves = registry.read_audit(settings, model)
    status["last_move"] = moves[-1] if moves else None
    status["versions"] = len(rows)
    return status


def quarantined_batches(settings: Settings) -> list[dict[str, Any]]:
    """Batches still in quarantine (the latest attempt per table and day), newest day first."""
    from pipelines.validation.ingest import REASON_FILE

    found = []
    root = settings.quarantine_dir
    if not root.exists():
        return []
    for reason_file in sorted(root.glob(f"*/date=*/*/{REASON_FILE}")):
        attempt = reason_file.parent
        table, day = attempt.parent.parent.name, attempt.parent.name.removeprefix("date=")
        try:
            reason = json.loads(reason_file.read_text())
        except (OSError, json.JSONDecodeError):
            reason = {}
        found.append(
            {
                "table": table,
                "day": day,
                "summary": reason.get("summary") or reason.get("reason") or "",
                "path": str(attempt),
                "next_step": reason.get("next_step", ""),
            }
        )
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in found:  # attempts sort by their timestamp name: the last one wins
        latest[(batch["table"], batch["day"])] = batch
    return sorted(latest.values(), key=lambda b: (b["day"], b["table"]), reverse=True)


def open_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Conditions that alerted and are not resolved, newest first; ``info`` events (a retrain
    started) are news, not something left open for the on-call."""
    from pipelines.alerts.acks import acks_file, alert_id, read_acks
    from pipelines.alerts.records import active_conditions

    acks = read_acks(acks_file(settings))
    conditions = active_conditions(settings.alerts_file).values()
    return sorted(
        (
            {"id": alert_id(record), **record, "ack": acks.get(alert_id(record))}
            for record in conditions
            if record.get("severity") != "info"
        ),
        key=lambda record: record.get("ts", ""),
        reverse=True,
    )


def last_dag_runs(settings: Settings) -> list[dict[str, Any]]:
    """The latest run of every DAG in Airflow's database (by data day, then run time)."""
    from pipelines.orchestration.airflow_env import configure_airflow

    configure_airflow(settings)
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    runs = []
    with create_session() as session:
        for dag_id in DAG_IDS:
            run = session.scalars(
                select(DagRun)
                .where(DagRun.dag_id == dag_id)
                .order_by(DagRun.logical_date.desc().nulls_last(), DagRun.id.desc())
                .limit(1)
            ).first()
            if run is None:
                runs.append({"dag_id": dag_id, "state": "never run"})
                continue
            conf = run.conf or {}
            runs.append(
                {
                    "dag_id": dag_id,
                    "day": conf.get("day")
                    or (
                        run.data_interval_start.date().isoformat()
                        if run.data_interval_start
                        else None
                    ),
                    "state": str(run.state),
                    "started": run.start_date.isoformat() if run.start_date else None,
                    "ended": run.end_date.isoformat() if run.end_date else None,
                }
            )
    return runs


def platform_status(settings: Settings, *, dag_runs: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {"home": str(settings.state_dir), "profile": settings.profile}
    parts = {
        "models": lambda: {m: model_status(settings, m) for m in model_names()},
        "alerts": lambda: open_alerts(settings),
        "quarantined": lambda: quarantined_batches(settings),
    }
    if dag_runs:
        parts = {"dag_runs": lambda: last_dag_runs(settings), **parts}
    for name, read in parts.items():
        try:
            status[name] = read()
        except Exception as error:  # one unreadable part must not hide the others
            log.warning("status: cannot read %s: %s", name, error)
            status[name] = {"error": f"{type(error).__name__}: {error}"}
    return status
