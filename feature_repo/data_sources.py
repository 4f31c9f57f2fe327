"""Data sources: the offline feature tables (parquet, read by the DuckDB offline store, or by
Feast's Spark offline store when ``feature_engine = "spark"``) and the push source serving writes
real-time counters to.

Paths come from the settings at repo-load time (``PERSONALIZE_HOME`` decides; ``apply_repo``
exports the settings it was given), so nothing here names a machine.
"""

from feast import FileSource, PushSource
from feast.data_source import DataSource
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from pipelines.config import get_settings
from pipelines.features.schema import FEATURE_TABLES, TIMESTAMP

SETTINGS = get_settings()
OFFLINE_DIR = SETTINGS.feast_offline_dir

# A glob over the day partitions, not the table folder: DuckDB reads every parquet file below a
# folder, including the hidden `.date=D.tmp-*` / `.date=D.old-*` folders a partition write
# leaves for a moment (duplicate or half-written rows). `date=*` names published partitions only.
PARTITION_GLOB = "date=*/*.parquet"


def partitioned_source(table: str, description: str) -> DataSource:
    """The same files for both offline stores; Spark's store accepts only its own source type."""
    path = str(OFFLINE_DIR / table / PARTITION_GLOB)
    if SETTINGS.feature_engine == "spark":
        return SparkSource(
            name=f"{table}_source",
            path=path,
            file_format="parquet",
            timestamp_field=TIMESTAMP,
            description=description,
        )
    return FileSource(
        name=f"{table}_source", path=path, timestamp_field=TIMESTAMP, description=description
    )


BATCH_SOURCES = {
    name: partitioned_source(name, f"Daily {name} partitions, stamped with the end of the day")
    for name in FEATURE_TABLES
}
user_activity_source = BATCH_SOURCES["user_activity"]
item_popularity_source = BATCH_SOURCES["item_popularity"]
user_segment_source = BATCH_SOURCES["user_segment"]
user_recommendations_source = BATCH_SOURCES["user_recommendations"]

# Real-time counters are pushed to the online store only; the batch source is where a log of the
# pushes would go (same layout), and what a training set reads (nothing yet: nulls).
user_realtime_batch_source = partitioned_source(
    "user_realtime", "Log of pushed real-time counters (empty while pushes are online-only)"
)
user_realtime_push = PushSource(
    name="user_realtime_push",
    batch_source=user_realtime_batch_source,
    description="Real-time user counters pushed by serving.",
)
