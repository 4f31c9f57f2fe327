"""Alerts for on-call: one JSON line each in ``<home>/alerts.jsonl``.

Every alert says in ``summary`` what happened in one readable line, how bad it is in
``severity``, and what to do next in ``runbook``. Later channels (webhook, email) send the same
record; the local file always gets it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]


@dataclass
class Alert:
    type: str  # quarantine | drift | performance | rollback | missing-data ...
    severity: Severity
    summary: str
    day: date | None = None
    table: str | None = None
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    runbook: str = ""
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["ts"] = self.ts.isoformat()
        record["day"] = self.day.isoformat() if self.day else None
        return record


def write_alert(alerts_file: Path, alert: Alert) -> dict[str, Any]:
    """Append ``alert`` to the local alert log and return the record written."""
    record = alert.to_dict()
    alerts_file.parent.mkdir(parents=True, exist_ok=True)
    with alerts_file.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, default=str) + "\n")
    return record


def read_alerts(alerts_file: Path) -> list[dict[str, Any]]:
    if not alerts_file.exists():
        return []
    return [json.loads(line) for line in alerts_file.read_text().splitlines() if line.strip()]
