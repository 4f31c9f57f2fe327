"""The ingest DAG on real Airflow (``dag.test`` through the runner), real GX, real files.

Airflow is one per test process, so all tests share the session's state dir; each works on days of
its own inside one generated shop: clean days first, then one day per ``--bad`` kind.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.alerts.records import read_alerts
from pipelines.config import Settings
from pipelines.data.generator import BAD_KINDS, PlantedChange, ShopSpec, generate
from pipelines.data.partitions import partition_dir
from pipelines.monitoring.missing_runs import succeeded_days
from pipelines.orchestration import run_dag

START = date(2026, 3, 2)
CLEAN_DAYS = 3
BAD_DAY = {kind: START + timedelta(days=CLEAN_DAYS + i) for i, kind in enumerate(BAD_KINDS)}
LAST = START + timedelta(days=CLEAN_DAYS + len(BAD_KINDS) + 1)
RELEASE_DAY = LAST - timedelta(days=1)
CRASH_DAY = LAST


@pytest.fixture(scope="module")
def shop(airflow_settings: Settings) -> Settings:
    spec = ShopSpec(
        users=300,
        items=60,
        days=(LAST - START).days + 1,
        seed=21,
        start=START,
        bad=(
            *(PlantedChange(kind, day) for kind, day in BAD_DAY.items()),
            PlantedChange("negative-price", RELEASE_DAY),
        ),
    )
    generate(spec, airflow_settings)
    for offset in range(CLEAN_DAYS):
        [record] = run_dag(airflow_settings, "ingest", START + timedelta(days=offset))
        assert record.state == "success", record
    return airflow_settings


def landed_rows(settings: Settings, table: str, day: date) -> int:
    directory = partition_dir(settings.landing_dir, table, day)
    return sum(pq.ParquetFile(f).metadata.num_rows for f in directory.glob("*.parquet"))


def content_hash(directory: Path) -> str:
    return hashlib.sha256((directory / "part-0.parquet").read_bytes()).hexdigest()


def test_a_clean_day_is_curated_and_announced(shop: Settings) -> None:
    day = START + timedelta(days=1)
    curated = partition_dir(shop.curated_dir, "events", day)
    assert (curated / "part-0.parquet").is_file() and (curated / "_validation.json").is_file()
    [record] = run_dag(shop, "ingest", day)
    assert record.state == "success"
    assert record.asset_events == [("personalize://curated", record.asset_events[0][1])]
    extra = record.asset_events[0][1]
    assert extra["day"] == day.isoformat() and extra["rows"]["events"] > 0
    # the ledger the watchdog reads: this day's ingest has succeeded
    assert day in succeeded_days(shop)["ingest"]


def test_rerunning_a_clean_day_leaves_curated_unchanged(shop: Settings) -> None:
    day = START + timedelta(days=2)
    directory = partition_dir(shop.curated_dir, "events", day)
    rows, digest = pq.read_table(directory).num_rows, content_hash(directory)
    [record] = run_dag(shop, "ingest", day)
    assert record.state == "success"
    assert pq.read_table(directory).num_rows == rows
    assert content_hash(directory) == digest


EXPECTED_COLUMN_RULE = {
    "missing-column": ("item_id", "required column present"),
    "wrong-dtype": ("price", "type float (float64)"),
    "null-keys": ("user_id", "not null"),
    "negative-price": ("price", "null or > 0"),
    "unknown-event-type": ("event_type", "one of view, add_to_cart, purchase"),
    "duplicate-event-id": ("event_id", "unique within the batch"),
    "out-of-day-ts": ("event_ts", "inside the batch's day (UTC)"),
    "empty-file": (None, "row count within the band around the trailing median"),
    "corrupt-file": (None, "readable parquet file"),
}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_batch_is_quarantined_and_fails_the_run_at_validation(
    kind: str, shop: Settings
) -> None:
    day = BAD_DAY[kind]
    landed = landed_rows(shop, "events", day) if kind != "corrupt-file" else None
    [record] = run_dag(shop, "ingest", day)

    assert record.state == "failed"
    assert [t.task_id for t in record.failed_tasks] == ["validate_events"]
    column, rule = EXPECTED_COLUMN_RULE[kind]
    message = record.failed_tasks[0].message or ""
    assert rule in message and "quarantined" in message
    assert record.asset_events == [], "no curated asset event for a bad day"
    assert day not in succeeded_days(shop)["ingest"], "a quarantined day has not succeeded"
    assert not partition_dir(shop.curated_dir, "events", day).exists()
    assert not partition_dir(shop.landing_dir, "events", day).exists()

    [attempt] = sorted(partition_dir(shop.quarantine_dir, "events", day).iterdir())
    reason = json.loads((attempt / "reason.json").read_text())
    assert any(f["column"] == column and f["rule"].startswith(rule) for f in reason["failures"])
    if landed is not None:  # every row accounted for: curated (none) + quarantined = landed
        assert pq.read_table(attempt / "part-0.parquet").num_rows == landed
    else:
        assert (attempt / "part-0.parquet").stat().st_size > 0
    alerts = [a for a in read_alerts(shop.alerts_file) if a["day"] == day.isoformat()]
    assert alerts and alerts[-1]["type"] == "quarantine" and alerts[-1]["table"] == "events"
    # users and items of that day were fine and are curated
    assert partition_dir(shop.curated_dir, "users", day).is_dir()


def test_rerunning_a_quarantined_day_fails_fast_and_points_at_the_release(shop: Settings) -> None:
    day = BAD_DAY["negative-price"]
    if not partition_dir(shop.quarantine_dir, "events", day).exists():
        run_dag(shop, "ingest", day)
    [record] = run_dag(shop, "ingest", day)
    assert record.state == "failed"
    message = " ".join(t.message or "" for t in record.failed_tasks)
    assert "release-quarantine events" in message
    assert len(list(partition_dir(shop.quarantine_dir, "events", day).iterdir())) == 1


def test_release_quarantine_loads_the_fixed_batch(shop: Settings) -> None:
    import pyarrow.compute as pc

    from pipelines.validation.ingest import release_quarantine

    [record] = run_dag(shop, "ingest", RELEASE_DAY)
    assert record.state == "failed"
    [attempt] = partition_dir(shop.quarantine_dir, "events", RELEASE_DAY).iterdir()
    broken = pq.read_table(attempt / "part-0.parquet")
    fixed = broken.set_column(6, "price", pc.abs(broken["price"]))
    pq.write_table(fixed, attempt / "part-0.parquet")

    release_quarantine(shop, "events", RELEASE_DAY)
    [record] = run_dag(shop, "ingest", RELEASE_DAY)
    assert record.state == "success"
    curated = pq.read_table(partition_dir(shop.curated_dir, "events", RELEASE_DAY))
    assert curated.num_rows == fixed.num_rows
    assert (attempt / "reason.json").is_file() and (attempt / "released.json").is_file()


def test_a_crash_before_publishing_leaves_no_partial_partition_and_the_retry_completes(
    shop: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.data import partitions
    from pipelines.validation.ingest import ingest_table

    for offset in range((CRASH_DAY - START).days):  # everyone who signed up before is known
        for table in ("users", "items"):
            ingest_table(shop, table, START + timedelta(days=offset))
    real = partitions.replace_dir
    crashed: list[Path] = []

    def crash_once(staging: Path, target: Path) -> None:
        if "curated" in target.parts and "events" in target.parts and not crashed:
            crashed.append(target)
            assert any(staging.iterdir()), "the temp partition was written"
            raise OSError("killed between temp write and rename")
        real(staging, target)

    monkeypatch.setattr(partitions, "replace_dir", crash_once)
    [record] = run_dag(shop, "ingest", CRASH_DAY)
    assert crashed, "the load went through the patched rename"
    assert record.state == "success", "the task's retry completed the load"
    directory = partition_dir(shop.curated_dir, "events", CRASH_DAY)
    assert pq.read_table(directory).num_rows == landed_rows(shop, "events", CRASH_DAY)
    litter = [p.name for p in directory.parent.iterdir() if p.name.startswith(".")]
    assert litter == []


def test_a_missing_events_batch_fails_clearly_after_the_sensor_timeout(shop: Settings) -> None:
    day = LAST + timedelta(days=30)  # nothing landed for it
    [record] = run_dag(shop, "ingest", day)
    assert record.state == "failed"
    failed = {t.task_id: t.message or "" for t in record.failed_tasks}
    assert "wait_for_events" in failed
    assert "has not delivered it" in failed["validate_events"]
    assert record.asset_events == []
