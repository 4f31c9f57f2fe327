"""Bring your own data: turn a shop's own CSV or parquet export into contract-shaped landing data.

``personalize import orders.csv --table events --map user_id=customer ...`` calls
:func:`import_file`. The shop's log (order lines, click logs, a customer or catalogue dump) is read,
its columns are mapped onto :mod:`pipelines.data.contract`, every value is converted to the
contract's type, and the rows land in ``landing/<table>/date=YYYY-MM-DD/`` by the UTC day of the
table's timestamp, exactly where the synthetic generator puts its data, so the rest of the
platform cannot tell the two apart.

Design choices, and why:

* **Nothing is dropped silently.** A row that cannot be converted (missing key, unparseable
  timestamp, a return with a negative quantity, ...) goes to a CSV rejects file with its original
  values, its source row number and the reason, so people can open it, fix the export and
  re-import. ``rows_read == rows_written + rows_rejected`` always holds.
* **Re-importing is idempotent.** Each import writes ``import-<sha8 of the file's bytes>.parquet``
  into each day partition; rows are sorted and generated ids are derived from the row values, so
  importing the same file again rewrites byte-identical files under the same names instead of
  adding duplicates. Files of that same import in days it no longer produces are removed.
* **Files are replaced one at a time, atomically** (written under a hidden temp name, then
  ``os.replace``). :class:`partitions.PartitionWriter` would swap the whole day directory and so
  drop the files other imports (or the generator) put there.
* **CSV is read as text.** Type inference would turn ``00123`` into ``123`` and id columns with
  gaps into floats; every column is read as a string and converted per the contract instead.
* **An all-rejected import changes nothing in landing** (only the rejects file is written): a
  botched re-import with a wrong mapping must not wipe out the data of an earlier good one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from pipelines.config import Settings
from pipelines.data import contract, partitions

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
SUPPORTED_SUFFIXES: tuple[str, ...] = CSV_SUFFIXES + PARQUET_SUFFIXES

IMPORT_FILE_PREFIX = "import-"
EVENT_ID_PREFIX = "imp-"
EVENT_ID_HEX_CHARS = 20

# pandas' default missing-value markers minus "NA", which is Namibia's ISO country code.
NA_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip

# Event names seen in real logs, after lower-casing and turning spaces/dashes into "_".
EVENT_TYPE_SYNONYMS: dict[str, str] = {
    "view": "view",
    "click": "view",
    "pageview": "view",
    "page_view": "view",
    "detail": "view",
    "add_to_cart": "add_to_cart",
    "addtocart": "add_to_cart",
    "cart": "add_to_cart",
    "purchase": "purchase",
    "order": "purchase",
    "buy": "purchase",
    "checkout": "purchase",
    "transaction": "purchase",
}

_TRUE = ("true", "t", "yes", "y", "1", "1.0", "on")
_FALSE = ("false", "f", "no", "n", "0", "0.0", "off")

# Fields the importer can fill when the file does not have them, per table.
_DEFAULTABLE: dict[str, frozenset[str]] = {
    "events": frozenset({"event_id", "quantity"}),  # hash of the row; 1 unit
    "users": frozenset({"consent_personalization"}),  # False: never personalise without consent
    "items": frozenset(),
}

# Reject reasons are checked in this order (a row gets the first that applies): missing keys,
# timestamps, unparseable prices, unparseable quantities, negative then zero quantities,
# non-positive prices, bad categorical values, purchases without price. Duplicate keys come last.
_P_MISSING_ID, _P_TIMESTAMP, _P_FLOAT, _P_INT, _P_NEGATIVE, _P_ZERO, _P_RANGE, _P_VALUE = range(8)
_P_PRICE_FOR_PURCHASE = 8

_HASH_KEYS = ("personalize-imp1", "personalize-imp2")  # 16 bytes each, fixed: ids are stable


class ImportProblem(Exception):
    """The import cannot start: bad mapping, unknown table/field, unreadable file, ...

    A usage problem, not a data problem: the CLI reports it with exit code 2.
    """


@dataclass
class ImportReport:
    """What an import did; ``to_dict`` is what ``personalize import --json`` prints."""

    source: Path
    table: str
    rows_read: int
    rows_written: int
    rejected: dict[str, int]  # reason kind -> row count
    partitions: list[Path]  # day partition dirs written
    rejects_file: Path | None
    # the rows written (contract columns plus carried source columns); not part of to_dict
    accepted: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "table": self.table,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rejected": dict(self.rejected),
            "partitions": [str(p) for p in self.partitions],
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }


# ---- mapping -----------------------------------------------------------------------------------


def parse_mapping(pairs: list[str], table: str | None = None) -> dict[str, str]:
    """``["user_id=customer", ...]`` as ``{"user_id": "customer"}``.

    With ``table`` the targets are checked against the contract here, so a typo fails before a
    possibly large file is read.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ImportProblem(
                f"--map {pair!r}: expected CONTRACT_FIELD=SOURCE_COLUMN, e.g. user_id=customer"
            )
        if target in mapping:
            raise ImportProblem(f"--map {target}= given twice ({mapping[target]!r} and {source!r})")
        mapping[target] = source
    if table is not None:
        check_targets(mapping, _spec(table))
    return mapping


def _spec(table: str) -> contract.Table:
    try:
        return contract.table(table)
    except ValueError:
        raise ImportProblem(
            f"unknown table {table!r}; expected one of: {', '.join(contract.TABLE_NAMES)}"
        ) from None


def check_targets(mapping: dict[str, str], spec: contract.Table, where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    for target in mapping:
        if target not in spec.column_names:
            raise ImportProblem(
                f"{prefix}--map {target}=...: {spec.name} has no field {target!r}; "
                f"its fields are: {', '.join(spec.column_names)}"
            )


# ---- reading -----------------------------------------------------------------------------------


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise ImportProblem(
        f"{path.name}: unsupported file type; expected one of: {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _stem(path: Path) -> str:
    return path.name[: -len(_suffix(path))] or path.name


def _read(path: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The file as a frame: every CSV column as text (nulls for blanks), parquet with its types;
    plus, per float column of a parquet file, the rows holding NaN (pandas reads NaN as null)."""
    suffix = _suffix(path)
    if not path.is_file():
        raise ImportProblem(f"{path}: no such file")
    nan_rows: dict[str, np.ndarray] = {}
    try:
        if suffix in PARQUET_SUFFIXES:
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            data = pq.read_table(path)
            for name in data.column_names:
                if pa.types.is_floating(data.schema.field(name).type):
                    nan = pc.fill_null(pc.is_nan(data.column(name)), False)
                    nan_rows[str(name).strip()] = nan.to_numpy(zero_copy_only=False)
            frame = data.to_pandas()
        else:
            frame = pd.read_csv(
                path,
                sep="\t" if suffix.startswith(".tsv") else ",",
                dtype=str,
                keep_default_na=False,
                na_values=list(NA_VALUES),
                encoding="utf-8-sig",  # Excel writes a BOM that would stick to the first header
                skipinitialspace=True,
            )
    except UnicodeDecodeError as exc:
        raise ImportProblem(
            f"{path.name}: not UTF-8 text ({exc.reason}); re-save as UTF-8"
        ) from exc
    except (OSError, ValueError) as exc:  # pandas/pyarrow parse errors are ValueErrors
        raise ImportProblem(f"{path.name}: cannot read the file: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise ImportProblem(f"{path.name}: column names appear twice: {', '.join(duplicated)}")
    return frame.reset_index(drop=True), nan_rows


def has_column(path: Path, name: str) -> bool:
    """Does the file have a column ``name``? Reads the header (CSV) or the schema (parquet)."""
    if _suffix(path) in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        return name in pq.read_schema(path).names
    _read_header = pd.read_csv(path, nrows=0, sep="\t" if ".tsv" in path.name.lower() else ",",
                               encoding="utf-8-sig")  # fmt: skip
    return name in [str(c).strip() for c in _read_header.columns]


def _as_text(raw: pd.DataFrame) -> pd.DataFrame:
    """Every source value as text: what the rejects file shows and what event ids hash."""
    return raw.astype("string")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:8]


def _resolve_sources(
    raw: pd.DataFrame,
    spec: contract.Table,
    mapping: dict[str, str],
    where: str,
    event_type: str | None,
    need_timestamp: bool = True,
) -> dict[str, str]:
    """Contract field -> source column: the mapping, else a column named like the field."""
    columns = list(raw.columns)
    for target, source in mapping.items():
        if source not in columns:
            raise ImportProblem(
                f"{where}: --map {target}={source} names no column of the file; "
                f"its columns are: {', '.join(columns)}"
            )
    sources: dict[str, str] = {}
    for name in spec.column_names:
        if name in mapping:
            sources[name] = mapping[name]
        elif name in columns and not (name == "event_type" and event_type is not None):
            sources[name] = name
    defaultable = set(_DEFAULTABLE[spec.name])
    if event_type is not None:
        defaultable.add("event_type")
    for column in spec.columns:
        # the day comes from the timestamp; a catalogue of attributes has no day
        required = (not column.nullable or column.name == spec.timestamp) and (
            need_timestamp or column.name != spec.timestamp
        )
        if required and column.name not in sources and column.name not in defaultable:
            hint = " or pass --event-type" if column.name == "event_type" else ""
            raise ImportProblem(
                f"{where}: {spec.name}.{column.name} is required but the file has no column "
                f"named {column.name!r}; map one with --map {column.name}=COLUMN{hint} "
                f"(its columns are: {', '.join(columns)})"
            )
    return sources


# ---- value conversion (vectorised) ----------------------------------------------------------


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "")


_EXPLICIT_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?|\b(?:UTC|GMT))\s*$"


def _parse_timestamps(
    values: pd.Series, timezone: str | None = None, timestamp_format: str | None = None
) -> pd.Series:
    """Any common timestamp spelling as ``datetime64[us, UTC]``, in the shop's ``timezone``.

    Naive values are wall-clock times of ``timezone`` (UTC when None); values with an offset or
    zone keep it, epoch numbers are absolute. See :func:`_parse_utc` for the spellings guessed
    without ``timestamp_format``; with it (strftime codes, e.g. ``%d/%m/%Y %H:%M``) text is read
    under that format only, which settles ``01/03/2011`` when no day of the file is above 12.
    """
    if timestamp_format is not None and not (
        pd.api.types.is_datetime64_any_dtype(values.dtype)
        or (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values))
    ):
        parsed = pd.to_datetime(
            _text(values).astype(object), format=timestamp_format, errors="coerce"
        )
        if getattr(parsed.dt, "tz", None) is not None:  # the format carries %z
            return parsed.dt.tz_convert("UTC").dt.as_unit("us")
        local = parsed.dt.tz_localize(
            timezone or "UTC",
            ambiguous=np.zeros(len(parsed), dtype=bool),
            nonexistent="shift_forward",
        )
        return local.dt.tz_convert("UTC").dt.as_unit("us")
    parsed = _parse_utc(values)
    if timezone in (None, "UTC") or isinstance(values.dtype, pd.DatetimeTZDtype):
        return parsed
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return parsed
    if pd.api.types.is_datetime64_dtype(values.dtype):
        naive = parsed.notna()
    else:
        text = _text(values)
        epoch = text.str.fullmatch(r"-?\d{9,19}(\.\d+)?", na=False)
        naive = parsed.notna() & ~epoch & ~text.str.contains(_EXPLICIT_ZONE, regex=True, na=False)
    if naive.any():
        wall = parsed[naive].dt.tz_localize(None)
        # an hour that repeats when clocks go back is read as the later (standard-time) one;
        # an hour that does not exist when they go forward moves forward
        local = wall.dt.tz_localize(
            timezone, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="shift_forward"
        )
        parsed = parsed.copy()
        parsed[naive] = local.dt.tz_convert("UTC").dt.as_unit("us")
    return parsed


def _parse_utc(values: pd.Series) -> pd.Series:
    """Any common timestamp spelling as ``datetime64[us, UTC]``; NaT where it cannot be parsed.

    Naive values are taken as UTC. Numbers (or digit strings) are epoch seconds, millis, micros or
    nanos by magnitude. Text is tried as ISO 8601 first (vectorised), then under formats guessed
    from the values (vectorised per format), and only what is left goes through pandas' slow
    per-value "mixed" parser. ``05/03/2024`` is read month first unless the column has a value
    such as ``25/03/2024`` that only makes sense day first.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.as_unit("us")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").dt.as_unit("us")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return _from_epoch(values.astype("float64")).dt.as_unit("us")
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    text = _text(values)
    epoch = text.str.fullmatch(r"-?\d{9,19}(\.\d+)?", na=False)
    if epoch.any():
        result[epoch] = _from_epoch(pd.to_numeric(text[epoch].astype(object)).astype("float64"))
    rest = text.notna() & ~epoch
    if rest.any():
        result[rest] = pd.to_datetime(
            text[rest].astype(object), format="ISO8601", utc=True, errors="coerce"
        )
    left = rest & result.isna()
    if left.any():
        # Only d/m/y-looking values may be read day first: dateutil would read 2024/03/05 as
        # 3 May when asked for day first.
        dmy = left & text.str.match(_DMY, na=False)
        day_first = _looks_day_first(text[dmy])
        for part, first in ((dmy, day_first), (left & ~dmy, False)):
            if part.any():
                result[part] = _parse_by_guessed_formats(text[part], day_first=first)
    return result.dt.as_unit("us")


_DMY = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}"


def _parse_by_guessed_formats(text: pd.Series, day_first: bool) -> pd.Series:
    """Parse under the format of the first unparsed value, a few times, then value by value.

    Exports use one or two formats per column, so this is nearly always vectorised.
    """
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    todo = text.notna()
    for _ in range(5):
        if not todo.any():
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "dayfirst" advice; handled above
            fmt = guess_datetime_format(text[todo].iloc[0], dayfirst=day_first)
        if fmt is None:
            break
        parsed = pd.to_datetime(text[todo].astype(object), format=fmt, utc=True, errors="coerce")
        if parsed.isna().all():
            break
        result[todo] = parsed
        todo &= result.isna()
    if todo.any():
        result[todo] = pd.to_datetime(
            text[todo].astype(object), format="mixed", dayfirst=day_first, utc=True, errors="coerce"
        )
    return result


def _from_epoch(numbers: pd.Series) -> pd.Series:
    """Epoch numbers as UTC timestamps; the unit follows the magnitude (10 digits = seconds...)."""
    result = pd.Series(pd.NaT, index=numbers.index, dtype="datetime64[ns, UTC]")
    magnitude = numbers.abs()
    bounds = [("s", 0, 1e11), ("ms", 1e11, 1e14), ("us", 1e14, 1e17), ("ns", 1e17, np.inf)]
    for unit, low, high in bounds:
        part = numbers.notna() & (magnitude >= low) & (magnitude < high)
        if part.any():
            result[part] = pd.to_datetime(numbers[part], unit=unit, utc=True, errors="coerce")
    return result


def _looks_day_first(text: pd.Series) -> bool:
    parts = text.str.extract(_DMY)
    first = pd.to_numeric(parts[0], errors="coerce")
    second = pd.to_numeric(parts[1], errors="coerce")
    return bool((first > 12).any() and not (second > 12).any())


def _parse_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers as float64 plus a mask of values that are present but not numbers.

    Currency symbols/codes and thousands separators are stripped (``"$1,299.00"`` -> 1299.0); a
    comma followed by one or two final digits is a decimal comma (``"12,50 €"`` -> 12.5).
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        bad = values.notna() & ~np.isfinite(numbers)
        return numbers.where(~bad), bad
    text = _text(values)
    numbers = pd.to_numeric(text.astype(object), errors="coerce").astype("float64")
    messy = numbers.isna() & text.notna()
    if messy.any():
        cleaned = (
            text[messy]
            .str.replace(r"[A-Za-z]{2,}", "", regex=True)  # USD, EUR, kr, pcs
            .str.replace(r"[^0-9.,eE+-]", "", regex=True)  # $, €, spaces, apostrophes
        )
        decimal_comma = cleaned.str.contains(r",\d{1,2}$", na=False)
        cleaned = cleaned.mask(
            decimal_comma, cleaned.str.replace(".", "", regex=False).str.replace(",", ".")
        ).str.replace(",", "", regex=False)
        numbers[messy] = pd.to_numeric(cleaned.astype(object), errors="coerce")
    bad = text.notna() & ~np.isfinite(numbers.fillna(np.inf))  # present but no finite number
    return numbers.where(~bad), bad


def _parse_bools(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """true/false/1/0/yes/no as booleans (nulls stay null) plus a mask of unrecognised values."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), pd.Series(False, index=values.index)
    text = _text(values).str.lower()
    parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
    parsed[text.isin(_TRUE).fillna(False)] = True
    parsed[text.isin(_FALSE).fillna(False)] = False
    return parsed, text.notna() & parsed.isna()


def _normalize_event_types(values: pd.Series) -> pd.Series:
    key = _text(values).str.lower().str.replace(r"[\s-]+", "_", regex=True)
    return key.map(EVENT_TYPE_SYNONYMS, na_action="ignore").astype("string")


def _row_ids(text: pd.DataFrame) -> pd.Series:
    """Deterministic event ids: a hash of the row's values and its ordinal among identical rows.

    Re-importing the same file gives the same ids, and two identical rows (two identical order
    lines are legitimate) still get distinct ones. ``hash_pandas_object`` is vectorised and keyed
    with fixed keys, so ids are stable across runs; 20 hex chars = 80 bits.
    """
    if text.empty:
        return pd.Series([], index=text.index, dtype="string")
    row_hash = pd.util.hash_pandas_object(text, index=False)
    ordinal = row_hash.groupby(row_hash, sort=False).cumcount()
    keyed = text.assign(**{"\x1fordinal": ordinal.astype("int64")})
    high = pd.util.hash_pandas_object(keyed, index=False, hash_key=_HASH_KEYS[0]).to_numpy()
    low = pd.util.hash_pandas_object(keyed, index=False, hash_key=_HASH_KEYS[1]).to_numpy()
    high_bytes = high.astype(">u8").view(np.uint8).reshape(-1, 8)
    low_bytes = low.astype(">u8").view(np.uint8).reshape(-1, 8)[:, : EVENT_ID_HEX_CHARS // 2 - 8]
    digest = np.ascontiguousarray(np.concatenate([high_bytes, low_bytes], axis=1))
    # one hex string for all rows, cut into fixed-width ids: no per-row Python
    hexes = np.array([digest.tobytes().hex()]).view(f"<U{EVENT_ID_HEX_CHARS}")
    return pd.Series(np.char.add(EVENT_ID_PREFIX, hexes), index=text.index, dtype="string")


# ---- conversion of a whole frame --------------------------------------------------------------


@dataclass
class _Check:
    priority: int
    kind: str  # the reason without the offending value, used for counts
    mask: pd.Series
    detail: pd.Series | None = None  # the offending source text, appended to the row's reason


def _id_checks(name: str, ids: pd.Series) -> list[_Check]:
    """Ids are keys: bounded length, printable. The offending value is described, not quoted
    in full (a 2,000,000-character id would swamp the reason; the rejects file keeps it)."""
    lengths = ids.str.len()
    too_long = (lengths > contract.ID_MAX_LENGTH).fillna(False)
    control = ids.str.contains(contract.CONTROL_CHARACTERS_PATTERN, regex=True).fillna(False)
    return [
        _Check(
            _P_MISSING_ID,
            f"{name} longer than {contract.ID_MAX_LENGTH} characters",
            too_long,
            lengths.astype("string") + " characters",
        ),
        _Check(
            _P_MISSING_ID,
            f"control characters in {name}",
            control,
            ids.str.slice(0, 40).str.replace(r"[\x00-\x1f\x7f]", "?", regex=True),
        ),
    ]


def _non_finite(values: pd.Series, nan_rows: np.ndarray | None) -> pd.Series:
    """±inf and NaN where a number is expected. Text markers of NaN ("NaN", "null"...) are
    blanks already (``NA_VALUES``); a NaN *value* in a parquet float column is not."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        mask = pd.Series(np.isinf(values.astype("float64").to_numpy()), index=values.index)
    else:
        words = _text(values).str.lower().str.lstrip("+-")
        mask = words.isin(("inf", "infinity", "nan")).fillna(False).astype(bool)
    if nan_rows is not None:
        mask |= pd.Series(nan_rows, index=values.index)
    return mask


def _convert(
    raw: pd.DataFrame,
    text: pd.DataFrame,
    spec: contract.Table,
    sources: dict[str, str],
    event_type: str | None,
    nan_rows: dict[str, np.ndarray] | None = None,
    timezone: str | None = None,
    timestamp_format: str | None = None,
) -> tuple[pd.DataFrame, list[_Check]]:
    """The contract columns converted from the source, plus the checks that decide rejects."""
    out = pd.DataFrame(index=raw.index)
    checks: list[_Check] = []
    nan_rows = nan_rows or {}
    for column in spec.columns:
        name = column.name
        source = sources.get(name)
        values = raw[source] if source is not None else None
        shown = text[source] if source is not None else None
        if column.kind == "id":
            if values is None:
                out[name] = _row_ids(text) if name == "event_id" else _nulls(raw, "string")
                continue
            ids = contract.normalize_ids(values)
            out[name] = ids
            if not column.nullable:
                given = values.notna()
                blank = f"blank {name} (empty or whitespace only)"
                checks.append(_Check(_P_MISSING_ID, f"missing {name}", ~given))
                checks.append(_Check(_P_MISSING_ID, blank, given & ids.isna()))
            checks.extend(_id_checks(name, ids))
        elif column.kind == "timestamp":
            if values is None:
                out[name] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
                continue
            stamps = _parse_timestamps(values, timezone, timestamp_format)
            out[name] = stamps
            present = _text(shown).notna()
            if not column.nullable or name == spec.timestamp:
                checks.append(_Check(_P_TIMESTAMP, f"missing {name}", ~present))
            checks.append(
                _Check(_P_TIMESTAMP, f"unparseable {name}", present & stamps.isna(), shown)
            )
        elif column.kind in ("float", "int"):
            if values is None:
                default = 1.0 if name == "quantity" else np.nan
                out[name] = pd.Series(default, index=raw.index, dtype="float64")
                continue
            numbers, bad = _parse_numbers(values)
            non_finite = _non_finite(values, nan_rows.get(source))
            numbers = numbers.where(~non_finite)
            out[name] = numbers
            bad = bad & ~non_finite
            finite_kind = _P_FLOAT if column.kind == "float" else _P_INT
            checks.append(_Check(finite_kind, f"{name} not a finite number", non_finite, shown))
            if column.max_value is not None:
                limit = f"{name} above {column.max_value:,.0f}"
                checks.append(_Check(_P_RANGE, limit, numbers > column.max_value, shown))
            if column.kind == "float":
                checks.append(_Check(_P_FLOAT, f"unparseable {name}", bad, shown))
                if not column.nullable:
                    checks.append(_Check(_P_FLOAT, f"missing {name}", numbers.isna() & ~bad))
                if column.min_value == 0 and column.exclusive_min:
                    checks.append(_Check(_P_RANGE, f"non-positive {name}", numbers <= 0))
                continue
            whole = numbers.isna() | (numbers == np.floor(numbers))
            checks.append(_Check(_P_INT, f"unparseable {name}", bad, shown))
            checks.append(_Check(_P_INT, f"non-integer {name}", ~whole, shown))
            if not column.nullable:
                checks.append(_Check(_P_INT, f"missing {name}", numbers.isna() & ~bad))
            negative = "negative quantity (cancellation/return)" if name == "quantity" else None
            checks.append(_Check(_P_NEGATIVE, negative or f"negative {name}", numbers < 0))
            checks.append(_Check(_P_ZERO, f"zero {name}", numbers == 0))
        elif column.kind == "bool":
            if values is None:
                out[name] = pd.Series(False, index=raw.index, dtype="boolean")
                continue
            flags, bad = _parse_bools(values)
            out[name] = flags.fillna(False)  # blank consent is no consent
            checks.append(_Check(_P_VALUE, f"unparseable {name}", bad, shown))
        else:  # string
            if name == "event_type" and event_type is not None:
                out[name] = pd.Series(event_type, index=raw.index, dtype="string")
                continue
            if values is None:
                out[name] = _nulls(raw, "string")
                continue
            strings = _text(values)
            if name == "event_type":
                strings = _normalize_event_types(values)
            elif name == "country":
                strings = strings.str.upper()
            elif name == "device":
                strings = strings.str.lower()
            out[name] = strings
            given = _text(values).notna()
            if not column.nullable:
                checks.append(_Check(_P_VALUE, f"missing {name}", ~given))
            if column.allowed is not None:
                unknown = given & ~strings.isin(column.allowed).fillna(False)
                checks.append(_Check(_P_VALUE, f"unknown {name}", unknown, shown))
            if column.pattern is not None:
                invalid = given & ~strings.str.fullmatch(column.pattern).fillna(False)
                checks.append(_Check(_P_VALUE, f"invalid {name}", invalid, shown))
    if spec.name == "events":
        # The contract requires a price on purchases (add_to_cart without one is left to the
        # validation suite, deliberately: click logs often do not carry prices).
        no_price = (out["event_type"] == "purchase").fillna(False) & out["price"].isna()
        checks.append(_Check(_P_PRICE_FOR_PURCHASE, "missing price for purchase", no_price))
    return out, checks


def _nulls(raw: pd.DataFrame, dtype: str) -> pd.Series:
    return pd.Series(pd.NA, index=raw.index, dtype=dtype)


def _reasons(checks: list[_Check], keys: pd.Series, key_name: str) -> tuple[pd.Series, pd.Series]:
    """Per row the first failing check: its kind (for counts) and its full text (for the file)."""
    kind = pd.Series(pd.NA, index=keys.index, dtype="string")
    full = pd.Series(pd.NA, index=keys.index, dtype="string")
    for check in sorted(checks, key=lambda c: c.priority):  # stable: columns keep their order
        hit = check.mask.fillna(False).astype(bool) & kind.isna()
        if not hit.any():
            continue
        kind[hit] = check.kind
        if check.detail is None:
            full[hit] = check.kind
        else:
            full[hit] = check.kind + ": " + check.detail[hit].fillna("").astype("string")
    # Keys must be unique in a batch: later copies of an otherwise valid row are rejected.
    valid = kind.isna()
    duplicate = valid & keys.where(valid).duplicated(keep="first") & keys.notna()
    kind[duplicate] = f"duplicate {key_name}"
    full[duplicate] = f"duplicate {key_name}: " + keys[duplicate].astype("string")
    return kind, full


# ---- writing -----------------------------------------------------------------------------------


def _replace_file(target: Path, write: Callable[[Path], None]) -> None:
    """Write ``target`` under a hidden temp name beside it, then rename: readers never see half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temp)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_days(
    frame: pd.DataFrame,
    spec: contract.Table,
    root: Path,
    file_name: str,
    progress: Callable[[int], None] | None,
) -> list[Path]:
    written: list[Path] = []
    days = frame[spec.timestamp].dt.floor("D")
    for day, rows in frame.groupby(days, sort=True):
        target = partitions.partition_dir(root, spec.name, pd.Timestamp(day).date())
        data = contract.to_arrow(rows.reset_index(drop=True), spec)
        _replace_file(target / file_name, lambda p, data=data: partitions.write_table(data, p))
        written.append(target)
        if progress is not None:
            progress(len(rows))
    return written


def remove_stale(root: Path, spec: contract.Table, file_name: str, keep: set[date]) -> None:
    """Drop this import's file from days a previous import of the same bytes wrote but this one
    did not (e.g. after fixing a timestamp mapping), so re-importing never leaves leftovers."""
    for day, directory in partitions.iter_partitions(root, spec.name):
        stale = directory / file_name
        if day in keep or not stale.exists():
            continue
        stale.unlink()
        with contextlib.suppress(OSError):  # only if now empty: an empty day looks landed
            directory.rmdir()


def _write_rejects(
    text: pd.DataFrame, kind: pd.Series, full: pd.Series, target: Path
) -> Path | None:
    rejected = kind.notna()
    if not rejected.any():
        target.unlink(missing_ok=True)  # a stale one from an earlier import of the same file
        return None
    rows = text[rejected].copy()
    rows["_row"] = rows.index
    rows["_reason"] = full[rejected]
    _replace_file(target, lambda p: rows.to_csv(p, index=False))
    return target


# ---- the entry point ---------------------------------------------------------------------------


def import_file(
    path: Path,
    table: str,
    mapping: dict[str, str],
    *,
    settings: Settings,
    event_type: str | None = None,
    timezone: str | None = None,
    timestamp_format: str | None = None,
    carry: dict[str, str] | None = None,
    land: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Convert ``path`` into ``table`` per ``mapping`` (contract field -> source column); land it.

    Contract fields not mapped are taken from a column of the same name when the file has one.
    ``event_type`` sets a constant event type (order lines are all purchases). ``timezone`` is
    the zone of naive timestamps (the shop's wall clock; default UTC); day partitions are UTC
    days whatever it is. ``timestamp_format`` (strftime codes) is the one spelling of text
    timestamps, instead of guessing it. ``carry`` (name -> source column) keeps source columns
    of the accepted rows in ``report.accepted`` without landing them (item attributes on event
    rows). With
    ``land=False`` the file is a catalogue of attributes (no timestamp needed): its rows are
    converted and checked, rejects written, and returned in ``report.accepted`` only.
    ``progress`` is called with the row count of each day partition written, then once with the
    number of rejected rows, so its calls add up to ``rows_read``.

    Raises :class:`ImportProblem` for problems with the request itself (nothing is written then);
    bad rows never raise, they are counted and written to the rejects file.
    """
    path = Path(path)
    spec = _spec(table)
    where = path.name
    check_targets(mapping, spec, where)
    check_timezone(timezone)
    if event_type is not None:
        if spec.name != "events":
            raise ImportProblem(f"{where}: --event-type only applies to --table events")
        if event_type not in contract.EVENT_TYPES:
            raise ImportProblem(
                f"{where}: --event-type {event_type!r} is not an event type of the contract; "
                f"expected one of: {', '.join(contract.EVENT_TYPES)}"
            )
        if "event_type" in mapping:
            raise ImportProblem(
                f"{where}: give either --event-type or --map event_type=COLUMN, not both"
            )

    raw, nan_rows = _read(path)
    sources = _resolve_sources(raw, spec, mapping, where, event_type, need_timestamp=land)
    carry = carry or {}
    for name, source in carry.items():
        if source not in raw.columns:
            raise ImportProblem(
                f"{where}: --items-map {name}={source} names no column of the file; "
                f"its columns are: {', '.join(map(str, raw.columns))}"
            )
    text = _as_text(raw)
    digest = file_digest(path)

    out, checks = _convert(
        raw, text, spec, sources, event_type, nan_rows, timezone, timestamp_format
    )
    kind, full = _reasons(checks, out[spec.key], spec.key)
    file_name = f"{IMPORT_FILE_PREFIX}{digest}.parquet"
    if land:
        _reject_keys_loaded_elsewhere(kind, full, out[spec.key], settings, spec, file_name)
    accepted = kind.isna()

    if spec.name == "items":  # free attributes of the catalogue: keep what was not mapped
        used = set(sources.values())
        for extra in raw.columns:
            if extra not in used and extra not in spec.column_names:
                values = raw[extra]
                # CSV text stays text, even an all-blank column (else Arrow would type it null)
                out[extra] = values.astype("string") if values.dtype == object else values

    good = out[accepted]
    if "quantity" in good.columns:
        good = good.assign(quantity=good["quantity"].astype("int64"))
    good = good.sort_values([spec.timestamp, spec.key], kind="stable", na_position="first")
    carried = pd.DataFrame({name: _text(raw[source]) for name, source in carry.items()})
    carried = carried.reindex(good.index).reset_index(drop=True)

    root = settings.landing_dir
    written: list[Path] = []
    if len(good) and land:  # an all-rejected import leaves landing as it was
        written = write_days(good, spec, root, file_name, progress)
        remove_stale(root, spec, file_name, _days(written))
        if spec.name == "events":
            mark_partial_last_day(good, root, path.name)

    rejects_target = settings.rejects_dir / f"{spec.name}-{_stem(path)}-{digest}.csv"
    rejects_file = _write_rejects(text, kind, full, rejects_target)
    counts = kind[kind.notna()].value_counts()
    rejected = {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
    if progress is not None and rejected:
        progress(sum(rejected.values()))

    return ImportReport(
        source=path,
        table=spec.name,
        rows_read=len(raw),
        rows_written=len(good),
        rejected=rejected,
        partitions=written,
        rejects_file=rejects_file,
        accepted=pd.concat([good.reset_index(drop=True), carried], axis=1),
    )


PARTIAL_DAY_FILE = "_partial.json"


def partial_last_day(stamps: pd.Series) -> tuple[date, pd.Timestamp] | None:
    """(day, last event) when the log's last day stops earlier than any other day does.

    Exports are cut at the moment they are taken: the last day holds the morning only, and
    judged against whole days it looks like a collapse in volume. Only a day that ends before
    every other day of the log (at least three) counts, so a shop's usual early closing day does
    not.
    """
    if stamps.empty:
        return None
    days = stamps.dt.floor("D")
    last_by_day = stamps.groupby(days).max()
    if len(last_by_day) < 4:
        return None
    clock = last_by_day - last_by_day.index
    last_day = last_by_day.index.max()
    if clock[last_day] >= clock.drop(last_day).min():
        return None
    return last_day.date(), last_by_day[last_day]


def mark_partial_last_day(events: pd.DataFrame, root: Path, source: str) -> None:
    """Leave ``_partial.json`` in the partial last day's landing partition (or remove a stale
    one of this import): validation then checks that day's volume against the floor only."""
    found = partial_last_day(events["event_ts"])
    for _, directory in partitions.iter_partitions(root, "events"):
        marker = directory / PARTIAL_DAY_FILE
        if marker.exists() and json.loads(marker.read_text()).get("source") == source:
            marker.unlink()
    if found is None:
        return
    day, last = found
    marker = partitions.partition_dir(root, "events", day) / PARTIAL_DAY_FILE
    record = {
        "source": source,
        "last_event": last.isoformat(),
        "reason": f"the export {source} ends at {last:%H:%M} UTC on {day}, earlier than on "
        "any other day: a partial day",
    }
    _replace_file(marker, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))


def check_timezone(timezone: str | None) -> None:
    """An unknown zone is a usage problem, raised before any file is read."""
    if timezone is None:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportProblem(
            f"--timezone {timezone!r} is not a known IANA zone; e.g. Europe/London, "
            "America/New_York, UTC"
        ) from None


def landed_keys(settings: Settings, table: str, own_file_name: str | None = None) -> pd.Index:
    """Keys of ``table`` already in landing or curated, except those of ``own_file_name``.

    An import's own file is left out (re-importing the same bytes is not a duplicate), and so
    is what curated holds *because of* that file.
    """
    import pyarrow.parquet as pq

    spec = _spec(table)

    def keys(files: list[Path]) -> pd.Index:
        if not files:
            return pd.Index([], dtype=object)
        arrays = [pq.read_table(f, columns=[spec.key]).column(spec.key) for f in files]
        return pd.Index(np.concatenate([a.to_numpy(zero_copy_only=False) for a in arrays]))

    landing = [
        f
        for _, directory in partitions.iter_partitions(settings.landing_dir, table)
        for f in partitions.parquet_files(directory)
    ]
    curated = [
        f
        for _, directory in partitions.iter_partitions(settings.curated_dir, table)
        for f in partitions.parquet_files(directory)
    ]
    own = keys([f for f in landing if f.name == own_file_name])
    others = keys([f for f in landing if f.name != own_file_name])
    return others.union(keys(curated).difference(own)).unique()


def _reject_keys_loaded_elsewhere(
    kind: pd.Series,
    full: pd.Series,
    keys: pd.Series,
    settings: Settings,
    spec: contract.Table,
    file_name: str,
) -> None:
    """A key another import (or day) already landed is a duplicate line, e.g. from overlapping
    exports. Rejected here with its reason; left in, it would quarantine that day whole."""
    valid = kind.isna() & keys.notna()
    if not valid.any():
        return
    elsewhere = landed_keys(settings, spec.name, file_name)
    if elsewhere.empty:
        return
    duplicate = valid & keys.isin(elsewhere)
    reason = f"duplicate {spec.key} (already landed by another import or day)"
    kind[duplicate] = reason
    full[duplicate] = reason + ": " + keys[duplicate].astype("string")


def _days(directories: list[Path]) -> set[date]:
    return {
        date.fromisoformat(d.name.removeprefix(partitions.PARTITION_PREFIX)) for d in directories
    }
