"""The gate outside Airflow: curated whole or quarantined whole, history-aware, idempotent."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines.alerts.records import read_alerts
from pipelines.cli import app
from pipelines.config import Settings
from pipelines.data.generator import PlantedChange, ShopSpec, generate
from pipelines.data.partitions import partition_dir
from pipelines.validation import ingest
from pipelines.validation.ingest import BatchQuarantined, ingest_table, release_quarantine

START = date(2026, 1, 5)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("shop")
    spec = ShopSpec(
        users=300,
        items=60,
        days=5,
        seed=4,
        start=START,
        bad=(PlantedChange("negative-price", START + timedelta(days=4)),),
    )
    generate(spec, Settings(home=home))
    return home


@pytest.fixture
def settings(shop: Path, tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    shutil.copytree(shop / "landing", home / "landing")
    return Settings(home=home)


def ingest_day(settings: Settings, day: date) -> dict[str, str]:
    return {t: ingest_table(settings, t, day).status for t in ("users", "items", "events")}


def digest(directory: Path) -> str:
    return hashlib.sha256((directory / "part-0.parquet").read_bytes()).hexdigest()


def test_a_clean_day_is_curated_with_its_lineage(settings: Settings) -> None:
    assert ingest_day(settings, START) == {"users": "loaded", "items": "loaded", "events": "loaded"}
    curated = partition_dir(settings.curated_dir, "events", START)
    landed = pq.read_table(partition_dir(settings.landing_dir, "events", START) / "part-0.parquet")
    assert pq.read_table(curated / "part-0.parquet").equals(landed)
    lineage = json.loads((curated / "_validation.json").read_text())
    assert lineage["suite"] == {"name": "events", "version": 2}
    assert lineage["gx_run_id"].startswith("events-2026-01-05@")
    assert lineage["statistics"]["unsuccessful_expectations"] == 0
    assert Path(lineage["data_docs_page"]).is_file()


def test_rerunning_a_day_leaves_curated_unchanged(settings: Settings) -> None:
    ingest_day(settings, START)
    ingest_day(settings, START + timedelta(days=1))
    before = digest(partition_dir(settings.curated_dir, "events", START))
    ingest_day(settings, START)
    assert digest(partition_dir(settings.curated_dir, "events", START)) == before


def ingest_in_new_process(settings: Settings, table: str, day: date) -> subprocess.Popen:
    """``ingest_table`` in a fresh interpreter, as a scheduler's task process runs it."""
    script = (
        "import sys; from datetime import date; from pipelines.config import Settings; "
        "from pipelines.validation.ingest import ingest_table; "
        "s = Settings(home=sys.argv[1]); "
        "print(ingest_table(s, sys.argv[2], date.fromisoformat(sys.argv[3])).status)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONALIZE_")}
    return subprocess.Popen(
        [sys.executable, "-c", script, str(settings.home), table, day.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def assert_loaded(process: subprocess.Popen) -> None:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == "loaded", out


def test_each_day_in_a_new_process_reuses_the_stored_gx_project(settings: Settings) -> None:
    """As under a real scheduler: every task is a fresh process that finds the GX project of
    the days before on disk (GX's re-save of a stored validation definition used to break it)."""
    for offset in (0, 1):
        assert_loaded(ingest_in_new_process(settings, "users", START + timedelta(days=offset)))


def test_tables_validated_at_once_in_new_processes(settings: Settings) -> None:
    """As the scheduler runs the ingest DAG: users and items validated in parallel processes, on
    a state dir whose GX project does not exist yet (each process writes it on its first run)."""
    running = [ingest_in_new_process(settings, table, START) for table in ("users", "items")]
    for process in running:
        assert_loaded(process)


def test_event_ids_already_loaded_on_another_day_fail(settings: Settings) -> None:
    ingest_day(settings, START)
    first = pq.read_table(partition_dir(settings.curated_dir, "events", START) / "part-0.parquet")
    day2 = (
        partition_dir(settings.landing_dir, "events", START + timedelta(days=1)) / "part-0.parquet"
    )
    batch = pq.read_table(day2)
    ids = batch["event_id"].to_pylist()
    ids[:3] = first["event_id"].to_pylist()[:3]
    pq.write_table(batch.set_column(0, "event_id", pa.array(ids)), day2)
    with pytest.raises(BatchQuarantined, match="event_id: not already loaded on another day"):
        ingest_day(settings, START + timedelta(days=1))


def test_too_many_unknown_users_fail_the_reference_check(settings: Settings) -> None:
    ingest_day(settings, START)
    day2 = (
        partition_dir(settings.landing_dir, "events", START + timedelta(days=1)) / "part-0.parquet"
    )
    batch = pq.read_table(day2)
    strangers = pc.binary_join_element_wise("ghost-", batch["user_id"], "")
    pq.write_table(batch.set_column(1, "user_id", strangers), day2)
    with pytest.raises(BatchQuarantined) as raised:
        ingest_day(settings, START + timedelta(days=1))
    failure = raised.value.outcome.failures[0]
    assert (failure.column, failure.check) == ("user_id", "references")


def test_volume_band_catches_a_short_batch_once_history_exists(settings: Settings) -> None:
    for offset in range(3):
        ingest_day(settings, START + timedelta(days=offset))
    day4 = (
        partition_dir(settings.landing_dir, "events", START + timedelta(days=3)) / "part-0.parquet"
    )
    pq.write_table(pq.read_table(day4).slice(0, 20), day4)
    with pytest.raises(BatchQuarantined, match="row count within the band"):
        ingest_day(settings, START + timedelta(days=3))


def test_a_bad_batch_is_quarantined_whole_with_reason_and_alert(settings: Settings) -> None:
    bad_day = START + timedelta(days=4)
    landed_rows = pq.read_table(partition_dir(settings.landing_dir, "events", bad_day)).num_rows
    for offset in range(4):
        ingest_day(settings, START + timedelta(days=offset))
    with pytest.raises(BatchQuarantined) as raised:
        ingest_day(settings, bad_day)
    assert "price: null or > 0" in str(raised.value)
    attempt = raised.value.quarantine_dir
    reason = json.loads((attempt / "reason.json").read_text())
    failure = reason["failures"][0]
    assert (failure["column"], failure["rule"]) == ("price", "null or > 0, at most 1,000,000")
    assert failure["unexpected_count"] > 0 and all(v < 0 for v in failure["sample"])
    assert Path(reason["data_docs_page"]).is_file()
    assert pq.read_table(attempt / "part-0.parquet").num_rows == landed_rows
    assert not partition_dir(settings.curated_dir, "events", bad_day).exists()
    assert not partition_dir(settings.landing_dir, "events", bad_day).exists()
    alert = read_alerts(settings.alerts_file)[-1]
    assert {"ts", "day", "type", "severity", "table", "summary", "details", "runbook"} <= set(alert)
    assert alert["type"] == "quarantine" and alert["day"] == bad_day.isoformat()
    assert "release-quarantine events" in alert["runbook"]


def test_a_fixed_batch_is_released_and_loaded(settings: Settings) -> None:
    bad_day = START + timedelta(days=4)
    with pytest.raises(BatchQuarantined) as raised:
        ingest_table(settings, "events", bad_day)
    attempt = raised.value.quarantine_dir
    broken = pq.read_table(attempt / "part-0.parquet")
    pq.write_table(
        broken.set_column(6, "price", pc.abs(broken["price"])), attempt / "part-0.parquet"
    )
    landing = release_quarantine(settings, "events", bad_day)
    assert (landing / "part-0.parquet").is_file()
    assert ingest_table(settings, "events", bad_day).status == "loaded"
    assert (attempt / "reason.json").is_file() and (attempt / "released.json").is_file()


def test_a_crash_between_staging_and_publishing_leaves_nothing_partial(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.data import partitions

    real = partitions.replace_dir

    def crash(staging: Path, target: Path) -> None:
        raise OSError("killed between temp write and rename")

    monkeypatch.setattr(partitions, "replace_dir", crash)
    with pytest.raises(OSError, match="killed"):
        ingest_table(settings, "users", START)
    events_root = settings.curated_dir / "users"
    assert not events_root.exists() or list(events_root.iterdir()) == []
    monkeypatch.setattr(partitions, "replace_dir", real)
    assert ingest_table(settings, "users", START).status == "loaded"


def test_a_missing_events_batch_says_what_to_do(settings: Settings) -> None:
    with pytest.raises(ingest.BatchMissing, match="has not delivered it"):
        ingest_table(settings, "events", START + timedelta(days=30))


# ---- personalize validate ----------------------------------------------------------------


def test_validate_prints_failures_first_and_exits_1(settings: Settings) -> None:
    bad = partition_dir(settings.landing_dir, "events", START + timedelta(days=4))
    result = CliRunner().invoke(app, ["--home", str(settings.home), "validate", str(bad)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL price: null or > 0")
    assert any(line.startswith("SKIP") and "no curated data" in line for line in lines)
    assert "Data Docs:" in result.output


def test_validate_a_clean_file_takes_the_day_from_its_rows(
    settings: Settings, tmp_path: Path
) -> None:
    source = partition_dir(settings.landing_dir, "events", START) / "part-0.parquet"
    copy = tmp_path / "export.parquet"
    shutil.copy(source, copy)
    result = CliRunner().invoke(
        app, ["--home", str(settings.home), "validate", str(copy), "--json"]
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["day"] == START.isoformat() and outcome["success"]
    assert not (settings.curated_dir / "events").exists(), "validate loads nothing"
