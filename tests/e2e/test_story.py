"""The quickstart's story, smaller, end to end: `personalize story` in a process of its own.

Its own process because Airflow binds one home per process and the story needs a registry of its
own (the DAG tests share theirs). Every turn is asserted from what the platform left behind -- the
summary, the alert and audit trails, the registry, the reports -- so the test fails if any turn
does not happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.local.story import TURNS, Scenario

# from a Sunday: the history ends on a Sunday and the six live days hold no weekly train
SCENARIO = Scenario(
    users=2000, items=300, history_days=22, live_days=6, seed=7, start=date(2026, 1, 4)
)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    home = tmp_path_factory.mktemp("story")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONALIZE_", "AIRFLOW"))}
    env |= {"PERSONALIZE_HOME": str(home), "PERSONALIZE_TRAIN_TIME_BUDGET_SECONDS": "3"}
    done = subprocess.run(
        [
            # the console script a newcomer runs (`python -m pipelines.cli` would register the
            # commands of pipelines.cli_* on another copy of the app)
            str(Path(sys.executable).parent / "personalize"),
            "story",
            f"--users={SCENARIO.users}",
            f"--items={SCENARIO.items}",
            f"--history-days={SCENARIO.history_days}",
            f"--live-days={SCENARIO.live_days}",
            f"--seed={SCENARIO.seed}",
            f"--start={SCENARIO.start}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert (home / "story" / "summary.json").exists(), output[-4000:]
    summary = json.loads((home / "story" / "summary.json").read_text())
    return home, summary, output


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_turn_of_the_story_happens(story: tuple[Path, dict, str]) -> None:
    _, summary, output = story
    assert summary["missing_turns"] == [], output[-4000:]
    assert set(summary["turns"]) == set(TURNS)
    assert "what happened" in output and "personalize up" in output


def test_the_broken_batch_is_quarantined_whole_and_alerted(story: tuple[Path, dict, str]) -> None:
    home, _, _ = story
    broken = SCENARIO.live(SCENARIO.broken_day)
    attempts = list((home / "quarantine" / "events" / f"date={broken}").iterdir())
    assert len(attempts) == 1
    reason = json.loads((attempts[0] / "reason.json").read_text())
    assert any(f["column"] == "price" for f in reason["failures"]), reason
    assert not (home / "curated" / "events" / f"date={broken}").exists()
    alerts = read_jsonl(home / "alerts.jsonl")
    assert [a["day"] for a in alerts if a["type"] == "quarantine"] == [str(broken)]
    # the gap is news once, not on every day monitoring still looks back over it
    assert [a["day"] for a in alerts if a["type"] == "missing_data"] == [str(broken)]


def test_drift_is_alerted_with_a_report_and_retrains(story: tuple[Path, dict, str]) -> None:
    home, summary, _ = story
    drift_day = SCENARIO.live(SCENARIO.drift_day)
    alerts = read_jsonl(home / "alerts.jsonl")
    drift = [a for a in alerts if a["type"] == "drift"]
    assert drift and min(date.fromisoformat(a["day"]) for a in drift) == drift_day
    assert all(Path(a["report"]).exists() for a in drift)
    retrains = [a for a in alerts if a["type"] == "retrain"]
    assert retrains and {a["day"] for a in retrains} >= {str(drift_day)}
    triggered = [d for d in summary["days"] if any("train" in r for r in d["runs"])]
    assert any(d["day"] == str(drift_day) for d in triggered), summary["days"]


def test_first_champions_then_gate_decisions_for_retrains(story: tuple[Path, dict, str]) -> None:
    _, summary, _ = story
    for model, facts in summary["models"].items():
        assert facts["aliases"].get("champion"), model
        first = facts["history"][0]
        assert (first["action"], first["from_version"]) == ("promote", None), model
    decisions = [
        (model, v["version"], v["gate"])
        for model, facts in summary["models"].items()
        for v in facts["versions"]
        if v["version"] > 1
    ]
    assert decisions and all(gate in ("blessed", "rejected") for _, _, gate in decisions)


def test_a_champion_forced_past_the_gate_is_rolled_back_live(
    story: tuple[Path, dict, str],
) -> None:
    home, summary, _ = story
    audit = [m for m in read_jsonl(home / "audit.jsonl") if m["model"] == "recommender"]
    manual = [m for m in audit if m["action"] == "manual"]
    rollback = [m for m in audit if m["action"] == "rollback"]
    assert len(manual) == 1 and len(rollback) == 1, audit
    forced = manual[0]["to_version"]
    assert (rollback[0]["from_version"], rollback[0]["to_version"]) == (
        forced,
        manual[0]["from_version"],
    )
    assert rollback[0]["actor"] == "monitor"
    versions = summary["models"]["recommender"]["versions"]
    baseline = next(v for v in versions if v["version"] == forced)
    assert baseline["gate"] == "rejected" and baseline["rolled_back"]
    (alert,) = [a for a in read_jsonl(home / "alerts.jsonl") if a["type"] == "rollback"]
    assert alert["day"] == str(SCENARIO.live(SCENARIO.hand_promotion_day + 1))
    assert "significantly worse than the previous champion" in alert["details"]["reason"]


def test_reports_data_docs_and_timings_are_left_behind(story: tuple[Path, dict, str]) -> None:
    home, summary, _ = story
    for model in ("propensity", "recommender", "segmentation"):
        days = sorted(p.name for p in (home / "reports" / model).iterdir())
        assert days and (home / "reports" / model / days[-1] / "summary.json").exists()
    assert Path(summary["paths"]["data docs"]).exists()
    timing = summary["timing"]
    assert timing["dag_runs"] >= 3 * (SCENARIO.history_days + SCENARIO.live_days) - 3
    assert 0 < timing["airflow_share"] < 1


def test_live_days_go_through_the_api_and_one_customers_answer_changes(
    story: tuple[Path, dict, str],
) -> None:
    """The live traffic turn: each live day's sample went through POST /v1/events (the day's
    serving log holds it), ingest counted each event once, and the followed customer's
    recommendations changed, shown in the output."""
    home, summary, output = story
    live = summary["live"]
    assert [d["day"] for d in live["days"]] == [
        str(SCENARIO.live(n)) for n in range(1, SCENARIO.live_days + 1)
    ]
    for entry in live["days"]:
        assert entry["accepted"] > 0
        log = home / "landing" / "serving_events" / f"date={entry['day']}" / "events.jsonl"
        assert len(log.read_text().splitlines()) == entry["accepted"], entry
        if entry["ingest"] == "curated":
            assert entry["counted_once"] and entry["posted_curated"] == entry["accepted"], entry
    broken = next(d for d in live["days"] if d["day"] == str(SCENARIO.live(SCENARIO.broken_day)))
    assert broken["ingest"] == "quarantined" and broken["refused"] > 0  # the API said no too
    assert live["changed"] and live["before"] != live["after"]
    assert f"customer {live['user']}" in output and "before" in output and "after" in output
