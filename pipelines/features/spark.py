"""The daily feature tables on Apache Spark: the same definitions and output as ``compute.py``.

Chosen by ``feature_engine = "spark"`` (``PERSONALIZE_FEATURE_ENGINE``), for histories that
outgrow one machine. Spark reads the curated parquet itself (nothing passes through pandas), so
the 30-day window may be larger than memory; the master is ``spark_master`` (``local[2]`` by
default, a cluster URL in production, where the state dir must be on storage every executor sees).

The features are the ones of :mod:`pipelines.features.schema`: windows, devices, event counts and
the output columns (names, order, dtypes) come from there, and a schema column without a Spark
expression here is an error, not a silently missing column. The semantics are those of
:mod:`pipelines.features.compute` (the tests compare the two column by column on edge cases):
a ``w``-day window is ``[end - w days, end)``, ratios are 0 over a zero denominator, short-window
device shares and mean view prices are null without events, recency is carried from the previous
day's partition, RFM scores are quintiles of average ranks. Nulls stand where numpy has NaN; the
parquet files of both engines hold nulls there. Sums of floats (spend) may differ in the last bit,
since Spark adds in another order; an RFM tie between two users whose spends are equal only up to
that rounding can then break differently (prices in cents make such near-ties rare).

The output is written like :func:`pipelines.features.offline.write_offline_partition` does:
``<offline>/<table>/date=D/part-0.parquet``, one file, rows sorted by key, timestamps as
``timestamp[us, tz=UTC]``, published atomically (staged beside the target, then renamed).
pyspark is imported inside the functions: nothing heavy happens at import time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.data import contract
from pipelines.data.partitions import (
    DEFAULT_FILE_NAME,
    PartitionWriter,
    parquet_files,
    partition_days,
    partition_dir,
    write_table,
)
from pipelines.days import epoch_micros
from pipelines.features.compute import HISTORY_DAYS, MICROS_PER_DAY, RFM_BINS, day_end
from pipelines.features.offline import (
    EVENT_COLUMNS,
    PREVIOUS_COLUMNS,
    FeaturesError,
    offline_schema,
)
from pipelines.features.schema import (
    DEVICES,
    EVENT_COUNTS,
    FEATURE_TABLES,
    SESSION_WINDOWS,
    TIMESTAMP,
    TOP_CATEGORIES,
    VIEW_PRICE_WINDOWS,
    WINDOWS,
    FeatureColumn,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from pipelines.config import Settings

SPARK_TYPES = {"int64": "bigint", "float64": "double", "string": "string"}
# Few shuffle partitions: a day's output is one row per user, and on a small cluster Spark's
# default of 200 spends more time scheduling empty tasks than computing (AQE merges further).
SHUFFLE_PARTITIONS = 8


# ---- the session ------------------------------------------------------------------------------


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark configuration of these settings, for our session and Feast's offline store."""
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "personalize-features",
        # instants are compared and written in UTC whatever the machine's zone
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if settings.spark_master.startswith("local"):
        # in-process Spark needs no network interface but loopback (none other may be reachable)
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.driver.memory"] = "2g"
    return conf


def spark_session(settings: Settings) -> SparkSession:
    """The process's SparkSession, started with :func:`spark_conf` if none is running.

    Feast's Spark offline store picks up the active session, so training sets and the feature
    computation share one JVM.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - pyspark is a locked dependency
        raise FeaturesError(
            "feature_engine is 'spark' but pyspark is not installed; run `make sync`"
        ) from error

    if settings.spark_master.startswith("local"):
        # read by the JVM at start: without it Spark binds to whatever the hostname resolves to
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as error:
        raise FeaturesError(
            f"cannot start Spark on {settings.spark_master!r}: {error}. Spark needs Java 17+ "
            "(`java -version`); check PERSONALIZE_SPARK_MASTER, or set "
            "PERSONALIZE_FEATURE_ENGINE=local"
        ) from error


# ---- reading ----------------------------------------------------------------------------------


def read_curated_window(
    spark: SparkSession, curated_dir: Path, day: date, days: int = HISTORY_DAYS
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """``(events, users, items)`` as known at the end of ``day``, as Spark DataFrames.

    The same files as :func:`pipelines.features.offline.read_curated_window`: events of the
    ``days`` days ending with ``day``, users and items of every partition up to ``day`` with one
    row per key, the last row of the latest file winning.
    """
    window = [day - timedelta(days=back) for back in range(days - 1, -1, -1)]
    event_files = [
        f for d in window for f in parquet_files(partition_dir(curated_dir, "events", d))
    ]
    events = _read_files(spark, event_files, contract.EVENTS, EVENT_COLUMNS)
    users = _read_latest(spark, curated_dir, contract.USERS, day)
    items = _read_latest(spark, curated_dir, contract.ITEMS, day)
    return events, users, items


def _read_files(
    spark: SparkSession, files: Sequence[Path], spec: contract.Table, columns: Sequence[str]
) -> DataFrame:
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(pa.schema([spec.arrow_schema().field(c) for c in columns]))
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*(str(f) for f in files))


def _read_latest(spark: SparkSession, curated_dir: Path, spec: contract.Table, day: date):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    days = [d for d in partition_days(curated_dir, spec.name) if d <= day]
    files = [f for d in days for f in parquet_files(partition_dir(curated_dir, spec.name, d))]
    frame = _read_files(spark, files, spec, tuple(spec.column_names))
    if not files:
        return frame
    # "date=YYYY-MM-DD/part-N.parquet" paths sort like the days and files the local reader
    # concatenates, and the row index orders a file's rows: the last of both wins
    order = Window.partitionBy(spec.key).orderBy(
        F.col("_metadata.file_path").desc(), F.col("_metadata.row_index").desc()
    )
    return (
        frame.withColumn("_latest", F.row_number().over(order))
        .filter(F.col("_latest") == 1)
        .drop("_latest")
    )


def read_previous(spark: SparkSession, offline_dir: Path, day: date) -> DataFrame | None:
    """The columns of the day before's ``user_activity`` that are carried over, or None."""
    files = parquet_files(partition_dir(offline_dir, "user_activity", day - timedelta(days=1)))
    if not files:
        return None
    return spark.read.parquet(*(str(f) for f in files)).select(*PREVIOUS_COLUMNS)


# ---- the two tables ---------------------------------------------------------------------------


def user_activity(
    events: DataFrame,
    users: DataFrame,
    items: DataFrame,
    day: date,
    previous: DataFrame | None = None,
) -> DataFrame:
    """:func:`pipelines.features.compute.user_activity` on Spark.

    ``users`` and ``items`` hold one row per key (as :func:`read_curated_window` returns them:
    a Spark frame has no row order to take "the last row" from); ``previous`` one row per user.
    """
    from pyspark.sql import functions as F

    end = day_end(day)
    end_us = epoch_micros(end)
    known = users.filter(F.unix_micros("signup_ts") < end_us).select(F.col("user_id")).distinct()
    categories = items.select("item_id", "category")
    window = _window_events(events, end_us).join(F.broadcast(categories), "item_id", "left")
    window = window.join(known, "user_id", "inner")

    kind, us = F.col("event_type"), F.col("us")
    purchase = kind == "purchase"
    since_us, carried = _previous_rhythm(previous, end_us)
    aggregates: list[Column] = []
    for stem, event_type in EVENT_COUNTS.items():
        for w in WINDOWS:
            aggregates.append(_count(_within(w, end_us) & (kind == event_type), f"{stem}_{w}d"))
    for w in WINDOWS:
        aggregates.append(_total(F.col("amount"), _within(w, end_us) & purchase, f"spend_{w}d"))
    for w in SESSION_WINDOWS:
        aggregates.append(
            _distinct(F.when(_within(w, end_us), F.col("session_id")), f"sessions_{w}d")
        )
    aggregates.append(
        _distinct(
            F.when(_within(HISTORY_DAYS, end_us), F.col("category")), "distinct_categories_30d"
        )
    )
    aggregates += [
        F.max(us).alias("_last_event_us"),
        F.max(F.when(purchase, us)).alias("_last_purchase_us"),
        F.min(F.when(purchase, us)).alias("_first_purchase_us"),
        _distinct(
            F.when(purchase & (us >= F.lit(since_us)), F.floor(us / F.lit(MICROS_PER_DAY))),
            "_new_purchase_days",
        ),
    ]
    priced_view = (kind == "view") & F.col("price").isNotNull()
    for w in VIEW_PRICE_WINDOWS:
        aggregates.append(_count(_within(w, end_us) & priced_view, f"_priced_views_{w}d"))
        aggregates.append(
            _total(F.col("price"), _within(w, end_us) & priced_view, f"_view_price_total_{w}d")
        )
    device = F.col("device")
    for w in WINDOWS:
        named = device.isin(list(DEVICES))
        aggregates.append(_count(_within(w, end_us) & named, f"_named_{w}d"))
        for name in DEVICES:
            aggregates.append(_count(_within(w, end_us) & (device == name), f"_{name}_{w}d"))

    per_user = window.groupBy("user_id").agg(*aggregates)
    frame = known.join(per_user, "user_id", "left").join(_top_categories(window), "user_id", "left")
    if carried is not None:
        frame = frame.join(carried, "user_id", "left")
    counted = [
        *(f"{stem}_{w}d" for stem in EVENT_COUNTS for w in WINDOWS),
        *(f"sessions_{w}d" for w in SESSION_WINDOWS),
        "distinct_categories_30d",
        "_new_purchase_days",
        *(f"_priced_views_{w}d" for w in VIEW_PRICE_WINDOWS),
        *(f"_named_{w}d" for w in WINDOWS),
        *(f"_{name}_{w}d" for name in DEVICES for w in WINDOWS),
    ]
    summed = [
        *(f"spend_{w}d" for w in WINDOWS),
        *(f"_view_price_total_{w}d" for w in VIEW_PRICE_WINDOWS),
    ]
    frame = frame.fillna(0, subset=counted).fillna(0.0, subset=summed)

    def days_to_end(column: str) -> Column:
        return (F.lit(end_us) - F.col(column)) / F.lit(MICROS_PER_DAY)

    def carried_or_null(column: str) -> Column:
        return F.col(f"_carried_{column}") if _carries(carried, column) else F.lit(None)

    col = F.col
    columns: dict[str, Column] = {}
    columns["days_since_last_event"] = F.coalesce(
        days_to_end("_last_event_us"), carried_or_null("days_since_last_event")
    )
    columns["days_since_last_purchase"] = F.coalesce(
        days_to_end("_last_purchase_us"), carried_or_null("days_since_last_purchase")
    )
    frame = frame.withColumns(columns)

    carried_total = (
        F.coalesce(col("_carried_purchase_days_total"), F.lit(0.0))
        if _carries(carried, "purchase_days_total")
        else F.lit(0.0)
    )
    total = carried_total + col("_new_purchase_days")
    first_days = F.coalesce(
        carried_or_null("days_since_first_purchase"), days_to_end("_first_purchase_us")
    )
    frame = frame.withColumns(
        {"purchase_days_total": total, "days_since_first_purchase": first_days}
    )
    gaps = col("purchase_days_total") - 1
    # the division only where there is a gap (ANSI Spark raises on x / 0)
    gap = F.when(
        gaps > 0, (col("days_since_first_purchase") - col("days_since_last_purchase")) / gaps
    )
    frame = frame.withColumn("_gap", gap)
    frame = frame.withColumn("days_between_purchases", F.when(col("_gap") > 0, col("_gap")))
    frame = frame.withColumns(
        {
            "purchase_overdue_ratio": col("days_since_last_purchase")
            / col("days_between_purchases"),
            "view_to_cart_rate_30d": _ratio(col("carts_30d"), col("views_30d")),
            "cart_to_purchase_rate_30d": _ratio(col("purchases_30d"), col("carts_30d")),
            "avg_order_value_30d": _ratio(col("spend_30d"), col("purchases_30d")),
            **{
                f"avg_view_price_{w}d": F.when(
                    col(f"_priced_views_{w}d") > 0,
                    col(f"_view_price_total_{w}d") / col(f"_priced_views_{w}d"),
                )
                for w in VIEW_PRICE_WINDOWS
            },
            **_device_shares(),
            "_rfm_frequency": F.when(col("purchases_30d") > 0, col("purchases_30d")),
            "_rfm_monetary": F.when(col("purchases_30d") > 0, col("spend_30d")),
        }
    )
    frame = rfm_score(frame, "days_since_last_event", "rfm_recency", higher_is_better=False)
    frame = rfm_score(frame, "_rfm_frequency", "rfm_frequency")
    frame = rfm_score(frame, "_rfm_monetary", "rfm_monetary")
    for rank in range(1, TOP_CATEGORIES + 1):
        share = f"top_category_{rank}_share"
        frame = frame.withColumn(share, F.coalesce(col(share), F.lit(0.0)))
    return _assemble(frame, "user_activity", end_us)


def item_popularity(events: DataFrame, items: DataFrame, day: date) -> DataFrame:
    """:func:`pipelines.features.compute.item_popularity` on Spark (``items``: one row per key)."""
    from pyspark.sql import functions as F

    end_us = epoch_micros(day_end(day))
    launched = F.unix_micros("launched_ts")
    known = items.filter(launched.isNull() | (launched < end_us))
    window = _window_events(events, end_us).join(known.select("item_id"), "item_id", "inner")
    kind = F.col("event_type")
    aggregates = [
        _count(_within(w, end_us) & (kind == event_type), f"item_{stem}_{w}d")
        for stem, event_type in EVENT_COUNTS.items()
        for w in WINDOWS
    ]
    counted = [f"item_{stem}_{w}d" for stem in EVENT_COUNTS for w in WINDOWS]
    per_item = window.groupBy("item_id").agg(*aggregates)
    frame = known.join(per_item, "item_id", "left").fillna(0, subset=counted)
    price = F.col("price")
    frame = frame.withColumns(
        {
            "item_conversion_rate_30d": _ratio(
                F.col("item_purchases_30d"), F.col("item_views_30d")
            ),
            "item_price": F.when(~F.isnan(price), price),
            "item_category": F.col("category"),
            "item_brand": F.col("brand"),
            "item_days_since_launch": (F.lit(end_us) - launched) / F.lit(MICROS_PER_DAY),
        }
    )
    return _assemble(frame, "item_popularity", end_us)


def rfm_score(
    frame: DataFrame, values: str, name: str, *, higher_is_better: bool = True
) -> DataFrame:
    """:func:`pipelines.features.compute.rfm_score` as a column ``name`` of ``frame``.

    The percentile is the average rank of a value among the non-null ones (ties share it, as in
    pandas' ``rank(pct=True)``) over their count; null scores 1.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    value = F.col(values)
    order = value.asc_nulls_last() if higher_is_better else value.desc_nulls_last()
    # one ranking over every entity of the day (a window without partitions): one row per user
    first_rank = F.rank().over(Window.orderBy(order))
    ties = F.count(F.lit(1)).over(Window.partitionBy(value))
    present = F.count(value).over(Window.partitionBy())
    pct = (first_rank + (ties - 1) / 2) / present
    score = F.least(F.greatest(F.ceil(F.bround(pct * RFM_BINS, 9)), F.lit(1)), F.lit(RFM_BINS))
    return frame.withColumn(name, F.when(value.isNull(), F.lit(1)).otherwise(score))


# ---- pieces -----------------------------------------------------------------------------------


def _window_events(events: DataFrame, end_us: int) -> DataFrame:
    """The events of the longest window, with time in microseconds and clean amounts."""
    from pyspark.sql import functions as F

    us = F.unix_micros("event_ts")
    price = F.col("price")
    price = F.when(~F.isnan(price), price)  # NaN counts as unknown, as null does
    amount = price * F.col("quantity")
    return events.select(
        "user_id",
        "item_id",
        F.col("event_type"),
        us.alias("us"),
        "session_id",
        "device",
        price.alias("price"),
        F.coalesce(amount, F.lit(0.0)).alias("amount"),
    ).filter((F.col("us") >= end_us - HISTORY_DAYS * MICROS_PER_DAY) & (F.col("us") < end_us))


def _within(days: int, end_us: int) -> Column:
    from pyspark.sql import functions as F

    return F.col("us") >= F.lit(end_us - days * MICROS_PER_DAY)


def _count(condition: Column, name: str) -> Column:
    from pyspark.sql import functions as F

    return F.count(F.when(condition, F.lit(1))).alias(name)


def _distinct(values: Column, name: str) -> Column:
    """Distinct non-null values per group. ``size(collect_set)``, not ``count(DISTINCT)``: several
    distinct aggregates in one ``agg`` make Spark copy every row once per aggregate (Expand)."""
    from pyspark.sql import functions as F

    return F.size(F.collect_set(values)).alias(name)


def _total(values: Column, condition: Column, name: str) -> Column:
    from pyspark.sql import functions as F

    return F.sum(F.when(condition, values).otherwise(F.lit(0.0))).alias(name)


def _ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator, 0 where the denominator is 0 (as ``compute._ratio``)."""
    from pyspark.sql import functions as F

    return F.when(denominator != 0, numerator / denominator).otherwise(F.lit(0.0))


def _device_shares() -> dict[str, Column]:
    from pyspark.sql import functions as F

    shares = {}
    for w in WINDOWS:
        named = F.col(f"_named_{w}d")
        for name in DEVICES:
            share = _ratio(F.col(f"_{name}_{w}d"), named)
            if w < HISTORY_DAYS:  # no events in a short window: unknown, as compute.py says why
                share = F.when(named > 0, share)
            shares[f"device_share_{name}_{w}d"] = share
    return shares


def _top_categories(window: DataFrame) -> DataFrame:
    """Per user: the top categories by share of events with a known category, ties by name."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = (
        window.filter(F.col("category").isNotNull())
        .groupBy("user_id", "category")
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    by_user = Window.partitionBy("user_id")
    ranked = counts.withColumns(
        {
            "_share": F.col("_n") / F.sum("_n").over(by_user),
            "_rank": F.row_number().over(
                by_user.orderBy(F.col("_n").desc(), F.col("category").asc())
            ),
        }
    ).filter(F.col("_rank") <= TOP_CATEGORIES)
    picks = []
    for rank in range(1, TOP_CATEGORIES + 1):
        at = F.col("_rank") == rank
        picks.append(F.max(F.when(at, F.col("category"))).alias(f"top_category_{rank}"))
        picks.append(F.max(F.when(at, F.col("_share"))).alias(f"top_category_{rank}_share"))
    return ranked.groupBy("user_id").agg(*picks)


def _previous_rhythm(previous: DataFrame | None, end_us: int) -> tuple[float, DataFrame | None]:
    """From the earlier output: since when purchase days are new, and the carried values.

    The carried frame has ``_carried_<column>`` per column of ``previous``: day counts grown by
    the days from their stamp to ``end`` (``purchase_days_total`` as it is), rows stamped after
    ``end`` left out, the latest stamp per user kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if previous is None:
        return float("-inf"), None
    stamp_us = F.unix_micros(TIMESTAMP)
    since_us = float("-inf")
    if "purchase_days_total" in previous.columns:
        latest = previous.agg(F.max(stamp_us)).first()[0]
        if latest is not None:
            since_us = float(latest)
    elapsed = (F.lit(end_us) - stamp_us) / F.lit(MICROS_PER_DAY)
    grown = {
        f"_carried_{c}": F.col(c) if c == "purchase_days_total" else F.col(c) + elapsed
        for c in previous.columns
        if c not in ("user_id", TIMESTAMP)
    }
    newest = Window.partitionBy("user_id").orderBy(stamp_us.desc())
    carried = (
        previous.filter(stamp_us <= end_us)
        .withColumn("_newest", F.row_number().over(newest))
        .filter(F.col("_newest") == 1)
        .select("user_id", *(value.alias(name) for name, value in grown.items()))
    )
    if "purchase_days_total" not in previous.columns:
        return since_us, carried
    # the total is carried from the latest row of every user, whatever its stamp
    totals = (
        previous.withColumn("_newest", F.row_number().over(newest))
        .filter(F.col("_newest") == 1)
        .select("user_id", F.col("purchase_days_total").alias("_total"))
    )
    carried = (
        carried.drop("_carried_purchase_days_total")
        .join(totals, "user_id", "full")
        .withColumnRenamed("_total", "_carried_purchase_days_total")
    )
    return since_us, carried


def _carries(carried: DataFrame | None, column: str) -> bool:
    return carried is not None and f"_carried_{column}" in carried.columns


def _assemble(frame: DataFrame, table: str, end_us: int) -> DataFrame:
    """Key, stamp, then the table's schema columns in order, each cast to its declared dtype."""
    from pyspark.sql import functions as F

    spec = FEATURE_TABLES[table]
    missing = [c.name for c in spec.columns if c.name not in frame.columns]
    if missing:
        raise FeaturesError(
            f"the Spark engine computes no {missing} of {table}: every column of "
            "pipelines/features/schema.py needs an expression in pipelines/features/spark.py"
        )
    return frame.select(
        F.col(spec.join_key).cast("string").alias(spec.join_key),
        F.timestamp_micros(F.lit(end_us)).alias(TIMESTAMP),
        *(_typed(c) for c in spec.columns),
    )


def _typed(column: FeatureColumn) -> Column:
    from pyspark.sql import functions as F

    return F.col(column.name).cast(SPARK_TYPES[column.dtype]).alias(column.name)


# ---- writing ----------------------------------------------------------------------------------


def write_offline_partition(offline_dir: Path, table: str, day: date, frame: DataFrame) -> Path:
    """Replace ``<offline_dir>/<table>/date=<day>/part-0.parquet`` with ``frame``, atomically.

    One Spark task writes the sorted rows into the staging folder of the partition; its part
    file is renamed to ``part-0.parquet`` and Spark's bookkeeping files are dropped before the
    folder is published, so readers see the layout the local engine writes.
    """
    spec = FEATURE_TABLES[table]
    schema = offline_schema(spec)
    if frame.columns != schema.names:
        raise FeaturesError(
            f"cannot write {table} for {day}: columns {frame.columns}, expected {schema.names} "
            "(pipelines/features/schema.py)"
        )
    target = partition_dir(offline_dir, table, day)
    with PartitionWriter(target) as staged:
        out = staged / "_spark"
        (
            frame.repartition(1)
            .sortWithinPartitions(spec.join_key)
            .write.option("compression", "zstd")
            .parquet(str(out))
        )
        parts = sorted(out.glob("part-*.parquet"))
        if len(parts) > 1:
            raise FeaturesError(f"Spark wrote {len(parts)} files for {table} {day}, expected 1")
        if parts:
            os.replace(parts[0], staged / DEFAULT_FILE_NAME)
        else:  # an empty frame may leave no part file: write the empty table ourselves
            write_table(schema.empty_table(), staged / DEFAULT_FILE_NAME)
        shutil.rmtree(out)
    return target / DEFAULT_FILE_NAME


# ---- one day ----------------------------------------------------------------------------------


def compute_features_for_day(
    settings: Settings, day: date, *, spark: SparkSession | None = None
) -> dict[str, Path]:
    """:func:`pipelines.features.offline.compute_features_for_day` on Spark: same checks, same
    inputs (curated window, the day before's recency), same partitions written."""
    events_dir = partition_dir(settings.curated_dir, "events", day)
    if not parquet_files(events_dir):
        raise FeaturesError(
            f"no curated events for {day}: {events_dir} is missing or holds no parquet file. "
            f"Features read curated data only; run `personalize run ingest --date {day}` first"
        )
    from pyspark import StorageLevel

    spark = spark or spark_session(settings)
    # both tables read the same window: kept after the first read (spilled to disk when it does
    # not fit, so a window larger than memory still works) instead of scanning the files twice
    frames = read_curated_window(spark, settings.curated_dir, day)
    events, users, items = (f.persist(StorageLevel.MEMORY_AND_DISK) for f in frames)
    offline = settings.feast_offline_dir
    previous = read_previous(spark, offline, day)
    try:
        tables = {
            "user_activity": user_activity(events, users, items, day, previous=previous),
            "item_popularity": item_popularity(events, items, day),
        }
        return {
            name: write_offline_partition(offline, name, day, frame)
            for name, frame in tables.items()
        }
    finally:
        for frame in (events, users, items):
            frame.unpersist()
