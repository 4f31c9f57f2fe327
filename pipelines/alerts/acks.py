"""Reading alerts as on-call does: a short id per alert, filters, and acknowledgements.

An alert's id is the first 8 hex digits of the SHA-1 of its condition key and timestamp: stable
across reads, short enough to type (``personalize alerts ack 3f9c2a1b --note ...``). An
acknowledgement is a line of ``<home>/acks.jsonl`` (id, key, note, who, when); the alert log
itself is never rewritten.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipelines.config import Settings

ACKS_FILE = "acks.jsonl"
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


class UnknownAlert(LookupError):
    """No alert has the id given."""


def alert_id(record: Mapping[str, Any]) -> str:
    return hashlib.sha1(f"{record.get('key')}@{record.get('ts')}".encode()).hexdigest()[:8]


def acks_file(settings: Settings) -> Path:
    return settings.state_dir / ACKS_FILE


def read_acks(path: Path) -> dict[str, dict[str, Any]]:
    """Alert id -> its latest acknowledgement."""
    if not path.exists():
        return {}
    acks: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            ack = json.loads(line)
            acks[ack["id"]] = ack
    return acks


def select_alerts(
    records: Iterable[Mapping[str, Any]],
    *,
    since: date | None = None,
    severity: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts in time order (oldest first) with their ``id``; ``severity`` is a minimum
    (``warning`` lists warnings and criticals), ``since`` a first data day (else alert day)."""
    floor = SEVERITY_ORDER.get(severity or "info", 0)
    chosen = []
    for record in records:
        if SEVERITY_ORDER.get(str(record.get("severity")), 0) < floor:
            continue
        if model is not None and record.get("model") != model:
            continue
        when = record.get("day") or str(record.get("ts", ""))[:10]
        if since is not None and when and date.fromisoformat(when) < since:
            continue
        chosen.append({"id": alert_id(record), **record})
    return sorted(chosen, key=lambda r: str(r.get("ts", "")))


def acknowledge(settings: Settings, identifier: str, note: str) -> dict[str, Any]:
    """Record that someone looked at alert ``identifier`` (an id or a unique prefix of one)."""
    from pipelines.alerts.records import read_alerts

    matches = [r for r in read_alerts(settings.alerts_file) if alert_id(r).startswith(identifier)]
    ids = {alert_id(r) for r in matches}
    if not ids:
        raise UnknownAlert(f"no alert has the id {identifier!r}: see `personalize alerts`")
    if len(ids) > 1:
        raise UnknownAlert(f"{identifier!r} matches {len(ids)} alerts: type more of the id")
    record = matches[-1]
    ack = {
        "id": alert_id(record),
        "key": record.get("key"),
        "summary": record.get("summary"),
        "note": note,
        "by": getpass.getuser(),
        "ts": datetime.now(UTC).isoformat(),
    }
    path = acks_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(ack) + "\n")
    return ack
