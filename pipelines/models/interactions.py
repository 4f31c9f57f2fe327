"""Implicit feedback: who touched what, how strongly, how recently — read from files or events.

Two kinds of input reach the recommender and are made to look alike here:

* the platform's own ``events`` (``user_id, item_id, event_type, event_ts, ...``), where the
  strength of an interaction comes from its type (a purchase says more than a view);
* a plain interaction file — ``personalize recommend evaluate --train F --test F`` takes CSV or
  parquet such as MovieLens' ``userId,movieId,rating,timestamp`` — where the strength is an
  explicit ``weight`` or ``rating`` column, or 1 when there is neither.

:func:`normalize_interactions` maps common column spellings onto ``user_id, item_id`` plus
whichever of ``weight``, ``event_type``, ``timestamp`` exist; :func:`read_interactions` does the
same for a file, with errors that name the file and the column. :func:`interaction_matrix` turns
the frame into a user x item CSR matrix of summed strengths, each interaction discounted by
``0.5 ** (age_days / half_life_days)`` so that last week's purchase outweighs one from last year.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scipy import sparse

DEFAULT_WEIGHTS: Mapping[str, float] = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")

# Spellings seen in public datasets and shop exports, compared lower-cased with "_", "-" and
# spaces removed: MovieLens (userId, movieId), Retailrocket (visitorid, itemid, event),
# Amazon reviews (reviewerID, asin, overall), H&M (customer_id, article_id), Last.fm, Goodreads.
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "user_id": (
        "userid",
        "user",
        "uid",
        "customerid",
        "customer",
        "visitorid",
        "visitor",
        "clientid",
        "memberid",
        "accountid",
        "reviewerid",
    ),
    "item_id": (
        "itemid",
        "item",
        "iid",
        "movieid",
        "movie",
        "productid",
        "product",
        "sku",
        "articleid",
        "trackid",
        "bookid",
        "isbn",
        "asin",
        "contentid",
    ),
    "weight": ("weight", "confidence", "count", "plays", "playcount", "clicks", "strength"),
    "rating": ("rating", "ratings", "stars", "overall", "score"),
    "event_type": ("eventtype", "event", "action", "interactiontype", "behavior", "behaviour"),
    "timestamp": (
        "timestamp",
        "eventts",
        "ts",
        "time",
        "datetime",
        "date",
        "eventtime",
        "createdat",
        "ratedat",
        "unixreviewtime",
        "tdat",
    ),
}


class InteractionsError(ValueError):
    """Interaction data that cannot be used, saying which file or column and what to change."""


@dataclass(frozen=True)
class Interactions:
    """A user x item matrix of interaction strengths and the ids of its rows and columns."""

    matrix: sparse.csr_matrix
    user_ids: pd.Index
    item_ids: pd.Index

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_interactions(self) -> int:
        return int(self.matrix.nnz)


def _key(name: object) -> str:
    return re.sub(r"[\s_\-.]", "", str(name)).lower()


def _find_column(columns: Iterable[object], target: str) -> object | None:
    by_key: dict[str, object] = {}
    for column in columns:
        by_key.setdefault(_key(column), column)
    for spelling in (_key(target), *COLUMN_SYNONYMS[target]):
        if spelling in by_key:
            return by_key[spelling]
    return None


def _parse_timestamps(values: pd.Series, source: str, column: object) -> pd.Series:
    """Epoch numbers (s, ms, us or ns by magnitude), datetimes or ISO text -> UTC timestamps."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        magnitude = float(numeric.abs().max()) if len(numeric) else 0.0
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
        if magnitude >= 1e17:
            unit = "ns"
        return pd.to_datetime(numeric, unit=unit, utc=True)
    try:
        return pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError) as error:
        bad = values[pd.to_datetime(values, utc=True, errors="coerce", format="mixed").isna()]
        raise InteractionsError(
            f"{source}: column {column!r} holds values that are not timestamps "
            f"(e.g. {bad.iloc[0]!r}); use epoch seconds or ISO 8601, or drop the column"
        ) from error


def normalize_interactions(frame: pd.DataFrame, *, source: str = "interactions") -> pd.DataFrame:
    """``frame`` with columns ``user_id, item_id`` (+ ``weight``, ``event_type``, ``timestamp``).

    Column names are matched loosely (``userId``, ``customer_id`` -> ``user_id``; ``movieId``,
    ``sku`` -> ``item_id``; ``rating`` -> ``weight``). ``weight`` wins over ``rating`` when
    both exist; ``event_type`` is kept so :func:`interaction_matrix` can weight by type.
    ``source`` names the data in error messages.
    """
    picked: dict[str, object] = {}
    for target in ("user_id", "item_id", "weight", "rating", "event_type", "timestamp"):
        column = _find_column(frame.columns, target)
        if column is not None and column not in picked.values():
            picked[target] = column
    for required in ("user_id", "item_id"):
        if required not in picked:
            raise InteractionsError(
                f"{source}: no {required} column; columns are {list(frame.columns)}. Name one "
                f"{required} (or one of {', '.join(COLUMN_SYNONYMS[required][:6])}, ...)"
            )
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for target in ("user_id", "item_id"):
        values = frame[picked[target]]
        if values.isna().any():
            raise InteractionsError(
                f"{source}: column {picked[target]!r} ({target}) is empty in "
                f"{int(values.isna().sum())} row(s); every interaction needs both ids"
            )
        out[target] = values.astype(str).to_numpy()
    strength = picked.get("weight", picked.get("rating"))
    if strength is not None:
        weight = pd.to_numeric(frame[strength], errors="coerce")
        bad = weight.isna() | ~np.isfinite(weight) | (weight < 0)
        if bad.any():
            example = frame[strength][bad].iloc[0]
            raise InteractionsError(
                f"{source}: column {strength!r} must hold non-negative numbers; "
                f"{int(bad.sum())} row(s) do not (e.g. {example!r})"
            )
        out["weight"] = weight.astype(float).to_numpy()
    if "event_type" in picked:
        out["event_type"] = frame[picked["event_type"]].astype(str).str.lower().to_numpy()
    if "timestamp" in picked:
        column = picked["timestamp"]
        stamps = frame[column]
        if stamps.isna().any():
            raise InteractionsError(
                f"{source}: column {column!r} (timestamp) is empty in "
                f"{int(stamps.isna().sum())} row(s); fill it or drop the column"
            )
        parsed = _parse_timestamps(stamps.reset_index(drop=True), source, column)
        out["timestamp"] = parsed.astype("datetime64[us, UTC]").array
    return out


def read_interactions(path: str | Path) -> pd.DataFrame:
    """Read a CSV (comma, tab or semicolon) or parquet interaction file, normalized.

    CSV ids are read as text, so ``00123`` stays ``00123``.
    """
    path = Path(path)
    if not path.is_file():
        raise InteractionsError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for unreadable files
            raise InteractionsError(f"{path}: not a readable parquet file ({error})") from error
    elif name.endswith(CSV_SUFFIXES):
        try:
            frame = pd.read_csv(path, dtype=str, sep=None, engine="python", keep_default_na=True)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            raise InteractionsError(f"{path}: not a readable CSV file ({error})") from error
    else:
        raise InteractionsError(
            f"{path}: unknown file type; use one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
        )
    if frame.empty:
        raise InteractionsError(f"{path}: the file holds no interactions")
    return normalize_interactions(frame, source=str(path))


def _as_normalized(interactions: pd.DataFrame) -> pd.DataFrame:
    """``interactions`` itself when it is already normalized (cheap on 1M rows), else normalized."""
    columns = set(interactions.columns)
    already = (
        {"user_id", "item_id"}
        <= columns
        <= {"user_id", "item_id", "weight", "event_type", "timestamp"}
        and all(pd.api.types.is_object_dtype(interactions[c]) for c in ("user_id", "item_id"))
        and (
            "timestamp" not in columns
            or isinstance(interactions["timestamp"].dtype, pd.DatetimeTZDtype)
        )
    )
    return interactions if already else normalize_interactions(interactions)


def interaction_strength(
    interactions: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    now: pd.Timestamp | None = None,
) -> np.ndarray:
    """The strength of each row: its weight (or its type's weight, or 1), decayed by its age."""
    frame = _as_normalized(interactions)
    weights = DEFAULT_WEIGHTS if weights is None else weights
    if "weight" in frame.columns:
        strength = frame["weight"].to_numpy(dtype=float)
    elif "event_type" in frame.columns:
        kinds = frame["event_type"]
        unknown = sorted(set(kinds.unique()) - set(weights))
        if unknown:
            raise InteractionsError(
                f"event types {unknown[:5]} have no weight; weights are given for "
                f"{sorted(weights)} — add them to weights"
            )
        strength = kinds.map(dict(weights)).to_numpy(dtype=float)
    else:
        strength = np.ones(len(frame))
    if half_life_days is not None:
        if half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive or None, got {half_life_days}")
        if "timestamp" in frame.columns and len(frame):
            stamps = frame["timestamp"]
            reference = stamps.max() if now is None else pd.Timestamp(now)
            if reference.tzinfo is None:
                reference = reference.tz_localize("UTC")
            age_days = (reference - stamps).dt.total_seconds().to_numpy() / 86_400.0
            strength = strength * np.power(0.5, np.clip(age_days, 0.0, None) / half_life_days)
    return strength


def interaction_matrix(
    events: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    now: pd.Timestamp | None = None,
    users: Iterable[str] | None = None,
    items: Iterable[str] | None = None,
) -> Interactions:
    """Users x items CSR matrix of summed, time-decayed strengths, with its id indexes.

    ``weights`` maps event types to strengths (default view 1, add_to_cart 3, purchase 5); a
    ``weight``/``rating`` column is used as is instead. ``now`` is the reference for ages
    (default: the latest timestamp, so the same data always gives the same matrix). ``users``
    and ``items`` fix the rows and columns — interactions outside them are dropped — so that
    a frame can be laid out like a fitted model's matrix; by default ids are sorted.
    """
    from scipy import sparse

    frame = _as_normalized(events)
    strength = interaction_strength(frame, weights=weights, half_life_days=half_life_days, now=now)
    user_ids = (
        pd.Index(np.sort(frame["user_id"].unique()), dtype=object)
        if users is None
        else pd.Index(list(users), dtype=object)
    )
    item_ids = (
        pd.Index(np.sort(frame["item_id"].unique()), dtype=object)
        if items is None
        else pd.Index(list(items), dtype=object)
    )
    for name, index in (("users", user_ids), ("items", item_ids)):
        if not index.is_unique:
            raise ValueError(f"{name} holds duplicate ids")
    rows = user_ids.get_indexer(frame["user_id"])
    cols = item_ids.get_indexer(frame["item_id"])
    keep = (rows >= 0) & (cols >= 0) & (strength > 0)
    matrix = sparse.csr_matrix(
        (strength[keep], (rows[keep], cols[keep])), shape=(user_ids.size, item_ids.size)
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return Interactions(matrix=matrix, user_ids=user_ids, item_ids=item_ids)
