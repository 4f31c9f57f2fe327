"""Day-partitioned parquet I/O: ``<root>/<table>/date=YYYY-MM-DD/*.parquet``.

Writes are atomic per partition: files go to a hidden temp dir beside the target, which is renamed
into place only when complete, so a crash never leaves a partial partition behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PARTITION_PREFIX = "date="
DEFAULT_FILE_NAME = "part-0.parquet"


def partition_dir(root: Path, table: str, day: date) -> Path:
    return Path(root) / table / f"{PARTITION_PREFIX}{day.isoformat()}"


def partition_days(root: Path, table: str) -> list[date]:
    """Days that have a partition for ``table`` under ``root``, oldest first."""
    base = Path(root) / table
    if not base.is_dir():
        return []
    days = []
    for child in base.iterdir():
        if child.is_dir() and child.name.startswith(PARTITION_PREFIX):
            days.append(date.fromisoformat(child.name.removeprefix(PARTITION_PREFIX)))
    return sorted(days)


def parquet_files(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.parquet") if p.is_file())


class ListingCache:
    """:func:`parquet_files` of many directories, listed again only when a directory changed.

    A history run lists every curated partition of a table each day (a year: ~1,000 globs a day
    by the end). Here a listing is kept with the directory's identity (inode, modification
    time): publishing a partition (:class:`PartitionWriter`) swaps in a new directory, and adding
    or removing a file changes the modification time, so a changed partition is listed afresh.
    """

    def __init__(self) -> None:
        self._listings: dict[Path, tuple[tuple[int, int], list[Path]]] = {}

    def files(self, directory: Path) -> list[Path]:
        try:
            stat = Path(directory).stat()
        except FileNotFoundError:
            self._listings.pop(Path(directory), None)
            return []
        stamp = (stat.st_ino, stat.st_mtime_ns)
        hit = self._listings.get(Path(directory))
        if hit is not None and hit[0] == stamp:
            return list(hit[1])
        files = parquet_files(directory)
        self._listings[Path(directory)] = (stamp, files)
        return list(files)


def write_table(data: pa.Table, path: Path) -> None:
    """Write one parquet file with settings that keep bytes identical for identical data."""
    import pyarrow.parquet as pq

    pq.write_table(data, path, compression="zstd", write_statistics=True)


class PartitionWriter:
    """Stage files for one partition, then publish them all at once.

    >>> with PartitionWriter(target) as staged:
    ...     write_table(table, staged / "part-0.parquet")
    """

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.staging = self.target.parent / f".{self.target.name}.tmp-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir()
        return self.staging

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        try:
            replace_dir(self.staging, self.target)
        except BaseException:
            # a crash between staging and publishing leaves neither half a partition nor litter
            shutil.rmtree(self.staging, ignore_errors=True)
            raise


def replace_dir(staging: Path, target: Path) -> None:
    """Swap ``staging`` in as ``target``; the old ``target`` (if any) is removed afterwards."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old)


def write_partition(
    data: pa.Table, root: Path, table: str, day: date, file_name: str = DEFAULT_FILE_NAME
) -> Path:
    """Replace the partition of ``table`` for ``day`` with ``data`` (idempotent)."""
    target = partition_dir(root, table, day)
    with PartitionWriter(target) as staged:
        write_table(data, staged / file_name)
    return target / file_name


def read_partition(root: Path, table: str, day: date) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.parquet as pq

    files = parquet_files(partition_dir(root, table, day))
    if not files:
        return pd.DataFrame()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def iter_partitions(root: Path, table: str) -> Iterator[tuple[date, Path]]:
    for day in partition_days(root, table):
        yield day, partition_dir(root, table, day)
