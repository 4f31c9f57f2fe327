"""Everything a suite needs besides the batch itself: history from curated data, run parameters.

Checks that compare a batch with other days (ids loaded before, unknown user/item ids, the volume
band) cannot be expressed on the batch alone. They become *derived columns* (``_event_id_in_other
_days``, ``_user_id_known``...) and *suite parameters* (``day_start``, ``min_rows``...), computed
here with vectorised joins, so Great Expectations judges them like any other column and the
reasons name the real column and rule.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.data import contract
from pipelines.data.partitions import ListingCache, parquet_files, partition_days, partition_dir

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


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
    # float column -> row mask of NaN values: pandas reads NaN and null alike, Arrow does not
    nan_rows: dict[str, Any] = field(default_factory=dict)

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
    return LandedBatch(table, day, files, contract.read_frame(combined), _nan_rows(combined))


def _nan_rows(data: pa.Table) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    return {
        name: pc.fill_null(pc.is_nan(data.column(name)), False).to_numpy(zero_copy_only=False)
        for name in data.column_names
        if pa.types.is_floating(data.schema.field(name).type)
    }


def landed_files(landing_dir: Path, table: str, day: date) -> list[Path]:
    return parquet_files(partition_dir(landing_dir, table, day))


@dataclass
class History:
    """What curated data knows, as seen from one day's batch."""

    # column -> the ids (a pd.Index, or an IdSet when a history run's cache built it)
    ids_other_days: dict[str, Any] = field(default_factory=dict)
    known_ids: dict[str, Any] = field(default_factory=dict)  # "user_id"/"item_id" -> same
    # curated row counts of trading days in the trailing window (closed and empty days left out)
    daily_rows: dict[date, int] = field(default_factory=dict)
    has_earlier_days: bool = False  # False: this is the first batch of the table


class IdSet:
    """A set of ids for membership tests: :meth:`isin` answers as ``Series.isin`` would.

    ``Series.isin`` against the ids of every other curated day hashes all of them again for each
    batch: half a million event ids at the end of a year, most of a late day's preparation. A
    history run's :class:`CuratedCache` keeps one Python set per kind of lookup and adds the
    ids of newly curated files to it, so each batch only looks its own values up. When every id
    is a ``str``, ``v in set`` and ``isin`` agree for any value (a ``str`` equals only an equal
    ``str``); otherwise (ids of another type, nulls, NaN) the lookup is ``isin`` itself.
    """

    def __init__(self, ids: set[Any], all_str: bool, extra: IdSet | None = None) -> None:
        self._ids = ids
        self._all_str = all_str
        self._extra = extra

    def with_values(self, values: Any) -> IdSet:
        """These ids and ``values`` (e.g. today's landed users), without copying these."""
        return IdSet(self._ids, self._all_str, IdSet(set(values), _all_str(values)))

    def __iter__(self) -> Any:
        yield from self._ids
        if self._extra is not None:
            yield from self._extra

    def isin(self, values: pd.Series) -> pd.Series:
        import numpy as np
        import pandas as pd

        if self._all_str and (self._extra is None or self._extra._all_str):
            ids, extra = self._ids, (self._extra._ids if self._extra is not None else ())
            try:
                found = np.fromiter(
                    (v in ids or v in extra for v in values), dtype=bool, count=len(values)
                )
            except TypeError:  # an unhashable value: let pandas judge it
                pass
            else:
                return pd.Series(found, index=values.index)
        return values.isin(pd.Index(list(self)))


def _all_str(values: Any) -> bool:
    return all(type(v) is str for v in values)


def _isin(values: pd.Series, ids: Any) -> pd.Series:
    return ids.isin(values) if isinstance(ids, IdSet) else values.isin(ids)


class CuratedCache:
    """What :func:`curated_history` reads from curated files, kept across the days of a history.

    Day by day, each batch is judged against every other curated day: the ids of all of them,
    the known users and items, the row counts of the trailing window. Read afresh, that is every
    curated file again each day (a year: ~365 x 3 files a day). The cache keeps each file's unique
    values and row count, keyed by the file's identity (inode, size, modification time): a day
    curated again -- a re-run, a released batch -- is a new file and is read again, so the
    history built from the cache is the one built from disk. Partition listings are kept by the
    directory's identity, and the id sets (:class:`IdSet`) grow by the files curated since the
    last lookup; a file gone or changed since rebuilds the set from the files there now.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[Path, str], tuple[tuple[int, int, int], Any]] = {}
        self._rows: dict[Path, tuple[tuple[int, int, int], int]] = {}
        self._listing = ListingCache()
        # lookup name -> (files with their identity, ids, all ids are str)
        self._sets: dict[str, tuple[set[tuple[Path, tuple[int, int, int]]], set[Any], bool]] = {}

    def files(self, directory: Path) -> list[Path]:
        """:func:`parquet_files` of the directory, listed again when the directory changed."""
        return self._listing.files(directory)

    def values(self, path: Path, column: str) -> Any:
        """The unique values of ``column`` in the file, in order of first appearance."""
        import pandas as pd
        import pyarrow.parquet as pq

        stamp = _identity(path)
        hit = self._values.get((path, column))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        values = pd.unique(pq.read_table(path, columns=[column]).column(column).to_numpy())
        self._values[(path, column)] = (stamp, values)
        return values

    def id_set(self, lookup: str, files: list[Path], column: str) -> IdSet:
        """The ids of ``column`` over ``files``; ``lookup`` names the set kept between calls
        (valid until the next call with the same name)."""
        stamped = {(f, _identity(f)) for f in files}
        kept = self._sets.get(lookup)
        if kept is not None and kept[0] <= stamped:
            covered, ids, all_str = kept
            new = stamped - covered
        else:
            covered, ids, all_str, new = set(), set(), True, stamped
        for path, _stamp in sorted(new):
            values = self.values(path, column)
            all_str = all_str and _all_str(values)
            ids.update(values)
        covered = covered | new
        self._sets[lookup] = (covered, ids, all_str)
        return IdSet(ids, all_str)

    def rows(self, path: Path) -> int:
        import pyarrow.parquet as pq

        stamp = _identity(path)
        hit = self._rows.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        rows = pq.ParquetFile(path).metadata.num_rows
        self._rows[path] = (stamp, rows)
        return rows


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _read_column(files: list[Path], column: str, cache: CuratedCache | None = None) -> pd.Index:
    """The unique values of ``column`` over ``files``, in order of first appearance."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    if cache is not None:
        values = [cache.values(f, column) for f in files]
    else:
        values = [pq.read_table(f, columns=[column]).column(column).to_numpy() for f in files]
    if not values:
        return pd.Index([])
    return pd.Index(np.concatenate(values)).unique()


def _num_rows(path: Path, cache: CuratedCache | None) -> int:
    import pyarrow.parquet as pq

    return cache.rows(path) if cache is not None else pq.ParquetFile(path).metadata.num_rows


def curated_history(
    curated_dir: Path,
    landing_dir: Path,
    table: str,
    day: date,
    history_days: int,
    cache: CuratedCache | None = None,
) -> History:
    """Ids of other days, known users/items (curated plus today's landing), trailing row counts.

    ``cache`` (a history run's): curated files already read are not read again, and the ids come
    as :class:`IdSet` (the same answers, without hashing every id again).
    """
    import pyarrow as pa

    def files_of(directory: Path) -> list[Path]:
        return cache.files(directory) if cache is not None else parquet_files(directory)

    spec = contract.table(table)
    days = [d for d in partition_days(curated_dir, table) if d != day]
    files_other_days = [f for d in days for f in files_of(partition_dir(curated_dir, table, d))]
    history = History(has_earlier_days=any(d < day for d in days))
    if files_other_days:
        history.ids_other_days[spec.key] = (
            cache.id_set(f"{table} other days", files_other_days, spec.key)
            if cache is not None
            else _read_column(files_other_days, spec.key)
        )
    window = [d for d in days if day - timedelta(days=history_days) <= d < day]
    counts = {
        d: sum(_num_rows(f, cache) for f in files_of(partition_dir(curated_dir, table, d)))
        for d in window
    }
    history.daily_rows = {d: n for d, n in counts.items() if n > 0}
    if table == "events":
        for reference, key in (("users", "user_id"), ("items", "item_id")):
            curated = [
                f
                for d in partition_days(curated_dir, reference)
                if d <= day
                for f in files_of(partition_dir(curated_dir, reference, d))
            ]
            if not curated:
                continue  # nothing known yet: the reference check is skipped, not failed
            same_day = landed_files(landing_dir, reference, day)
            if cache is not None:
                known_curated = cache.id_set(f"{reference} known", curated, key)
                try:
                    # today's landing is read as it is now, never from the cache
                    landed = _read_column(same_day, key)
                except (pa.ArrowException, OSError):
                    history.known_ids[key] = known_curated
                else:
                    history.known_ids[key] = known_curated.with_values(landed)
                continue
            try:
                # today's landing is read as it is now, never from the cache
                known = _read_column(curated, key, cache).append(_read_column(same_day, key))
                known = known.unique()
            except (pa.ArrowException, OSError):
                # an unreadable same-day batch is judged by its own suite, not here
                known = _read_column(curated, key, cache)
            history.known_ids[key] = known
    return history


@dataclass
class Prepared:
    """The frame GX validates (batch plus derived columns) and the suite parameters."""

    frame: pd.DataFrame
    parameters: dict[str, Any]
    skipped: dict[str, str]  # derived column or "volume" -> why it is not judged


PARTIAL_DAY_FILE = "_partial.json"  # written by the importer (pipelines.data.importer)


def partial_day_reason(batch: LandedBatch) -> str | None:
    """The importer's note that this is an export's partial last day, while it still holds:
    once rows later than the export's last event arrive (the rest of the day), it does not."""
    import json

    import pandas as pd

    if not batch.files or batch.table != "events" or "event_ts" not in batch.frame:
        return None
    marker = batch.files[0].parent / PARTIAL_DAY_FILE
    if not marker.exists():
        return None
    record = json.loads(marker.read_text())
    if batch.frame["event_ts"].max() > pd.Timestamp(record["last_event"]):
        return None
    return str(record["reason"])


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def volume_band(
    daily_rows: dict[date, int], volume: dict[str, Any], day: date
) -> tuple[int, int | None, str | None]:
    """(min_rows, max_rows, basis): a band around like days, else only a floor.

    Like is like. With ``compare = "same_weekday"`` the band is around the median of the same
    weekday over the trailing ``weeks`` (a Monday against Mondays: a busy Monday after a closed
    weekend is not "twice the usual"). Until ``min_history_days`` such weekdays exist, and
    without ``compare``, it spans the range of the last ``history_days`` trading days (lowest *
    ``lower_ratio`` to highest * ``upper_ratio``), widened by the same weekdays seen in the
    trailing ``weeks``: the range covers the week's rhythm even right after a closure.
    ``basis`` says which (None: no band).
    """
    floor = int(volume.get("floor", 0))
    needed = int(volume.get("min_history_days", 3))
    like_days: set[date] = set()
    if volume.get("compare") == "same_weekday":
        like_days = {d for d in daily_rows if d.weekday() == day.weekday()}
        if len(like_days) >= needed:
            rows = [daily_rows[d] for d in like_days]
            median = statistics.median(rows)
            basis = f"median of the last {len(like_days)} {day:%A}s"
            return _band(median, median, rows, _pooled(daily_rows, day, volume), volume, basis)
    recent = date.fromordinal(day.toordinal() - int(volume.get("history_days", 7)))
    trailing = {d for d in daily_rows if d >= recent}
    if len(trailing) < needed:
        return floor, None, None
    # the same weekdays seen so far belong in the range too: after a holiday closure the last
    # week may hold no quiet Sunday to compare a quiet Sunday with
    rows = [daily_rows[d] for d in trailing | like_days]
    basis = f"range of the last {len(trailing)} trading days"
    if like_days - trailing:
        basis += f" and {len(like_days - trailing)} earlier {day:%A}(s)"
    return _band(min(rows), max(rows), rows, _pooled(daily_rows, day, volume), volume, basis)


def _pooled(daily_rows: dict[date, int], day: date, volume: dict[str, Any]) -> list[int]:
    """Every trading day the band may read (the history window): more days than one weekday's
    four, for a steadier estimate of the shop's swing."""
    since = day - timedelta(days=history_window_days(volume))
    return [n for d, n in daily_rows.items() if since <= d < day]


def _log_spread(rows: list[int]) -> float:
    """The median absolute deviation of log counts, as a standard deviation (0 below 3 days).
    Robust to a weekly rhythm: a busy Monday among five alike days does not move it."""
    if len(rows) < 3:
        return 0.0
    logs = [math.log(max(n, 1)) for n in rows]
    centre = statistics.median(logs)
    return 1.4826 * statistics.median(abs(x - centre) for x in logs)


def _band(
    low: float,
    high: float,
    rows: list[int],
    pooled: list[int],
    volume: dict[str, Any],
    basis: str,
) -> tuple[int, int | None, str | None]:
    """``low * lower_ratio .. high * upper_ratio``, widened to the shop's own day-to-day noise.

    A small shop's days swing by more than 2x (three invoices one day, twenty the next): below
    ``min_band_rows`` a day's count says nothing a floor does not, and above it the ratios widen
    to ``noise_sigmas`` robust standard deviations of log counts — of the reference days, or of
    every trading day in the window (``pooled``) when those swing more.
    """
    floor = int(volume.get("floor", 0))
    if statistics.median(rows) < int(volume.get("min_band_rows", 0)):
        return floor, None, None
    lower_ratio = float(volume.get("lower_ratio") or 0.0)
    upper_ratio = volume.get("upper_ratio")
    sigmas = volume.get("noise_sigmas")
    if sigmas:
        noise = math.exp(float(sigmas) * max(_log_spread(rows), _log_spread(pooled)))
        lower_ratio = min(lower_ratio, 1 / noise)
        upper_ratio = None if upper_ratio is None else max(float(upper_ratio), noise)
    lower = max(floor, int(low * lower_ratio))
    upper = None if upper_ratio is None else int(high * float(upper_ratio)) + 1
    return lower, upper, basis


def history_window_days(volume: dict[str, Any]) -> int:
    """How many days back the volume band reads: whole weeks when comparing weekdays."""
    days = int(volume.get("history_days", 7))
    if volume.get("compare") == "same_weekday":
        days = max(days, 7 * int(volume.get("weeks", 4)))
    return days


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
            derived[name] = pd.Series(name.endswith(("_known", "_is_number")), index=frame.index)
            skipped[name] = f"column {source} is missing"
            continue
        values = frame[source]
        if name.endswith("_in_other_days"):
            seen = history.ids_other_days.get(source)
            if seen is None:
                skipped[name] = "no curated data of other days yet"
                derived[name] = pd.Series(False, index=frame.index)
            else:
                derived[name] = _isin(values, seen)
        elif name.endswith("_is_number"):
            nan = batch.nan_rows.get(source)
            derived[name] = (
                pd.Series(True, index=frame.index)
                if nan is None
                else ~pd.Series(nan, index=frame.index)
            )
        elif name.endswith("_known"):
            known = history.known_ids.get(source)
            if known is None:
                skipped[name] = f"no curated {source.removesuffix('_id')}s yet"
                derived[name] = pd.Series(True, index=frame.index)
            else:
                derived[name] = _isin(values, known) | values.isna()
    volume = suite_meta.get("volume", {})
    min_rows, max_rows, basis = volume_band(history.daily_rows, volume, batch.day)
    if basis is None:
        small = volume.get("min_band_rows")
        skipped["volume"] = (
            f"fewer than {volume.get('min_history_days', 3)} curated days for a band"
            + (f", or a median below {small} rows (a small shop's days swing)" if small else "")
            + f"; only the floor of {min_rows} rows is checked"
        )
    partial = partial_day_reason(batch)
    if partial is not None:
        min_rows = int(volume.get("floor", 0))
        skipped["volume"] = f"{partial}; only the floor of {min_rows} rows is checked"
    first_batch = not history.has_earlier_days
    parameters = {
        "day_start": start,
        "day_end": end,
        # the first batch of users/items carries everyone who already exists
        "since": datetime(1970, 1, 1, tzinfo=UTC) if first_batch else start,
        "min_rows": min_rows,
        "max_rows": max_rows,
        "volume_basis": basis,
    }
    return Prepared(frame.assign(**derived), parameters, skipped)
