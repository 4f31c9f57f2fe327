"""`personalize alerts`: the alert log in time order, filtered, and acknowledged."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from typer.testing import CliRunner

from pipelines.alerts.delivery import deliver
from pipelines.alerts.records import Alert
from pipelines.cli import app
from pipelines.config import Settings

runner = CliRunner()


def seeded(home: Path) -> Settings:
    settings = Settings(home=home)
    alerts = [
        Alert(type="drift", severity="critical", summary="Data drift on propensity v3",
              day=date(2026, 2, 10), model="propensity", actions=["retrain triggered"],
              report="/r/drift.html", ts=datetime(2026, 2, 11, 4, tzinfo=UTC)),
        Alert(type="quarantine", severity="warning", summary="users batch quarantined",
              day=date(2026, 2, 8), table="users", ts=datetime(2026, 2, 9, 1, tzinfo=UTC)),
        Alert(type="retrain", severity="info", summary="Retraining recommender",
              day=date(2026, 2, 12), model="recommender", ts=datetime(2026, 2, 12, 5, tzinfo=UTC)),
    ]  # fmt: skip
    for alert in alerts:
        deliver(alert, settings)
    return settings


def run(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), "alerts", *args], catch_exceptions=False)


def test_alerts_are_listed_oldest_first_with_what_was_done_and_filtered(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seeded(home)
    listed = run(home)
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if "[" in line]
    assert [line.split("[")[1].split("]")[0] for line in lines] == ["WARNING", "CRITICAL", "INFO"]
    assert "done: retrain triggered" in listed.output and "report: /r/drift.html" in listed.output
    urgent = json.loads(run(home, "--severity", "warning", "--json").output)
    assert [a["type"] for a in urgent] == ["quarantine", "drift"]
    assert [a["type"] for a in json.loads(run(home, "--model", "propensity", "--json").output)] == [
        "drift"
    ]
    late = json.loads(run(home, "--since", "2026-02-10", "--json").output)
    assert [a["type"] for a in late] == ["drift", "retrain"]
    assert run(home, "--severity", "loud").exit_code == 2


def test_an_acknowledged_alert_says_who_looked_and_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seeded(home)
    drift = json.loads(run(home, "--severity", "critical", "--json").output)[0]
    done = run(home, "ack", drift["id"][:5], "--note", "promo week, expected")
    assert done.exit_code == 0, done.output
    assert "acknowledged" in done.output
    listed = run(home, "--json")
    acked = {a["type"]: a["ack"] for a in json.loads(listed.output)}
    assert acked["drift"]["note"] == "promo week, expected" and acked["quarantine"] is None
    assert "acknowledged by" in run(home).output
    status = runner.invoke(app, ["--home", str(home), "status", "--no-dags"])
    assert "(acknowledged)" in status.output
    assert run(home, "ack", "ffffffff", "--note", "x").exit_code == 2
