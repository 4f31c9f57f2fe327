"""A history's validation session: less work across days, the same verdicts as day by day."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data.generator import PlantedChange, ShopSpec, generate
from pipelines.data.partitions import parquet_files, partition_dir, write_partition
from pipelines.validation.batch import CuratedCache, History, curated_history
from pipelines.validation.ingest import BatchQuarantined, ingest_table
from pipelines.validation.session import validation_session

START = date(2026, 2, 2)
DAYS = 5
BAD = START + timedelta(days=3)
EMPTY_ITEMS = (START + timedelta(days=1), START + timedelta(days=2))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("shop")
    spec = ShopSpec(
        users=200,
        items=40,
        days=DAYS,
        seed=7,
        start=START,
        bad=(PlantedChange("negative-price", BAD),),
    )
    generate(spec, Settings(home=home))
    # two days on which no item was launched: an empty items batch (the schema, no rows)
    first = pq.read_table(partition_dir(home / "landing", "items", START))
    for day in EMPTY_ITEMS:
        shutil.rmtree(partition_dir(home / "landing", "items", day), ignore_errors=True)
        write_partition(first.slice(0, 0), home / "landing", "items", day)
    return home


def landed_copy(shop: Path, home: Path) -> Settings:
    shutil.copytree(shop / "landing", home / "landing")
    return Settings(home=home)


def run_days(settings: Settings, session: object = None) -> dict[tuple[str, date], object]:
    outcomes: dict[tuple[str, date], object] = {}
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        for table in ("users", "items", "events"):
            try:
                outcomes[(table, day)] = ingest_table(settings, table, day, session).status
            except BatchQuarantined as bad:
                outcomes[(table, day)] = bad.outcome
    return outcomes


def lineage(settings: Settings, table: str, day: date) -> dict:
    return json.loads(
        (partition_dir(settings.curated_dir, table, day) / "_validation.json").read_text()
    )


def digest(settings: Settings, table: str, day: date) -> str:
    return hashlib.sha256(
        (partition_dir(settings.curated_dir, table, day) / "part-0.parquet").read_bytes()
    ).hexdigest()


def test_a_session_curates_and_quarantines_what_day_by_day_does(shop: Path, tmp_path: Path) -> None:
    alone = landed_copy(shop, tmp_path / "alone")
    bulk = landed_copy(shop, tmp_path / "bulk")
    expected = run_days(alone)
    with validation_session(bulk) as session:
        got = run_days(bulk, session)
        # a clean batch's page is named at once and rendered with the others at the end
        page = Path(lineage(bulk, "events", START)["data_docs_page"])
        assert not page.exists() and session.docs.pending
        # a quarantined batch's page is rendered at once: its alert points to it
        assert Path(got[("events", BAD)].data_docs_page).is_file()
    assert page.is_file() and not session.docs.pending

    quarantined = got.pop(("events", BAD))
    assert expected.pop(("events", BAD)).to_dict()["failures"] == quarantined.to_dict()["failures"]
    assert got == expected and set(got.values()) == {"loaded"}
    for table, day in got:
        assert digest(bulk, table, day) == digest(alone, table, day)
        record = lineage(bulk, table, day)
        assert Path(record["data_docs_page"]).is_file()
        assert record["statistics"] == lineage(alone, table, day)["statistics"]


def test_an_empty_batch_judged_alike_before_reuses_that_verdict(shop: Path, tmp_path: Path) -> None:
    settings = landed_copy(shop, tmp_path / "home")
    with validation_session(settings) as session:
        run_days(settings, session)
    first, second = (lineage(settings, "items", day) for day in EMPTY_ITEMS)
    assert first["rows"] == second["rows"] == 0 and "note" not in first
    # the second empty batch names the GX run (and page) that judged an identical one
    assert second["gx_run_id"] == first["gx_run_id"] in second["note"]
    assert second["data_docs_page"] == first["data_docs_page"]
    assert Path(second["data_docs_page"]).is_file()
    assert second["statistics"] == first["statistics"]


def test_an_empty_batch_that_fails_is_judged_by_gx_each_time(shop: Path, tmp_path: Path) -> None:
    """An events batch without rows fails its floor: never a reused verdict, its own page."""
    settings = landed_copy(shop, tmp_path / "home")
    empty = pq.read_table(partition_dir(settings.landing_dir, "events", START)).slice(0, 0)
    pages = []
    with validation_session(settings) as session:
        for day in (START, START + timedelta(days=1)):
            for table in ("users", "items"):
                ingest_table(settings, table, day, session)
            shutil.rmtree(partition_dir(settings.landing_dir, "events", day))
            write_partition(empty, settings.landing_dir, "events", day)
            with pytest.raises(BatchQuarantined) as raised:
                ingest_table(settings, "events", day, session)
            assert raised.value.outcome.note is None
            pages.append(raised.value.outcome.data_docs_page)
    assert pages[0] != pages[1] and all(Path(p).is_file() for p in pages)


def test_the_cache_reads_a_day_curated_again(shop: Path, tmp_path: Path) -> None:
    settings = landed_copy(shop, tmp_path / "home")
    for offset in range(3):
        for table in ("users", "items", "events"):
            ingest_table(settings, table, START + timedelta(days=offset))
    cache = CuratedCache()
    day = START + timedelta(days=3)

    def history(with_cache: CuratedCache | None) -> object:
        return curated_history(
            settings.curated_dir, settings.landing_dir, "events", day, 28, cache=with_cache
        )

    assert_same(history(cache), history(None))
    # the first day curated again with half its rows (a re-delivery): the cache must notice
    target = partition_dir(settings.curated_dir, "events", START)
    table = pq.read_table(parquet_files(target)[0])
    shutil.rmtree(target)
    write_partition(table.slice(0, table.num_rows // 2), settings.curated_dir, "events", START)
    again = history(cache)
    assert_same(again, history(None))
    assert again.daily_rows[START] == table.num_rows // 2


def assert_same(got: History, expected: History) -> None:
    assert (got.daily_rows, got.has_earlier_days) == (
        expected.daily_rows,
        expected.has_earlier_days,
    )
    for field in ("ids_other_days", "known_ids"):
        mine, theirs = getattr(got, field), getattr(expected, field)
        assert mine.keys() == theirs.keys()
        assert all(set(mine[k]) == set(theirs[k]) for k in mine), field
