"""Everything a suite needs besides the batch itself: history from curated data, run parameters.

Checks that compare a batch with other days (ids loaded before, unknown user/item ids, the volume
band) cannot be expressed on the batch alone. They become *derived columns* (``_event_id_in_other
_days``, ``_user_id_known``...) and *suite parameters* (``day_start``, ``min_rows``...), computed
here with vectorised joins, so Great Expectations judges them like any other column and the
reasons name the real column and rule.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.data import contract
from pipelines.data.partitions import parquet_files, partition_days, partition_dir

if TYPE_CHECKING:
    import pandas as pd


class BatchUnreadable(Exception):
    """The batch's files cannot be read as parquet (truncated, not parquet, clashing schemas)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass
class LandedBatch:
    table: str
    day: date
    files: list[Path]
    frame: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.frame)


def read_batch(files: list[Path], table: str, day: date) -> LandedBatch:
    """Read a batch's parquet files; unreadable files raise ``BatchUnreadable`` naming the file."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in files:
        try:
            tables.append(pq.read_table(path))
        except (pa.ArrowException, OSError) as error:
            raise BatchUnreadable(path, f"not a readable parquet file ({error})") from error
    if not tables:
        return LandedBatch(table, day, files, pd.DataFrame())
    try:
        combined = pa.concat_tables(tables, promote_options="none")
    except pa.ArrowInvalid as error:
        raise BatchUnreadable(
            files[0].parent, f"files disagree on their schema ({error})"
        ) from None
    return LandedBatch(table, day, files, combined.to_pandas())


def landed_files(landing_dir: Path, table: str, day: date) -> list[Path]:
    return parquet_files(partition_dir(landing_dir, table, day))


@dataclass
class History:
    """What curated data knows, as seen from one day's batch."""

    ids_other_days: dict[str, Any] = field(default_factory=dict)  # column -> set-like (pd.Index)
    known_ids: dict[str, Any] = field(default_factory=dict)  # "user_id"/"item_id" -> pd.Index
    daily_rows: list[int] = field(default_factory=list)  # trailing window, oldest first
    has_earlier_days: bool = False  # False: this is the first batch of the table


def _read_column(files: list[Path], column: str) -> pd.Index:
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    values = [pq.read_table(f, columns=[column]).column(column).to_numpy() for f in files]
    if not values:
        return pd.Index([])
    return pd.Index(np.concatenate(values)).unique()


def curated_history(
    curated_dir: Path,
    landing_dir: Path,
    table: str,
    day: date,
    history_days: int,
) -> History:
    """Ids of other days, known users/items (curated plus today's landing), trailing row counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = contract.table(table)
    days = [d for d in partition_days(curated_dir, table) if d != day]
    files_other_days = [
        f for d in days for f in parquet_files(partition_dir(curated_dir, table, d))
    ]
    history = History(has_earlier_days=any(d < day for d in days))
    if files_other_days:
        history.ids_other_days[spec.key] = _read_column(files_other_days, spec.key)
    window = [d for d in days if day - timedelta(days=history_days) <= d < day]
    history.daily_rows = [
        sum(
            pq.ParquetFile(f).metadata.num_rows
            for f in parquet_files(partition_dir(curated_dir, table, d))
        )
        for d in window
    ]
    if table == "events":
        for reference, key in (("users", "user_id"), ("items", "item_id")):
            curated = [
                f
                for d in partition_days(curated_dir, reference)
                if d <= day
                for f in parquet_files(partition_dir(curated_dir, reference, d))
            ]
            if not curated:
                continue  # nothing known yet: the reference check is skipped, not failed
            same_day = landed_files(landing_dir, reference, day)
            try:
                known = _read_column(curated + same_day, key)
            except (pa.ArrowException, OSError):
                # an unreadable same-day batch is judged by its own suite, not here
                known = _read_column(curated, key)
            history.known_ids[key] = known
    return history


@dataclass
class Prepared:
    """The frame GX validates (batch plus derived columns) and the suite parameters."""

    frame: pd.DataFrame
    parameters: dict[str, Any]
    skipped: dict[str, str]  # derived column or "volume" -> why it is not judged


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def volume_band(daily_rows: list[int], volume: dict[str, Any]) -> tuple[int, int | None, bool]:
    """(min_rows, max_rows, band_applied): a band around the trailing median, else a floor."""
    floor = int(volume.get("floor", 0))
    if len(daily_rows) < int(volume.get("min_history_days", 3)):
        return floor, None, False
    median = statistics.median(daily_rows)
    lower = max(floor, int(median * float(volume.get("lower_ratio") or 0.0)))
    upper_ratio = volume.get("upper_ratio")
    upper = None if upper_ratio is None else int(median * float(upper_ratio)) + 1
    return lower, upper, True


def prepare(
    batch: LandedBatch,
    history: History,
    suite_meta: dict[str, Any],
    derived_columns: dict[str, str],
) -> Prepared:
    """Derived columns and parameters for one batch; ``derived_columns`` maps derived -> source."""
    import pandas as pd

    frame = batch.frame
    start, end = day_bounds(batch.day)
    skipped: dict[str, str] = {}
    derived: dict[str, Any] = {}
    for name, source in derived_columns.items():
        if source not in frame.columns:
            derived[name] = pd.Series(name.endswith("_known"), index=frame.index)
            skipped[name] = f"column {source} is missing"
            continue
        values = frame[source]
        if name.endswith("_in_other_days"):
            seen = history.ids_other_days.get(source)
            if seen is None:
                skipped[name] = "no curated data of other days yet"
                derived[name] = pd.Series(False, index=frame.index)
            else:
                derived[name] = values.isin(seen)
        elif name.endswith("_known"):
            known = history.known_ids.get(source)
            if known is None:
                skipped[name] = f"no curated {source.removesuffix('_id')}s yet"
                derived[name] = pd.Series(True, index=frame.index)
            else:
                derived[name] = values.isin(known) | values.isna()
    volume = suite_meta.get("volume", {})
    min_rows, max_rows, band = volume_band(history.daily_rows, volume)
    if not band:
        skipped["volume"] = (
            f"fewer than {volume.get('min_history_days', 3)} curated days for a band; "
            f"only the floor of {min_rows} rows is checked"
        )
    first_batch = not history.has_earlier_days
    parameters = {
        "day_start": start,
        "day_end": end,
        # the first batch of users/items carries everyone who already exists
        "since": datetime(1970, 1, 1, tzinfo=UTC) if first_batch else start,
        "min_rows": min_rows,
        "max_rows": max_rows,
    }
    return Prepared(frame.assign(**derived), parameters, skipped)
