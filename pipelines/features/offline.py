"""The I/O edge of features: curated partitions in, offline-store partitions out.

``compute.py`` knows nothing of files; this module reads the curated window a day needs, hands
the frames to it and writes each feature table as ``<offline>/<table>/date=D/part-0.parquet``
with timestamps as ``timestamp[us, tz=UTC]``, which Feast's DuckDB offline store needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.data import contract
from pipelines.data.partitions import (
    DEFAULT_FILE_NAME,
    ListingCache,
    PartitionWriter,
    parquet_files,
    partition_days,
    partition_dir,
    write_table,
)
from pipelines.features.compute import HISTORY_DAYS, RECENCY_COLUMNS
from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP, FeatureTable

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from pipelines.config import Settings

# what the feature computation reads of an event; event_id (a unique string per row) is not used
EVENT_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "event_type",
    "event_ts",
    "session_id",
    "price",
    "quantity",
    "device",
)
# Read as Arrow dictionaries, so pandas gets categoricals and ids are hashed once per distinct
# value. Not session_id: nearly every value is distinct, and a categorical of ~300k categories per
# million events costs more than it saves; it arrives as string[pyarrow] instead (zero-copy).
DICTIONARY_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "event_type", "device")
# what a day reads of the day before's user_activity partition (both engines)
PREVIOUS_COLUMNS: tuple[str, ...] = ("user_id", TIMESTAMP, *RECENCY_COLUMNS)


class FeaturesError(Exception):
    """A feature run that cannot go ahead, with the file and what to do about it."""


# ---- reading ----------------------------------------------------------------------------------


def read_curated_window(
    curated_dir: Path, day: date, days: int = HISTORY_DAYS
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(events, users, items)`` as known at the end of ``day``.

    Events come from the partitions of the ``days`` days ending with ``day`` only (missing days
    are skipped); users and items from every partition up to ``day``, one row per key, the latest
    day's row winning, since a later batch may correct an earlier one.
    """
    window = [day - timedelta(days=back) for back in range(days - 1, -1, -1)]
    event_files = [
        f for d in window for f in parquet_files(partition_dir(curated_dir, "events", d))
    ]
    events = _read_files(event_files, contract.EVENTS, EVENT_COLUMNS, DICTIONARY_COLUMNS)
    users = _read_latest(curated_dir, contract.USERS, day)
    items = _read_latest(curated_dir, contract.ITEMS, day)
    return events, users, items


def _read_latest(curated_dir: Path, spec: contract.Table, day: date) -> pd.DataFrame:
    days = [d for d in partition_days(curated_dir, spec.name) if d <= day]
    files = [f for d in days for f in parquet_files(partition_dir(curated_dir, spec.name, d))]
    frame = _read_files(files, spec, tuple(spec.column_names))
    # files are in day order, so the last row of a key is the latest day's
    return frame.drop_duplicates(spec.key, keep="last").reset_index(drop=True)


def _read_files(
    files: Sequence[Path],
    spec: contract.Table,
    columns: Sequence[str],
    dictionary: Sequence[str] = (),
) -> pd.DataFrame:
    """The given columns of ``files``, concatenated in order, typed as the contract says."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([spec.arrow_schema().field(c) for c in columns])
    tables = [
        pq.read_table(f, columns=list(columns), read_dictionary=list(dictionary)) for f in files
    ]
    if not tables:
        return schema.empty_table().to_pandas()
    # plain strings (only those not read as dictionaries) stay Arrow-backed: no copy into objects
    arrow_strings = {pa.string(): pd.StringDtype("pyarrow")}
    return pa.concat_tables(tables).to_pandas(types_mapper=arrow_strings.get)


def read_offline_partition(
    offline_dir: Path, table: str, day: date, columns: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """A feature table's partition for ``day``, or None if it was never written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = parquet_files(partition_dir(offline_dir, table, day))
    if not files:
        return None
    cols = None if columns is None else list(columns)
    return pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pandas()


class CuratedReader:
    """:func:`read_curated_window` for many days in one process, reading every file once.

    A history of a year recomputes 365 windows of 30 event days and, each day, every users and
    items partition up to it; read from disk that is ~11k event files and ~130k reference files.
    Here each file's Arrow table is read once and kept while a window may still need it, and the
    frames are built exactly as :func:`read_curated_window` builds them (same files in the same
    order, same concatenation and conversion), so the features are the same, bit for bit.
    Partitions are listed on every call (a partition directory again only when it changed, see
    :class:`~pipelines.data.partitions.ListingCache`) and a file is read again when its size or
    mtime changed, so days ingested between two calls (ingest D, features D, ingest D+1, ...)
    are seen.
    """

    def __init__(self, curated_dir: Path, days: int = HISTORY_DAYS) -> None:
        self.curated_dir = curated_dir
        self.days = days
        self._tables: dict[Path, tuple[tuple[int, int], pa.Table]] = {}
        self._listing = ListingCache()

    def window(self, day: date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """``(events, users, items)`` as known at the end of ``day``."""
        first = day - timedelta(days=self.days - 1)
        window = [first + timedelta(days=i) for i in range(self.days)]
        event_files = [
            f
            for d in window
            for f in self._listing.files(partition_dir(self.curated_dir, "events", d))
        ]
        # events of days that left the window are not needed again (days go forward)
        for path in [p for p in self._tables if _is_events_before(p, self.curated_dir, first)]:
            del self._tables[path]
        events = self._frame(event_files, contract.EVENTS, EVENT_COLUMNS, DICTIONARY_COLUMNS)
        return events, self._latest(contract.USERS, day), self._latest(contract.ITEMS, day)

    def _latest(self, spec: contract.Table, day: date) -> pd.DataFrame:
        days = [d for d in partition_days(self.curated_dir, spec.name) if d <= day]
        files = [
            f
            for d in days
            for f in self._listing.files(partition_dir(self.curated_dir, spec.name, d))
        ]
        frame = self._frame(files, spec, tuple(spec.column_names))
        return frame.drop_duplicates(spec.key, keep="last").reset_index(drop=True)

    def _frame(
        self,
        files: Sequence[Path],
        spec: contract.Table,
        columns: Sequence[str],
        dictionary: Sequence[str] = (),
    ) -> pd.DataFrame:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        for path in files:
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            cached = self._tables.get(path)
            if cached is None or cached[0] != version:
                table = pq.read_table(path, columns=list(columns), read_dictionary=list(dictionary))
                cached = self._tables[path] = (version, table)
            tables.append(cached[1])
        if not tables:
            schema = pa.schema([spec.arrow_schema().field(c) for c in columns])
            return schema.empty_table().to_pandas()
        arrow_strings = {pa.string(): pd.StringDtype("pyarrow")}
        return pa.concat_tables(tables).to_pandas(types_mapper=arrow_strings.get)


def _is_events_before(path: Path, curated_dir: Path, first: date) -> bool:
    """Is ``path`` a curated events file of a day before ``first``?"""
    folder = path.parent
    if folder.parent != curated_dir / "events" or not folder.name.startswith("date="):
        return False
    return date.fromisoformat(folder.name.removeprefix("date=")) < first


# ---- writing ----------------------------------------------------------------------------------


def offline_schema(table: FeatureTable) -> pa.Schema:
    """Arrow schema of a feature table's partitions: key, stamp, then the features."""
    import pyarrow as pa

    types = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    return pa.schema(
        [
            pa.field(table.join_key, pa.string()),
            pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC")),
            *(pa.field(c.name, types[c.dtype]) for c in table.columns),
        ]
    )


def write_offline_partition(offline_dir: Path, table: str, day: date, frame: pd.DataFrame) -> Path:
    """Replace ``<offline_dir>/<table>/date=<day>/part-0.parquet`` with ``frame``, atomically.

    The frame must hold exactly the table's columns (in any order); identical frames give
    identical bytes, so a re-run that changed nothing changes no file.
    """
    import pyarrow as pa

    spec = _feature_table(table)
    schema = offline_schema(spec)
    missing = [name for name in schema.names if name not in frame.columns]
    extra = [name for name in frame.columns if name not in schema.names]
    if missing or extra:
        raise FeaturesError(
            f"cannot write {table} for {day}: missing columns {missing}, unexpected {extra}; "
            f"the columns are defined in pipelines/features/schema.py"
        )
    data = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    # pandas metadata would tie the bytes to the pandas version; the schema says it all
    data = data.replace_schema_metadata(None)
    target = partition_dir(offline_dir, table, day)
    with PartitionWriter(target) as staged:
        write_table(data, staged / DEFAULT_FILE_NAME)
    return target / DEFAULT_FILE_NAME


def _feature_table(name: str) -> FeatureTable:
    try:
        return FEATURE_TABLES[name]
    except KeyError:
        raise FeaturesError(
            f"unknown feature table {name!r}; expected one of {list(FEATURE_TABLES)}"
        ) from None


# ---- one day ----------------------------------------------------------------------------------


def compute_features_for_day(
    settings: Settings, day: date, *, reader: CuratedReader | None = None
) -> dict[str, Path]:
    """Compute and write ``user_activity`` and ``item_popularity`` for ``day``; their paths.

    Recency is carried over from the previous day's ``user_activity`` partition when there is
    one, so a user quiet for longer than the 30-day window keeps an honest ``days_since_*``.
    ``reader`` (a :class:`CuratedReader`) reads each curated file once over many days, for a
    history of days computed in one process; without it the window is read from disk.
    """
    from pipelines.features.compute import item_popularity, user_activity

    events_dir = partition_dir(settings.curated_dir, "events", day)
    if not parquet_files(events_dir):
        raise FeaturesError(
            f"no curated events for {day}: {events_dir} is missing or holds no parquet file. "
            f"Features read curated data only; run `personalize run ingest --date {day}` first"
        )
    if reader is None:
        events, users, items = read_curated_window(settings.curated_dir, day)
    else:
        events, users, items = reader.window(day)
    offline = settings.feast_offline_dir
    previous = read_offline_partition(
        offline,
        "user_activity",
        day - timedelta(days=1),
        columns=PREVIOUS_COLUMNS,
    )
    tables = {
        "user_activity": user_activity(events, users, items, day, previous=previous),
        "item_popularity": item_popularity(events, items, day),
    }
    return {
        name: write_offline_partition(offline, name, day, frame) for name, frame in tables.items()
    }
