"""Feature views: one per table of ``pipelines/features/schema.py`` plus the pushed counters.

Fields, dtypes, descriptions and TTLs are generated from the schema; nothing is retyped here.
"""

from datetime import timedelta

from data_sources import BATCH_SOURCES, user_realtime_push
from entities import ENTITIES
from feast import FeatureView, Field
from feast.types import Float64, Int64, String

from pipelines.features.schema import FEATURE_TABLES, USER_REALTIME, FeatureColumn, FeatureTable

DTYPES = {"int64": Int64, "float64": Float64, "string": String}

# The counters describe the last hour: older than that they say nothing.
REALTIME_TTL = timedelta(hours=1)


def fields(columns: tuple[FeatureColumn, ...]) -> list[Field]:
    return [Field(name=c.name, dtype=DTYPES[c.dtype], description=c.description) for c in columns]


def batch_view(table: FeatureTable) -> FeatureView:
    entity = ENTITIES[table.entity]
    return FeatureView(
        name=table.name,
        entities=[entity],
        ttl=timedelta(days=table.ttl_days),
        schema=[
            Field(name=table.join_key, dtype=String, description=entity.description),
            *fields(table.columns),
        ],
        source=BATCH_SOURCES[table.name],
        online=True,
        description=f"Daily {table.name} features (schema.FEATURE_TABLES[{table.name!r}]).",
        tags={"table": table.name, "entity": table.entity},
    )


FEATURE_VIEWS = {name: batch_view(table) for name, table in FEATURE_TABLES.items()}
user_activity = FEATURE_VIEWS["user_activity"]
item_popularity = FEATURE_VIEWS["item_popularity"]
user_segment = FEATURE_VIEWS["user_segment"]
user_recommendations = FEATURE_VIEWS["user_recommendations"]

user_realtime = FeatureView(
    name="user_realtime",
    entities=[ENTITIES["user"]],
    ttl=REALTIME_TTL,
    schema=[
        Field(name="user_id", dtype=String, description=ENTITIES["user"].description),
        *fields(USER_REALTIME),
    ],
    source=user_realtime_push,
    online=True,
    description="Real-time user counters, pushed by serving (online only).",
    tags={"table": "user_realtime", "entity": "user"},
)
