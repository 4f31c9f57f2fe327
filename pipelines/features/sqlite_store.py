"""A Feast online store on SQLite with one row per entity and feature view (the local profile).

Feast's own SQLite store keeps one row per entity *and feature*: 32 features of 50k users are
1.6M rows, and writing them is what limits materialization. This store keeps one row per
entity in ``<project>_<view>``::

    entity_key BLOB PRIMARY KEY   -- Feast's serialize_entity_key
    event_ts   INTEGER            -- UTC microseconds since the epoch
    created_ts INTEGER            -- UTC microseconds, or NULL
    features   BLOB               -- a RepeatedValue proto: one Value per feature of the view

``features`` holds the values in the view's feature order (a null is the empty ``Value``), so
it is decoded by one protobuf parse. The order is recorded per table in
``_entity_row_schema``: when ``update`` (``feast apply``) sees a view whose features changed, it
recreates the view's table (its rows would decode to the wrong features), as it does a table of
Feast's own layout left by an older state dir; materialize again.

**Never older over newer**: the upsert replaces a row only if the new one is at least as new
(``ON CONFLICT(entity_key) DO UPDATE ... WHERE excluded.event_ts >= event_ts``), for Feast's
writes (``materialize``, ``push``, ``write_to_online_store``) as for ours
(``pipelines.features.online``, which writes the same rows in bulk).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipelines.days import epoch_micros, from_epoch_micros
from pipelines.features.feast_compat import (
    empty_value,
    import_feast,
    online_table_id,
    parse_repeated_value,
    serialize_entity_key,
    serialize_repeated_value,
)
from pipelines.features.sql import quote_identifier

import_feast()  # before Feast's first import: see import_feast

# Feast's documented extension point for a custom online store
from feast import Entity  # noqa: E402
from feast.feature_view import FeatureView  # noqa: E402
from feast.infra.online_stores.online_store import OnlineStore  # noqa: E402
from feast.repo_config import FeastConfigBaseModel, RepoConfig  # noqa: E402
from pydantic import StrictStr  # noqa: E402

if TYPE_CHECKING:
    from pipelines.features.feast_compat import EntityKeyProto, ValueProto

TYPE = "pipelines.features.sqlite_store.EntityRowSQLiteOnlineStore"
SCHEMA_TABLE = "_entity_row_schema"


class EntityRowSQLiteOnlineStoreConfig(FeastConfigBaseModel):
    """``online_store`` of ``feature_store.yaml``: ``type`` (this class's path) and ``path``."""

    type: Literal["pipelines.features.sqlite_store.EntityRowSQLiteOnlineStore"] = TYPE
    path: StrictStr = "data/online.db"
    """The SQLite file; relative to the repo path if not absolute."""


class EntityRowSQLiteOnlineStore(OnlineStore):
    """One row per entity and feature view; see the module docstring."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # ---- connection ---------------------------------------------------------------------------

    @staticmethod
    def db_path(config: RepoConfig) -> str:
        path = config.online_store.path
        if config.repo_path and not Path(path).is_absolute():
            return str(Path(config.repo_path) / path)
        return path

    def _get_conn(self, config: RepoConfig) -> sqlite3.Connection:
        if self._conn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = connect(self.db_path(config))
        return self._conn

    # ---- writes -------------------------------------------------------------------------------

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        names = [f.name for f in table.features]
        empty = empty_value()
        version = config.entity_key_serialization_version
        rows = []
        for entity_key, values, event_ts, created_ts in data:
            rows.append(
                (
                    serialize_entity_key(entity_key, version),
                    epoch_micros(event_ts),
                    None if created_ts is None else epoch_micros(created_ts),
                    serialize_repeated_value([values.get(name, empty) for name in names]),
                )
            )
        conn = self._get_conn(config)
        with conn:
            conn.executemany(upsert_sql(online_table_id(config, table)), rows)
        if progress:
            progress(len(data))

    # ---- reads --------------------------------------------------------------------------------

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, version) for k in entity_keys]
        names = [f.name for f in table.features]
        wanted = names if requested_features is None else requested_features
        positions = {name: i for i, name in enumerate(names)}
        picks = [(name, positions[name]) for name in wanted if name in positions]
        conn = self._get_conn(config)
        found: dict[bytes, tuple[int, bytes]] = {}
        name = quote_identifier(online_table_id(config, table))
        # within SQLite's bound-parameter limit (32766 since 3.32)
        for begin in range(0, len(keys), 30_000):
            part = keys[begin : begin + 30_000]
            marks = ",".join("?" * len(part))
            query = (
                f"SELECT entity_key, event_ts, features FROM {name} WHERE entity_key IN ({marks})"
            )
            for key, micros, blob in conn.execute(query, part):
                found[key] = (micros, blob)
        result: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            row = found.get(key)
            if row is None:
                result.append((None, None))
                continue
            values = parse_repeated_value(row[1])
            count = len(values)
            features = {n: values[i] if i < count else empty_value() for n, i in picks}
            result.append((from_epoch_micros(row[0]), features))
        return result

    # ---- infrastructure -----------------------------------------------------------------------

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        conn = self._get_conn(config)
        with conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
                "(table_name TEXT PRIMARY KEY, features TEXT NOT NULL)"
            )
            for view in tables_to_keep:
                name = online_table_id(config, view)
                table = quote_identifier(name)
                features = "\n".join(f.name for f in view.features)
                known = conn.execute(
                    f"SELECT features FROM {SCHEMA_TABLE} WHERE table_name = ?", (name,)
                ).fetchone()
                layout = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if (known is not None and known[0] != features) or (
                    layout and "features" not in layout
                ):
                    # positional values of other features, or Feast's own one-row-per-feature
                    # table of an older state dir: the rows cannot be read any more
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (entity_key BLOB PRIMARY KEY, "
                    "event_ts INTEGER NOT NULL, created_ts INTEGER, features BLOB NOT NULL)"
                )
                conn.execute(
                    f"INSERT OR REPLACE INTO {SCHEMA_TABLE} (table_name, features) VALUES (?, ?)",
                    (name, features),
                )
            for view in tables_to_delete:
                self._drop(conn, online_table_id(config, view))

    def teardown(
        self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]
    ) -> None:
        if not Path(self.db_path(config)).is_file():
            return
        conn = self._get_conn(config)
        with conn:
            for view in tables:
                self._drop(conn, online_table_id(config, view))
        with self._lock:
            conn.close()
            self._conn = None

    @staticmethod
    def _drop(conn: sqlite3.Connection, name: str) -> None:
        conn.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SCHEMA_TABLE,)
        ).fetchone()
        if exists:
            conn.execute(f"DELETE FROM {SCHEMA_TABLE} WHERE table_name = ?", (name,))


# ---- shared with the bulk writer and the serving reader (pipelines.features.online) -------------


class EntityRowReader:
    """Point reads of the ``features`` blobs of some of this store's tables, on one connection
    held open (serving: ``OnlineServiceReader``). Each statement sees the latest commit (WAL,
    autocommit reads), so a push is visible to the next read."""

    def __init__(self, path: str, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)
        self._conn = connect(path)
        self._lock = threading.Lock()
        self._one = " UNION ALL ".join(
            f"SELECT {i}, features FROM {quote_identifier(t)} WHERE entity_key = ?1"
            for i, t in enumerate(self.tables)
        )

    def read_one(self, key: bytes) -> list[bytes | None]:
        """The blob of ``key`` in each table (None: no row), in one statement."""
        with self._lock:
            rows = self._conn.execute(self._one, (key,)).fetchall()
        blobs: list[bytes | None] = [None] * len(self.tables)
        for index, blob in rows:
            blobs[index] = blob
        return blobs

    def read_many(self, keys: Sequence[bytes]) -> list[dict[bytes, bytes]]:
        """``{key: blob}`` of the keys found, per table."""
        found: list[dict[bytes, bytes]] = []
        for table in self.tables:
            rows: dict[bytes, bytes] = {}
            for begin in range(0, len(keys), 30_000):  # SQLite's bound-parameter limit
                part = list(keys[begin : begin + 30_000])
                query = (
                    f"SELECT entity_key, features FROM {quote_identifier(table)} "
                    f"WHERE entity_key IN ({','.join('?' * len(part))})"
                )
                with self._lock:
                    rows.update(self._conn.execute(query, part).fetchall())
            found.append(rows)
        return found

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def upsert_sql(name: str) -> str:
    """The guarded upsert of one (entity_key, event_ts, created_ts, features) row."""
    table = quote_identifier(name)
    return (
        f"INSERT INTO {table} (entity_key, event_ts, created_ts, features) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(entity_key) DO UPDATE SET "
        "event_ts = excluded.event_ts, created_ts = excluded.created_ts, "
        f"features = excluded.features WHERE excluded.event_ts >= {table}.event_ts"
    )


def connect(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    # WAL: serving keeps reading while a day is written; NORMAL is durable at checkpoints
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn
