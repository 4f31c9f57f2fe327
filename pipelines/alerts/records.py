"""Alerts for on-call: one JSON line each in ``<home>/alerts.jsonl``, and their text.

Every alert says in ``summary`` what happened in one readable line and how bad it is in
``severity``; :func:`render_text` puts both on the first line (the mail subject, the chat
headline), then the model and version, the drifted features with score and threshold (worst
first), the performance numbers, what the platform already did, the report and the section of
``docs/runbook.md`` for this type of alert. Channels (webhook, email: ``delivery.py``) send that
text; the local file always gets the record.

The file is also the alert state: :func:`should_send` (cool-down) and :func:`resolve` (a
"resolved" alert, once) read it, so there is no second store to keep in step. An alert's
condition is its :func:`condition_key` — ``drift:propensity``, ``quarantine:events:2026-01-05`` —
and the same condition does not alert twice inside the cool-down window unless it was resolved
in between.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

# what an alert calls them: a person at 3 a.m. reads the name of the statistic, not its id
METHOD_LABELS = {
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "psi": "PSI",
    "hellinger": "Hellinger distance",
}

Severity = Literal["info", "warning", "critical"]

ALERT_TYPES: tuple[str, ...] = (
    "quarantine",  # a landed batch failed validation and was held back
    "drift",  # a model's input features (or its predictions) drifted from its training sample
    "performance",  # a model's measured quality fell below its gate
    "rollback",  # the platform moved a model's champion alias back to an earlier version
    "retrain",  # the platform started (or finished) a retraining because of drift/performance
    "missing_data",  # an expected day's batch or feature partition is not there
    "task_failed",  # a DAG task raised after its retries (not a quarantine: that has its own)
    "missing_run",  # a daily DAG has not succeeded for a day by its deadline (the watchdog)
    "digest",  # the day's warnings in one message (pipelines/alerts/digest.py)
    "resolved",  # a condition that alerted before is no longer present
)
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
RUNBOOK_FILE = "docs/runbook.md"
# conditions that belong to one day (a batch, a partition) rather than to a model
_DAY_SCOPED = frozenset({"quarantine", "missing_data"})
# events rather than states: the same event again (a task retry) is the same condition
_VERSION_SCOPED = frozenset({"rollback", "retrain"})
MAX_FEATURES_IN_TEXT = 10


@dataclass
class Alert:
    type: str  # one of ALERT_TYPES ("missing-data" is read as "missing_data")
    severity: Severity
    summary: str  # what happened, one line, without the severity
    day: date | None = None
    table: str | None = None
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    runbook: str = ""  # the next step for this very alert (the general one is runbook_link)
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: str | None = None  # model version the alert is about
    actions: list[str] = field(default_factory=list)  # what the platform already did
    report: str | None = None  # path or URL of the HTML report
    key: str | None = None  # condition key; None = condition_key() derives it

    def __post_init__(self) -> None:
        self.type = self.type.replace("-", "_")
        if self.type not in ALERT_TYPES:
            raise ValueError(f"alert type {self.type!r} is not one of {', '.join(ALERT_TYPES)}")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"alert severity {self.severity!r} is not one of {', '.join(SEVERITIES)}"
            )
        if self.version is not None:
            self.version = str(self.version)
        if self.type == "resolved" and not self.key:
            raise ValueError("a 'resolved' alert needs the key of the condition it resolves")

    @property
    def runbook_link(self) -> str:
        return runbook_link(self.type)

    @property
    def headline(self) -> str:
        """The first line: how bad, then what happened."""
        return f"[{self.severity.upper()}] {self.summary}"

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["ts"] = self.ts.isoformat()
        record["day"] = self.day.isoformat() if self.day else None
        record["key"] = condition_key(self)
        record["runbook_link"] = self.runbook_link
        return record


def runbook_link(alert_type: str) -> str:
    """``docs/runbook.md#<type>``: the section on what to check and which command to run."""
    return f"{RUNBOOK_FILE}#{alert_type.replace('-', '_')}"


def condition_key(alert: Alert) -> str:
    """What makes two alerts "the same condition" for cool-down and resolution.

    Model conditions (drift, performance) are per model, whatever the version: drift that
    persists after a retrain is the same trouble. Batch conditions are per table and day.
    Rollbacks and retrains are events: one key per version, so a retried task does not repeat
    them while a second rollback does alert.
    """
    if alert.key:
        return alert.key
    subject = alert.model or alert.table or "platform"
    parts = [alert.type, subject]
    if alert.type in _DAY_SCOPED and alert.table and alert.model:
        parts.append(alert.table)
    if alert.type in _DAY_SCOPED and alert.day:
        parts.append(alert.day.isoformat())
    if alert.type in _VERSION_SCOPED:
        parts.append(alert.version or (alert.day.isoformat() if alert.day else "-"))
    return ":".join(parts)


# ---- the local log ----------------------------------------------------------------------------


Route = Literal["page", "digest", "record"]


def alert_route(severity: str, resolves: str | None = None) -> Route:
    """Who hears of an alert: ``critical`` pages on-call now (webhook, e-mail), ``warning`` waits
    for the daily digest, ``info`` is recorded and sent nowhere. A ``resolved`` alert goes where
    the alert it resolves went (``resolves``: that alert's severity): the page that woke someone
    is closed the same way."""
    level = resolves if resolves is not None else severity
    return {"critical": "page", "warning": "digest"}.get(level, "record")


def write_alert(alerts_file: Path, alert: Alert, **extra: Any) -> dict[str, Any]:
    """Append ``alert`` (plus ``extra`` fields, e.g. ``delivery``) to the log; the record."""
    record = {**alert.to_dict(), **extra}
    alerts_file.parent.mkdir(parents=True, exist_ok=True)
    with alerts_file.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, default=str) + "\n")
    return record


def read_alerts(alerts_file: Path) -> list[dict[str, Any]]:
    if not alerts_file.exists():
        return []
    return [json.loads(line) for line in alerts_file.read_text().splitlines() if line.strip()]


def latest_by_key(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The last record of each condition key (records without a key are from older writers)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if record.get("key"):
            latest[record["key"]] = record
    return latest


def active_conditions(alerts_file: Path) -> dict[str, Mapping[str, Any]]:
    """Conditions that alerted and were not resolved since: key -> their last alert record."""
    return {
        key: record
        for key, record in latest_by_key(read_alerts(alerts_file)).items()
        if record.get("type") != "resolved"
    }


def should_send(alerts_file: Path, key: str, now: datetime, cooldown: timedelta) -> bool:
    """False if ``key`` alerted less than ``cooldown`` before ``now`` and is not resolved since."""
    last = latest_by_key(read_alerts(alerts_file)).get(key)
    if last is None or last.get("type") == "resolved":
        return True
    return _aware(now) - _aware(datetime.fromisoformat(last["ts"])) >= cooldown


def resolve(
    alerts_file: Path, key: str, *, now: datetime | None = None, note: str = ""
) -> Alert | None:
    """A ``resolved`` alert for ``key`` if it is active, else None (so it is said only once).

    The caller delivers it (``delivery.deliver``), which records it and so clears the condition.
    """
    last = latest_by_key(read_alerts(alerts_file)).get(key)
    if last is None or last.get("type") == "resolved":
        return None
    now = _aware(now or datetime.now(UTC))
    since = _aware(datetime.fromisoformat(last["ts"]))
    day = date.fromisoformat(last["day"]) if last.get("day") else None
    return Alert(
        type="resolved",
        severity="info",
        summary=f"Resolved: {last['summary']}",
        day=day,
        table=last.get("table"),
        model=last.get("model"),
        version=last.get("version"),
        details={
            "resolves": last["type"],
            "first_line_was": f"[{str(last['severity']).upper()}] {last['summary']}",
            "alerted_at": last["ts"],
            "open_for_hours": round((now - since).total_seconds() / 3600, 1),
            **({"note": note} if note else {}),
        },
        ts=now,
        key=key,
    )


# ---- composing ----------------------------------------------------------------------------------


# ---- rendering --------------------------------------------------------------------------------


def render_text(alert: Alert | Mapping[str, Any]) -> str:
    """The alert as plain text; the first line is what happened and how bad."""
    record = alert.to_dict() if isinstance(alert, Alert) else dict(alert)
    details: dict[str, Any] = dict(record.get("details") or {})
    lines = [f"[{str(record['severity']).upper()}] {record['summary']}"]

    subject = []
    if record.get("model"):
        subject.append(
            f"Model: {record['model']}"
            + (f", version {record['version']}" if record.get("version") else "")
        )
    if record.get("table"):
        subject.append(f"Table: {record['table']}")
    if record.get("day"):
        subject.append(f"Day: {record['day']}")
    if subject:
        lines.append(" | ".join(subject))

    features = details.pop("drifted_features", None)
    if features:
        lines.append("Drifted features (score vs threshold, worst first):")
        for feature in features[:MAX_FEATURES_IN_TEXT]:
            lines.append(
                f"  - {feature['column']}: {_number(feature['score'])} "
                f"(threshold {_number(feature['threshold'])}, "
                f"{_method_label(feature.get('method'))})"
            )
        if len(features) > MAX_FEATURES_IN_TEXT:
            lines.append(f"  ... and {len(features) - MAX_FEATURES_IN_TEXT} more in the report")
    prediction = details.pop("prediction_drift", None)
    if prediction:
        scores = ", ".join(
            f"{c['column']} {_number(c['score'])} (threshold {_number(c['threshold'])})"
            for c in prediction.get("columns", [])
        )
        verdict = "drifted" if prediction.get("drifted") else "stable"
        lines.append(f"Predictions: {verdict}" + (f" — {scores}" if scores else ""))
    metrics = details.pop("metrics", None)
    if metrics:
        lines.append("Performance:")
        for m in metrics:
            line = f"  - {m.get('name', '?')}: {_number(m.get('value'))}"
            if m.get("baseline") is not None:
                line += f" (baseline {_number(m['baseline'])}"
                line += f", threshold {_number(m['threshold'])})" if "threshold" in m else ")"
            elif m.get("threshold") is not None:
                line += f" (threshold {_number(m['threshold'])})"
            if "passed" in m:
                line += " ok" if m["passed"] else " FAILED"
            lines.append(line)
    warnings = details.pop("warnings", None)
    if warnings:
        lines.append(f"Warnings ({len(warnings)}), oldest first:")
        for w in warnings:
            lines.append(f"  - {w['headline']} ({w['ts']}; {w['runbook_link']})")
    failures = details.pop("failures", None)
    if failures:
        lines.append("Failed checks:")
        for f in failures[:MAX_FEATURES_IN_TEXT]:
            column = f.get("column") or "(table)"
            lines.append(f"  - {column}: {f.get('rule')} — observed {f.get('observed')}")
    actions = record.get("actions") or []
    lines.append(
        "Already done: " + ("; ".join(actions) if actions else "nothing automatic — needs a human")
    )
    if record.get("report"):
        lines.append(f"Report: {record['report']}")
    if record.get("runbook"):
        lines.append(f"Next step: {record['runbook']}")
    lines.append(f"Runbook: {record.get('runbook_link') or runbook_link(str(record['type']))}")
    skipped = details.pop("skipped", None)
    if skipped:
        lines.append(f"Not compared ({len(skipped)}): " + ", ".join(sorted(skipped)))
    for name in ("sampled", "rows", "drift_share", "drift_share_threshold", "columns_compared"):
        details.pop(name, None)
    for name, value in details.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"{name}: {text if len(text) <= 300 else text[:297] + '...'}")
    lines.append(f"Alert key: {record.get('key') or '-'} at {record.get('ts')}")
    return "\n".join(lines)


def _aware(moment: datetime) -> datetime:
    """Naive times are UTC (the platform's clock); comparing naive with aware would raise."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _method_label(method: str | None) -> str:
    return METHOD_LABELS.get(method or "", method or "?")
