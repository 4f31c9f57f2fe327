"""A whole history in one command: the bulk path gives what the DAGs give day by day.

The same generated shop (one broken day) is landed in two state dirs. One goes through the real
DAGs day by day (`personalize load-history --through-airflow`, in a process of its own: Airflow
binds one home per process and the session's Airflow is shared with other tests); the other goes
through the bulk path in this process (no Airflow). Curated partitions, offline feature tables,
day outcomes and alerts must be the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.data.generator import PlantedChange, ShopSpec, generate
from pipelines.data.partitions import parquet_files, partition_days, partition_dir
from pipelines.features.schema import FEATURE_TABLES
from pipelines.orchestration.history import HistoryReport, run_history

BROKEN = date(2026, 3, 6)
SPEC = ShopSpec(
    users=300,
    items=60,
    days=10,
    seed=5,
    start=date(2026, 3, 2),
    bad=(PlantedChange("negative-price", BROKEN),),
)


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, dict, Settings, HistoryReport]:
    airflow_home = tmp_path_factory.mktemp("day-by-day")
    bulk = Settings(home=tmp_path_factory.mktemp("bulk"))
    generate(SPEC, Settings(home=airflow_home))
    generate(SPEC, bulk)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONALIZE_", "AIRFLOW"))}
    env |= {
        "PERSONALIZE_HOME": str(airflow_home),
        "PERSONALIZE_RETRY_DELAY_SECONDS": "1",
        "PERSONALIZE_SENSOR_TIMEOUT_SECONDS": "3",
        "PERSONALIZE_SENSOR_POKE_SECONDS": "0.5",
    }
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "personalize"),
            "load-history",
            f"--start={SPEC.start}",
            f"--end={SPEC.end}",
            "--through-airflow",
            "--no-train",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the broken day
    day_by_day = json.loads(done.stdout[done.stdout.index("{") :])
    report = run_history(bulk, SPEC.start, SPEC.end, train=False)
    return Settings(home=airflow_home), day_by_day, bulk, report


def read_partition(root: Path, table: str, day: date) -> pd.DataFrame:
    files = parquet_files(partition_dir(root, table, day))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_both_paths_tell_the_same_days(both: tuple) -> None:
    _, day_by_day, _, report = both
    bulk = report.to_dict()
    assert bulk["counts"] == day_by_day["counts"] == {"curated": 9, "quarantined": 1}
    assert [
        (d["day"], d["status"], d["tables"], d["rows"], d["features"]) for d in bulk["days"]
    ] == [
        (d["day"], d["status"], d["tables"], d["rows"], d["features"]) for d in day_by_day["days"]
    ]
    broken = next(d for d in report.days if d.day == BROKEN)
    assert broken.tables["events"] == "quarantined" and "price" in broken.problems[0]
    assert not report.ok and f"release-quarantine events {BROKEN}" in report.next_commands()[0]
    assert report.next_commands()[-1].startswith(f"personalize load-history --start {BROKEN}")


def test_curated_partitions_are_the_same(both: tuple) -> None:
    airflow, _, bulk, _ = both
    for table in ("users", "items", "events"):
        days = partition_days(airflow.curated_dir, table)
        assert days == partition_days(bulk.curated_dir, table)
        assert len(days) == SPEC.days - (table == "events")
        for day in days:
            pd.testing.assert_frame_equal(
                read_partition(bulk.curated_dir, table, day),
                read_partition(airflow.curated_dir, table, day),
            )


def test_offline_feature_tables_are_the_same(both: tuple) -> None:
    airflow, _, bulk, _ = both
    for table in ("user_activity", "item_popularity"):
        assert table in FEATURE_TABLES
        days = partition_days(airflow.feast_offline_dir, table)
        # no features for the quarantined day, as the ingest DAG announces no curated asset
        assert BROKEN not in days and len(days) == SPEC.days - 1
        assert partition_days(bulk.feast_offline_dir, table) == days
        for day in days:
            expected = read_partition(airflow.feast_offline_dir, table, day)
            assert len(expected) > 0
            pd.testing.assert_frame_equal(
                read_partition(bulk.feast_offline_dir, table, day),
                expected,
                check_exact=False,
                rtol=1e-9,
            )


def test_alerts_are_the_same(both: tuple) -> None:
    airflow, _, bulk, _ = both

    def alerts(settings: Settings) -> list[tuple]:
        lines = settings.alerts_file.read_text().splitlines()
        return sorted((a["type"], a.get("day"), a.get("table")) for a in map(json.loads, lines))

    assert alerts(bulk) == alerts(airflow)
    assert ("quarantine", BROKEN.isoformat(), "events") in alerts(bulk)
    assert ("missing_data", BROKEN.isoformat(), None) in alerts(bulk)


def test_the_online_store_holds_the_last_days_features(both: tuple) -> None:
    from pipelines.features.offline import read_offline_partition
    from pipelines.features.online import online_features

    _, _, bulk, report = both
    assert report.online_rows["user_activity"] == SPEC.users
    offline = read_offline_partition(bulk.feast_offline_dir, "user_activity", SPEC.end)
    users = sorted(offline["user_id"])[:5]
    online = online_features(bulk, users, "propensity_v1").set_index("user_id")
    expected = offline.set_index("user_id").loc[users]
    for column in ("views_30d", "purchases_30d", "spend_30d"):
        if column in online.columns:
            assert online[column].tolist() == pytest.approx(expected[column].tolist())


def test_a_closed_day_counts_as_done_and_any_other_outcome_as_failed() -> None:
    from pipelines.orchestration.history import DayOutcome

    day = date(2026, 3, 2)
    closed = DayOutcome(day, {"users": "absent", "items": "absent", "events": "closed"})
    assert (closed.status, closed.ok) == ("closed", True)
    curated = DayOutcome(day, {"users": "loaded", "items": "absent", "events": "loaded"})
    assert (curated.status, curated.ok) == ("curated", True)
    bad_users = DayOutcome(day, {"users": "quarantined", "items": "loaded", "events": "loaded"})
    assert (bad_users.status, bad_users.ok) == ("quarantined", False)
    missing = DayOutcome(day, {"events": "missing"})
    assert (missing.status, missing.ok) == ("missing", False)
    report = HistoryReport(day, date(2026, 3, 4), "bulk", days=[curated, bad_users, closed])
    assert report.counts == {"curated": 1, "quarantined": 1, "closed": 1}
    assert report.next_commands() == [
        f"personalize release-quarantine users {day}",
        f"personalize load-history --start {day} --end 2026-03-04"
        "  (after fixing, or landing, the batches above)",
    ]


def test_import_backfill_runs_the_whole_history_and_trains(tmp_path: Path) -> None:
    """`personalize import FILE ... --backfill`: a three-week wholesale export, closed on
    Saturdays, imported, run day by day through the bulk path and trained, in one command."""
    from pipelines.data.shop_styles import WHOLESALE_CALENDAR_SETTINGS, write_shop_export

    export = write_shop_export(
        "gift-wholesale", tmp_path / "export", customers=250, items=80, days=21, seed=3,
        start=date(2011, 3, 1),
    )  # fmt: skip
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONALIZE_", "AIRFLOW"))}
    # a shop this small has open days without a single valid line: "no events expected" is its rule
    calendar = {**WHOLESALE_CALENDAR_SETTINGS, "allow_empty_days": True}
    env |= Settings(home=home, **calendar).as_environment()
    env |= {"PERSONALIZE_TRAIN_TIME_BUDGET_SECONDS": "3"}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "personalize"),
            "import",
            *export.import_args(),
            "--backfill",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(done.stdout[done.stdout.index("{") :])
    imported, history = document["import"], document["history"]
    assert imported["rows_read"] == export.rows
    assert (history["first_day"], history["last_day"]) == (
        str(export.first_day), str(export.last_day),
    )  # fmt: skip
    saturdays = sum(1 for d in pd.date_range(export.first_day, export.last_day) if d.weekday() == 5)
    assert set(history["counts"]) <= {"curated", "closed"}, history["counts"]
    assert history["counts"]["closed"] >= saturdays and sum(history["counts"].values()) == 21
    assert history["train"]["state"] == "success", history["train"]
    champions = {m: a.get("champion") for m, a in history["train"]["aliases"].items()}
    assert champions["recommender"] and champions["segmentation"], history["train"]
    # a few dozen buying customers in three weeks: a propensity model may be no better than a
    # coin, and its gate says so rather than blessing it; the summary names the decision and why
    gates = history["train"]["gates"]
    assert champions["propensity"] or gates["propensity"]["gate"] == "rejected", gates
