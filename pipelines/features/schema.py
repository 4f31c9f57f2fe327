"""The feature tables: one definition shared by the computation, the Feast repo and the docs.

Every table has one row per *known* entity per day, stamped ``event_timestamp`` = the end of the
day it describes (``D+1 00:00 UTC`` for day D), so a point-in-time join at a snapshot taken at the
end of day D sees day D's features and nothing later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dtype = Literal["int64", "float64", "string"]

TIMESTAMP = "event_timestamp"
WINDOWS = (1, 7, 30)
TOP_CATEGORIES = 3
DEVICES = ("web", "ios", "android")
# windowed event counts: column stem -> the event type counted (contract.EVENT_TYPES)
EVENT_COUNTS: dict[str, str] = {"views": "view", "carts": "add_to_cart", "purchases": "purchase"}
SESSION_WINDOWS = (7, 30)
VIEW_PRICE_WINDOWS = (1, 7)


@dataclass(frozen=True)
class FeatureColumn:
    name: str
    dtype: Dtype
    description: str


def _windowed(stem: str, dtype: Dtype, what: str) -> list[FeatureColumn]:
    return [FeatureColumn(f"{stem}_{w}d", dtype, f"{what} in the last {w} day(s)") for w in WINDOWS]


USER_ACTIVITY: tuple[FeatureColumn, ...] = (
    *_windowed("views", "int64", "Product views"),
    *_windowed("carts", "int64", "Add-to-cart events"),
    *_windowed("purchases", "int64", "Purchase events"),
    *_windowed("spend", "float64", "Money spent (price x quantity of purchases)"),
    *(
        FeatureColumn(f"sessions_{w}d", "int64", f"Distinct sessions in the last {w} days")
        for w in SESSION_WINDOWS
    ),
    FeatureColumn("distinct_categories_30d", "int64", "Categories interacted with, 30 days"),
    FeatureColumn(
        "days_since_last_event",
        "float64",
        "Days from the last event to the end of the day; null if the user never acted",
    ),
    FeatureColumn(
        "days_since_last_purchase",
        "float64",
        "Days from the last purchase to the end of the day; null if the user never bought",
    ),
    FeatureColumn(
        "purchase_days_total", "int64", "Days with a purchase since the user's first (lifetime)"
    ),
    FeatureColumn(
        "days_since_first_purchase",
        "float64",
        "Days from the first purchase to the end of the day; null if the user never bought",
    ),
    FeatureColumn(
        "days_between_purchases",
        "float64",
        "Mean days between purchase days; null with fewer than two",
    ),
    FeatureColumn(
        "purchase_overdue_ratio",
        "float64",
        "days_since_last_purchase / days_between_purchases (1 = due now); null without a gap",
    ),
    FeatureColumn("view_to_cart_rate_30d", "float64", "carts_30d / views_30d (0 when no views)"),
    FeatureColumn(
        "cart_to_purchase_rate_30d", "float64", "purchases_30d / carts_30d (0 when no carts)"
    ),
    FeatureColumn("avg_order_value_30d", "float64", "spend_30d / purchases_30d (0 when none)"),
    FeatureColumn("rfm_recency", "int64", "RFM recency score 1-5 (5 = most recent), all users"),
    FeatureColumn("rfm_frequency", "int64", "RFM frequency score 1-5 (purchases, 30 days)"),
    FeatureColumn("rfm_monetary", "int64", "RFM monetary score 1-5 (spend, 30 days)"),
    *(
        FeatureColumn(f"avg_view_price_{w}d", "float64", f"Mean price of viewed items, {w} day(s)")
        for w in VIEW_PRICE_WINDOWS
    ),
    *(
        FeatureColumn(
            f"device_share_{d}_{w}d",
            "float64",
            f"Share of events from {d}, {w} day(s)"
            + ("" if w == 30 else "; null without events in the window"),
        )
        for d in DEVICES
        for w in WINDOWS
    ),
    *(
        column
        for rank in range(1, TOP_CATEGORIES + 1)
        for column in (
            FeatureColumn(
                f"top_category_{rank}", "string", f"Rank-{rank} category by share of events, 30d"
            ),
            FeatureColumn(
                f"top_category_{rank}_share", "float64", f"Share of events in top_category_{rank}"
            ),
        )
    ),
)

ITEM_POPULARITY: tuple[FeatureColumn, ...] = (
    *_windowed("item_views", "int64", "Views of the item"),
    *_windowed("item_carts", "int64", "Add-to-carts of the item"),
    *_windowed("item_purchases", "int64", "Purchases of the item"),
    FeatureColumn("item_conversion_rate_30d", "float64", "item_purchases_30d / item_views_30d"),
    FeatureColumn("item_price", "float64", "Latest list price"),
    FeatureColumn("item_category", "string", "Catalogue category"),
    FeatureColumn("item_brand", "string", "Brand"),
    FeatureColumn("item_days_since_launch", "float64", "Days from launch to the end of the day"),
)

USER_SEGMENT: tuple[FeatureColumn, ...] = (
    FeatureColumn("segment_id", "int64", "Customer segment (segmentation model's champion)"),
    FeatureColumn("segment_name", "string", "Readable name of the segment"),
)

# Written by `personalize recommend batch` from the recommender's champion, read by serving.
USER_RECOMMENDATIONS: tuple[FeatureColumn, ...] = (
    FeatureColumn(
        "recommended_item_ids", "string", "Top-k item ids for the user, best first, comma-separated"
    ),
    FeatureColumn("recommended_scores", "string", "Their scores, comma-separated, same order"),
    FeatureColumn("recommender_version", "int64", "Registered recommender version that made them"),
)

# Real-time counters pushed by serving (push source), not computed in batch.
USER_REALTIME: tuple[FeatureColumn, ...] = (
    FeatureColumn("rt_views_1h", "int64", "Views in the last hour (pushed by serving)"),
    FeatureColumn("rt_carts_1h", "int64", "Add-to-carts in the last hour (pushed by serving)"),
)


@dataclass(frozen=True)
class FeatureTable:
    name: str  # feature view name and offline dataset name
    entity: Literal["user", "item"]
    join_key: str
    columns: tuple[FeatureColumn, ...]
    ttl_days: int

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]


FEATURE_TABLES: dict[str, FeatureTable] = {
    t.name: t
    for t in (
        FeatureTable("user_activity", "user", "user_id", USER_ACTIVITY, ttl_days=2),
        FeatureTable("item_popularity", "item", "item_id", ITEM_POPULARITY, ttl_days=2),
        FeatureTable("user_segment", "user", "user_id", USER_SEGMENT, ttl_days=30),
        FeatureTable("user_recommendations", "user", "user_id", USER_RECOMMENDATIONS, ttl_days=30),
    )
}
