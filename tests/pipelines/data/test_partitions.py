"""Partitions are replaced whole or not at all."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.data.partitions import (
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
