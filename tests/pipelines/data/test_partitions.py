"""Partitions are replaced whole or not at all."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.data.partitions import (
    ListingCache,
    PartitionWriter,
    partition_days,
    partition_dir,
    read_partition,
    write_partition,
    write_table,
)

DAY = date(2026, 1, 5)


def test_rewriting_a_partition_replaces_it(tmp_path: Path) -> None:
    write_partition(pa.table({"x": [1, 2, 3]}), tmp_path, "events", DAY)
    write_partition(pa.table({"x": [4]}), tmp_path, "events", DAY)
    assert read_partition(tmp_path, "events", DAY).x.tolist() == [4]
    assert partition_days(tmp_path, "events") == [DAY]
    assert [p.name for p in (tmp_path / "events").iterdir()] == ["date=2026-01-05"]


def test_a_crash_while_writing_leaves_the_old_partition(tmp_path: Path) -> None:
    write_partition(pa.table({"x": [1]}), tmp_path, "events", DAY)
    target = partition_dir(tmp_path, "events", DAY)
    with pytest.raises(RuntimeError), PartitionWriter(target) as staged:
        write_table(pa.table({"x": [9, 9]}), staged / "part-0.parquet")
        raise RuntimeError("killed mid-write")
    assert read_partition(tmp_path, "events", DAY).x.tolist() == [1]
    assert [p.name for p in (tmp_path / "events").iterdir()] == ["date=2026-01-05"]


def test_a_listing_cache_lists_a_partition_again_once_it_changed(tmp_path: Path) -> None:
    data = pa.table({"x": [1, 2]})
    day = date(2026, 1, 5)
    cache = ListingCache()
    target = partition_dir(tmp_path, "events", day)
    assert cache.files(target) == []
    first = write_partition(data, tmp_path, "events", day)
    assert cache.files(target) == [first]
    listed = cache.files(target)
    listed.append(tmp_path / "not there")  # a caller's copy: the cache is not changed by it
    assert cache.files(target) == [first]
    with PartitionWriter(target) as staged:  # published again: a new directory, other files
        write_table(data, staged / "part-a.parquet")
        write_table(data, staged / "part-b.parquet")
    assert [p.name for p in cache.files(target)] == ["part-a.parquet", "part-b.parquet"]
    (target / "part-b.parquet").unlink()  # a file removed in place
    assert [p.name for p in cache.files(target)] == ["part-a.parquet"]
