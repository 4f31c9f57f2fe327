"""The online store: materializing intervals, reading features for serving, real-time pushes.

Materialization reads the offline parquet of the interval itself (DuckDB), keeps the latest row
per entity and writes it in bulk, because Feast's own ``materialize`` converts every value
through Python protobuf objects and upserts them one row and statement at a time (~7x slower
here; see ``bench/features_store.py``). The rows are byte for byte those Feast writes (tested;
``feast_compat`` encodes them, the one module that knows Feast's protobuf and key formats), in
the local profile's ``EntityRowSQLiteOnlineStore`` (one row per entity: ``sqlite_store.py``)
as in Feast's own SQLite store (one row per entity and feature).

**Never older over newer.** A row is written only if it is at least as new as what the online
store holds for that entity: re-materializing an older interval (a backfill) leaves newer values
alone, while re-running the same day (late data, same stamp) does replace them. On SQLite the
check is part of the upsert itself (``ON CONFLICT ... WHERE excluded.event_ts >= event_ts``), so
a concurrent writer cannot slip between a read and the write; on other stores (Redis) the online
timestamps of the batch are read first and older rows are dropped before the provider writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.days import epoch_micros_array
from pipelines.features import feast_compat
from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP
from pipelines.features.sql import quote_identifier, quote_literal

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from feast import FeatureService, FeatureStore, FeatureView

    from pipelines.config import Settings

WRITE_BATCH_ROWS = 10_000
"""Entity rows per provider write on non-SQLite stores (one Redis pipeline each)."""
SQLITE_CHUNK_ROWS = 5_000
"""Entity rows per ``executemany`` on SQLite (all chunks in one transaction)."""


class OnlineStoreError(Exception):
    """Online features that cannot be read or written as asked, with what to do about it."""


# ---- materialization ----------------------------------------------------------------------------


def materialize_interval(
    settings: Settings, start: datetime, end: datetime, tables: Sequence[str] | None = None
) -> dict[str, int]:
    """Write the latest row per entity stamped in ``[start, end)`` of each table to the online
    store; entity rows written per table (rows older than what is online are not written).

    ``tables`` defaults to every feature table; a table without offline data gives 0.
    """
    from pipelines.features.store import feature_store

    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        raise OnlineStoreError(f"empty interval: start {start} is not before end {end}")
    names = list(FEATURE_TABLES) if tables is None else list(tables)
    unknown = [n for n in names if n not in FEATURE_TABLES]
    if unknown:
        raise OnlineStoreError(
            f"unknown feature table(s) {unknown}; expected some of {list(FEATURE_TABLES)}"
        )
    store = feature_store(settings)
    written = {}
    for name in names:
        view = _feature_view(store, name)
        rows = latest_rows(view, start, end)
        written[name] = write_online(store, view, rows)
    return written


def latest_rows(view: FeatureView, start: datetime, end: datetime) -> pa.Table:
    """The newest row per entity of ``view``'s batch source with a stamp in ``[start, end)``."""
    import glob

    import duckdb

    source = view.batch_source
    key = view.entity_columns[0].name
    columns = [key, TIMESTAMP, *(f.name for f in view.features)]
    if source is None or not glob.glob(source.path):
        return _empty_table(key)
    select = ", ".join(quote_identifier(c) for c in columns)
    query = f"""
        SELECT {select} FROM read_parquet($path, hive_partitioning = false, union_by_name = true)
        WHERE {quote_identifier(TIMESTAMP)} >= $start AND {quote_identifier(TIMESTAMP)} < $end
        QUALIFY row_number() OVER (PARTITION BY {quote_identifier(key)}
                                   ORDER BY {quote_identifier(TIMESTAMP)} DESC) = 1
    """
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        parameters = {"path": source.path, "start": start, "end": end}
        # .sql, not .execute: DuckDB copies a DB-API result once more to make it Arrow
        return conn.sql(query, params=parameters).to_arrow_table()


def write_online(store: FeatureStore, view: FeatureView, rows: pa.Table | pd.DataFrame) -> int:
    """Write feature rows (join key, ``event_timestamp``, features) of ``view`` to the online
    store, never over newer values; entity rows written.
    """
    import pyarrow as pa

    if not isinstance(rows, pa.Table):
        rows = pa.Table.from_pandas(rows, preserve_index=False)
    if rows.num_rows == 0:
        return 0
    key = view.entity_columns[0].name
    present = set(rows.column_names)
    missing = [c for c in (key, TIMESTAMP, *(f.name for f in view.features)) if c not in present]
    if missing:
        raise OnlineStoreError(
            f"rows for {view.name} lack column(s) {missing}; the columns are defined in "
            "pipelines/features/schema.py"
        )
    rows = _latest_per_key(rows, key)
    from pipelines.features.sqlite_store import TYPE as ENTITY_ROW_SQLITE

    if store.config.online_store.type == ENTITY_ROW_SQLITE:
        return _write_entity_rows(store, view, rows, key)
    if store.config.online_store.type == "sqlite":
        return _write_sqlite(store, view, rows, key)
    return _write_provider(store, view, rows, key)


def _write_entity_rows(store: FeatureStore, view: FeatureView, rows: pa.Table, key: str) -> int:
    """Upserts into ``EntityRowSQLiteOnlineStore`` (one row per entity), guarded by time.

    The ``features`` blob of every row is built column by column
    (``feast_compat.repeated_value_elements``) and joined per row; one ``executemany`` in one
    transaction writes them, in key order.
    """
    import numpy as np

    from pipelines.features.sqlite_store import EntityRowSQLiteOnlineStore, connect, upsert_sql

    config = store.config
    keys = np.array(_entity_keys(rows.column(key).to_pylist(), key, config), dtype=object)
    order = np.argsort(keys)  # in key order the B-tree fills page after page
    rows, keys = rows.take(order), keys[order]
    stamps = epoch_micros_array(rows.column(TIMESTAMP)).tolist()
    columns = [
        feast_compat.repeated_value_elements(rows.column(f.name), _feature_type(f)).tolist()
        for f in view.features
    ]
    blobs = [b"".join(parts) for parts in zip(*columns, strict=True)]
    params = zip(keys.tolist(), stamps, [None] * rows.num_rows, blobs, strict=True)
    path = EntityRowSQLiteOnlineStore.db_path(config)
    conn = connect(path)
    try:
        before = conn.total_changes
        with conn:
            conn.executemany(upsert_sql(feast_compat.online_table_id(config, view)), params)
        changed = conn.total_changes - before
    except sqlite3.OperationalError as error:
        raise OnlineStoreError(_sqlite_error(view, path, error)) from error
    finally:
        conn.close()
    return changed


def _sqlite_error(view: FeatureView, path: str, error: sqlite3.OperationalError) -> str:
    hint = (
        "run `apply_repo(settings, force=True)`: it creates the online tables"
        if "no such table" in str(error)
        else "another process may hold the database; the task's retry will try again"
    )
    return f"cannot write {view.name} to the SQLite online store {path}: {error}; {hint}"


def _write_sqlite(store: FeatureStore, view: FeatureView, rows: pa.Table, key: str) -> int:
    """Upserts in Feast's SQLite row format (one row per entity and feature), guarded by time.

    One statement per entity writes all its feature rows (``VALUES (...), (...)`` with the key
    and stamp bound once), all in one transaction: the Python-side cost per cell is what limits
    SQLite here, and this binds ~2 values per cell instead of 5.
    """
    import numpy as np

    from pipelines.features.sqlite_store import connect

    config = store.config
    table = feast_compat.online_table_id(config, view)
    features = list(view.features)
    types = [_feature_type(f) for f in features]
    n, width = rows.num_rows, len(features)

    keys = np.array(_entity_keys(rows.column(key).to_pylist(), key, config), dtype=object)
    order = np.argsort(keys)  # in key order the B-trees fill page after page
    rows, keys = rows.take(order), keys[order]
    stamps = feast_compat.sqlite_event_timestamps(rows.column(TIMESTAMP))

    def chunk_params(begin: int) -> list[list[Any]]:
        part = rows.slice(begin, SQLITE_CHUNK_ROWS)
        params = np.empty((part.num_rows, 2 + 2 * width), dtype=object)
        params[:, 0] = keys[begin : begin + part.num_rows]
        params[:, 1] = stamps[begin : begin + part.num_rows].tolist()
        for j, feature in enumerate(features):
            column_values, column_texts = feast_compat.value_cells(
                part.column(feature.name), types[j]
            )
            params[:, 2 + 2 * j] = column_values
            params[:, 3 + 2 * j] = column_texts
        return params.tolist()

    values = ", ".join(
        f"(?1, {quote_literal(f.name)}, ?{3 + 2 * j}, ?{4 + 2 * j}, ?2, NULL)"
        for j, f in enumerate(features)
    )
    upsert = (
        f"INSERT INTO {quote_identifier(table)} "
        "(entity_key, feature_name, value, value_text, event_ts, created_ts) "
        f"VALUES {values} ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
        "value = excluded.value, value_text = excluded.value_text, "
        "event_ts = excluded.event_ts, created_ts = excluded.created_ts "
        f"WHERE excluded.event_ts >= {quote_identifier(table)}.event_ts"
    )
    conn = connect(config.online_store.path)
    try:
        before = conn.total_changes
        # one connection, one thread: sharing it with a helper thread misbehaved under load
        with conn:
            for begin in range(0, n, SQLITE_CHUNK_ROWS):
                conn.executemany(upsert, chunk_params(begin))
        changed = conn.total_changes - before
    except sqlite3.OperationalError as error:
        raise OnlineStoreError(_sqlite_error(view, config.online_store.path, error)) from error
    finally:
        conn.close()
    # all features of an entity row carry one stamp: they are written together or not at all
    return changed // width


def _write_provider(store: FeatureStore, view: FeatureView, rows: pa.Table, key: str) -> int:
    """Other stores: drop rows older than what is online, then the provider's batch write."""
    import numpy as np

    stamps = rows.column(TIMESTAMP).to_pandas()
    online = online_timestamps(store, view, rows.column(key).to_pylist())
    pairs = zip(stamps, online, strict=True)
    keep = np.array([current is None or stamp >= current for stamp, current in pairs], dtype=bool)
    rows = rows.filter(keep)
    frame = rows.to_pandas()
    for begin in range(0, len(frame), WRITE_BATCH_ROWS):
        store.write_to_online_store(view.name, frame.iloc[begin : begin + WRITE_BATCH_ROWS])
    return rows.num_rows


def online_timestamps(
    store: FeatureStore, view: FeatureView, entity_ids: Sequence[str]
) -> list[datetime | None]:
    """The event timestamp the online store holds for each entity of ``view`` (None: nothing)."""
    key = view.entity_columns[0].name
    result: list[datetime | None] = []
    for begin in range(0, len(entity_ids), WRITE_BATCH_ROWS):
        batch = entity_ids[begin : begin + WRITE_BATCH_ROWS]
        keys = feast_compat.string_entity_key_protos(key, batch)
        read = store.provider.online_read(
            config=store.config,
            table=view,
            entity_keys=keys,
            requested_features=[view.features[0].name],
        )
        result.extend(None if ts is None else ts.astimezone(UTC) for ts, _ in read)
    return result


# ---- reading ------------------------------------------------------------------------------------


def online_features(
    settings: Settings,
    entity_ids: Sequence[str],
    service: str,
    *,
    item_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The features of ``service`` the online store serves now, one row per entity id: the join
    key(s) first, then the features in the service's order. Unknown entities give nulls.

    ``recommender_v1`` also describes items: pass ``item_ids`` (one per user id, or any number
    for a single user id) to get user x item rows.
    """
    import pandas as pd

    return pd.DataFrame(online_feature_values(settings, entity_ids, service, item_ids=item_ids))


def online_feature_values(
    settings: Settings,
    entity_ids: Sequence[str],
    service: str,
    *,
    item_ids: Sequence[str] | None = None,
) -> dict[str, list[Any]]:
    """``online_features`` as column lists, without pandas: what a request handler wants."""
    from pipelines.features.store import feature_store

    store = feature_store(settings)
    feature_service = _feature_service(store, service)
    rows: dict[str, list[Any]] = {"user_id": [str(e) for e in entity_ids]}
    if item_ids is not None:
        items = [str(i) for i in item_ids]
        if len(rows["user_id"]) == 1 and len(items) != 1:
            rows["user_id"] = rows["user_id"] * len(items)
        if len(items) != len(rows["user_id"]):
            raise OnlineStoreError(
                f"{len(items)} item ids for {len(rows['user_id'])} user ids: give one item per "
                "user, or any number of items for one user"
            )
        rows["item_id"] = items
    try:
        values = store.get_online_features(features=feature_service, entity_rows=rows).to_dict()
    except KeyError as error:
        raise OnlineStoreError(
            f"{service} needs more entity keys than {sorted(rows)}: {error}. "
            "Pass item_ids=[...] for a service with item features"
        ) from error
    names = [f.name for p in feature_service.feature_view_projections for f in p.features]
    return {**{k: values[k] for k in rows}, **{name: values[name] for name in names}}


class OnlineServiceReader:
    """The online features of one feature service (single ``user_id``-like join key), read
    without Feast's per-request layers.

    ``get_online_features`` resolves the service's views, groups the feature references,
    builds entity-key protos and a ``GetOnlineFeaturesResponse`` and converts it back to Python
    on every call: ~1-3 ms of a serving request here. This reader resolves the service once
    (:meth:`refresh` re-resolves when the registry copy changed: the serving poll calls it)
    and then a read of the local profile's entity-row SQLite store is one SQLite statement
    over the service's views and one protobuf parse per view; other online stores (Redis,
    Feast's SQLite) are read with the provider's ``online_read``, the call Feast itself makes.
    The values are those of :func:`online_feature_values` (tested), columns in the same order.
    """

    def __init__(self, settings: Settings, service: str) -> None:
        self.settings = settings
        self.service = service
        self._lock = threading.Lock()
        self._plan: _ReadPlan | None = None

    @property
    def columns(self) -> list[str]:
        """The join key, then the service's features in order."""
        plan = self._current()
        return [plan.join_key, *plan.names]

    @property
    def direct(self) -> bool:
        """Whether reads go straight to the local SQLite file (no network: a read takes
        microseconds and may run on an event loop)."""
        return self._current().rows is not None

    def refresh(self) -> bool:
        """Re-resolve the service if the registry copy changed; whether it did."""
        from pipelines.features.store import feature_store

        store = feature_store(self.settings)
        service = _feature_service(store, self.service)
        held = self._plan
        if held is not None and held.service is service and held.store is store:
            return False
        plan = _ReadPlan.build(store, service)
        with self._lock:
            old, self._plan = self._plan, plan
        if old is not None and old.rows is not None:
            old.rows.close()
        return True

    def _current(self) -> _ReadPlan:
        plan = self._plan
        if plan is None:
            self.refresh()
            plan = self._plan
        assert plan is not None
        return plan

    def read(self, entity_id: str) -> dict[str, Any]:
        """``{join key: entity_id, feature: value, ...}`` (values None when not online)."""
        plan = self._current()
        key = plan.key_bytes([entity_id])[0]
        out: dict[str, Any] = {plan.join_key: entity_id}
        if plan.rows is not None:
            for view, blob in zip(plan.views, plan.rows.read_one(key), strict=True):
                out.update(zip(view.names, view.decode(blob), strict=True))
            return out
        protos = feast_compat.string_entity_key_protos(plan.join_key, [entity_id])
        for view in plan.views:
            ((_, values),) = plan.provider_read(view, protos)
            out.update(zip(view.names, view.from_protos(values), strict=True))
        return out

    def read_many(self, entity_ids: Sequence[str]) -> dict[str, list[Any]]:
        """Column lists, one value per id, like :func:`online_feature_values`."""
        plan = self._current()
        ids = [str(e) for e in entity_ids]
        out: dict[str, list[Any]] = {plan.join_key: ids}
        if plan.rows is not None:
            keys = plan.key_bytes(ids)
            for view, found in zip(plan.views, plan.rows.read_many(keys), strict=True):
                decoded = [view.decode(found.get(k)) for k in keys]
                for j, name in enumerate(view.names):
                    out[name] = [row[j] for row in decoded]
            return out
        protos = feast_compat.string_entity_key_protos(plan.join_key, ids)
        for view in plan.views:
            decoded = [view.from_protos(values) for _, values in plan.provider_read(view, protos)]
            for j, name in enumerate(view.names):
                out[name] = [row[j] for row in decoded]
        return out


DECODE_MEMO_ROWS = 20_000
"""Decoded rows each view of a reader keeps, keyed by the stored bytes (see ``_ViewPlan``)."""
_IMMUTABLE = (int, float, str, bool, type(None))


class _ViewPlan:
    """One view of a service: the features asked for, their positions and value types.

    :meth:`decode` keeps the last ``DECODE_MEMO_ROWS`` decoded rows keyed by the stored bytes
    themselves: a row read again unchanged costs a dict lookup instead of a protobuf parse,
    and a row that changed (a push, a materialization) is other bytes, so it is decoded anew —
    the memo can never answer for bytes it did not decode. Rows holding a mutable value (a
    list feature) are not kept.
    """

    def __init__(self, view: FeatureView, names: Sequence[str]) -> None:
        self.view = view
        self.names = list(names)
        order = [f.name for f in view.features]
        self.positions = [order.index(n) for n in self.names]
        by_name = {f.name: f for f in view.features}
        self.types = [by_name[n].dtype.to_value_type() for n in self.names]
        self._nulls = [None] * len(self.names)
        self._memo: dict[bytes, tuple[Any, ...]] = {}
        self._memo_lock = threading.Lock()

    def decode(self, blob: bytes | None) -> list[Any]:
        if blob is None:
            return list(self._nulls)
        found = self._memo.get(blob)
        if found is not None:
            return list(found)
        values = self._parse(blob)
        if all(isinstance(v, _IMMUTABLE) for v in values):
            with self._memo_lock:
                while len(self._memo) >= DECODE_MEMO_ROWS:  # the oldest out
                    del self._memo[next(iter(self._memo))]
                self._memo[blob] = tuple(values)
        return values

    def _parse(self, blob: bytes) -> list[Any]:
        values = feast_compat.parse_repeated_value(blob)
        count = len(values)
        empty = feast_compat.empty_value()
        picked = [values[i] if i < count else empty for i in self.positions]
        return feast_compat.python_values(picked, self.types)

    def from_protos(self, values: dict[str, Any] | None) -> list[Any]:
        if values is None:
            return list(self._nulls)
        empty = feast_compat.empty_value()
        return feast_compat.python_values([values.get(n, empty) for n in self.names], self.types)


class _ReadPlan:
    def __init__(
        self, store: FeatureStore, service: FeatureService, join_key: str, views: list[_ViewPlan]
    ) -> None:
        from pipelines.features.sqlite_store import TYPE as ENTITY_ROW_SQLITE
        from pipelines.features.sqlite_store import EntityRowReader, EntityRowSQLiteOnlineStore

        self.store, self.service, self.join_key, self.views = store, service, join_key, views
        self.names = [n for v in views for n in v.names]
        config = store.config
        self.version = config.entity_key_serialization_version
        self.rows = None
        if config.online_store.type == ENTITY_ROW_SQLITE:
            tables = [feast_compat.online_table_id(config, v.view) for v in views]
            self.rows = EntityRowReader(EntityRowSQLiteOnlineStore.db_path(config), tables)

    @classmethod
    def build(cls, store: FeatureStore, service: FeatureService) -> _ReadPlan:
        views, keys = [], set()
        for projection in service.feature_view_projections:
            view = _feature_view(store, projection.name)
            keys.update(c.name for c in view.entity_columns)
            if len(view.entity_columns) != 1:
                keys.add("(several)")
            views.append(_ViewPlan(view, [f.name for f in projection.features]))
        if len(keys) != 1:
            raise OnlineStoreError(
                f"{service.name} is keyed by {sorted(keys)}: OnlineServiceReader reads services "
                "of one join key; use online_feature_values"
            )
        return cls(store, service, keys.pop(), views)

    def key_bytes(self, ids: Sequence[str]) -> list[bytes]:
        return feast_compat.serialize_string_entity_keys(self.join_key, ids, self.version)

    def provider_read(self, view: _ViewPlan, protos: list[Any]) -> list[Any]:
        """``[(event_ts, {feature: Value} | None), ...]``, one per entity key; the values are
        matched to ``view.names`` by name (:meth:`_ViewPlan.from_protos`), never by position."""
        return self.store.provider.online_read(
            config=self.store.config,
            table=view.view,
            entity_keys=protos,
            # a copy: Feast's Redis store appends its "_ts:<view>" field to the list it is given
            requested_features=list(view.names),
        )


def push_realtime(settings: Settings, frame: pd.DataFrame) -> int:
    """Write real-time counters (``user_id``, ``event_timestamp``, ``rt_*``) to the online store
    as the ``user_realtime_push`` source's view; rows written (older than online: skipped).

    Online only, like Feast's ``push(..., to=PushMode.ONLINE)``, but through the same guarded
    writer as materialization, so a late, older push never replaces a newer counter.
    """
    from pipelines.features.store import feature_store

    store = feature_store(settings)
    view = _feature_view(store, "user_realtime")
    frame = frame.assign(**{TIMESTAMP: _utc_column(frame, TIMESTAMP)})
    return write_online(store, view, frame)


# ---- helpers ------------------------------------------------------------------------------------


def _feature_view(store: FeatureStore, name: str) -> FeatureView:
    from feast.errors import FeastObjectNotFoundException

    try:
        return store.get_feature_view(name, allow_registry_cache=True)
    except FeastObjectNotFoundException as error:
        raise OnlineStoreError(
            f"feature view {name!r} is not registered in the Feast registry "
            f"({store.config.registry.path}); run `apply_repo` (the features DAG's apply step)"
        ) from error


def _feature_service(store: FeatureStore, name: str) -> FeatureService:
    from pipelines.features.store import feature_service

    return feature_service(store, name, OnlineStoreError)


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise OnlineStoreError(f"{what} must be a datetime, got {moment!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc_column(frame: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    if column not in frame.columns:
        raise OnlineStoreError(f"the frame lacks {column!r}; it has {list(frame.columns)}")
    stamps = pd.to_datetime(frame[column])
    stamps = stamps.dt.tz_convert("UTC") if stamps.dt.tz else stamps.dt.tz_localize("UTC")
    return stamps.astype("datetime64[us, UTC]")


def _empty_table(key: str) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {key: pa.array([], pa.string()), TIMESTAMP: pa.array([], pa.timestamp("us", tz="UTC"))}
    )


def _latest_per_key(rows: pa.Table, key: str) -> pa.Table:
    """One row per key, the newest (the last of equals): the store keeps one row per entity."""
    import numpy as np
    import pyarrow.compute as pc

    keys = rows.column(key)
    if pc.count_distinct(keys).as_py() == rows.num_rows:
        return rows
    stamps = pc.cast(rows.column(TIMESTAMP), "int64").to_numpy(zero_copy_only=False)
    codes = pc.dictionary_encode(keys).combine_chunks().indices.to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(rows.num_rows), stamps, codes))
    last = np.r_[codes[order][1:] != codes[order][:-1], True]
    return rows.take(np.sort(order[last]))


def _entity_keys(ids: Sequence[Any], key: str, config: Any) -> list[bytes]:
    """Feast's serialized entity keys of single string join keys, as the store is configured."""
    return feast_compat.serialize_string_entity_keys(
        key, ids, config.entity_key_serialization_version
    )


def _feature_type(feature: Any) -> str:
    """The Feast type of a feature, if the bulk writer can encode it."""
    kind = str(feature.dtype)
    if kind not in feast_compat.ENCODED_TYPES:
        raise OnlineStoreError(
            f"feature {feature.name} has unsupported type {feature.dtype}; the bulk writer "
            f"encodes {feast_compat.ENCODED_TYPES}"
        )
    return kind
