"""The daily digest: the warnings of a day in one message, instead of a page each.

:func:`pipelines.alerts.delivery.deliver` records a ``warning`` alert with ``route="digest"``
and sends it nowhere. Once a day (the monitor DAG's last task) :func:`send_digest` gathers the
warnings recorded up to the end of that data day that no digest carried yet, sends them as one
``digest`` message on the webhook and by e-mail, and appends what it sent to
``<home>/digests.jsonl`` (so a re-run of the day sends nothing twice). No warnings: no message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pipelines.alerts.records import Alert, read_alerts, runbook_link
from pipelines.config import Settings

DIGEST_FILE = "digests.jsonl"


def digest_file(settings: Settings) -> Path:
    return settings.state_dir / DIGEST_FILE


def _identity(record: Mapping[str, Any]) -> str:
    return f"{record.get('key')}@{record.get('ts')}"


def read_digests(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pending_warnings(
    records: Iterable[Mapping[str, Any]], carried: set[str], until: datetime
) -> list[Mapping[str, Any]]:
    """Digest-routed records up to ``until`` (inclusive: monitoring stamps day D's findings
    with D's end) that no digest carried yet, oldest first."""
    pending = [
        r
        for r in records
        if r.get("route") == "digest"
        and _identity(r) not in carried
        and datetime.fromisoformat(str(r["ts"])) <= until
    ]
    return sorted(pending, key=lambda r: str(r["ts"]))


def digest_alert(warnings: list[Mapping[str, Any]], day: date) -> Alert:
    """One ``digest`` alert listing ``warnings`` (each with its headline and runbook)."""
    kinds: dict[str, int] = {}
    for w in warnings:
        kinds[str(w["type"])] = kinds.get(str(w["type"]), 0) + 1
    counted = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    return Alert(
        type="digest",
        severity="warning",
        summary=f"Daily digest for {day}: {len(warnings)} warning(s) ({counted})",
        day=day,
        details={
            "warnings": [
                {
                    "headline": f"[{str(w['severity']).upper()}] {w['summary']}",
                    "ts": w["ts"],
                    "key": w.get("key"),
                    "runbook_link": w.get("runbook_link") or runbook_link(str(w["type"])),
                }
                for w in warnings
            ]
        },
        runbook="personalize alerts --severity warning",
        ts=datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC),
        key=f"digest:platform:{day}",
    )


def send_digest(settings: Settings, day: date) -> dict[str, Any]:
    """Send the warnings recorded up to the end of ``day`` that no digest carried yet."""
    from pipelines.alerts.delivery import send_on_channels

    path = digest_file(settings)
    carried = {i for d in read_digests(path) for i in d.get("carried", [])}
    until = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    warnings = pending_warnings(read_alerts(settings.alerts_file), carried, until)
    if not warnings:
        return {"day": day.isoformat(), "warnings": 0, "sent": False}
    alert = digest_alert(warnings, day)
    report = send_on_channels(alert, settings, reason="daily digest", record_file=False)
    line = {
        "day": day.isoformat(),
        "ts": datetime.now(UTC).isoformat(),
        "summary": alert.summary,
        "carried": [_identity(w) for w in warnings],
        "delivery": {c.channel: c.ok for c in report.channels},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
    return {"day": day.isoformat(), "warnings": len(warnings), "sent": True}
