"""Feature services: what each model reads, versioned. A change of features is a new version."""

from feast import FeatureService
from feature_views import (
    item_popularity,
    user_activity,
    user_realtime,
    user_recommendations,
    user_segment,
)

from pipelines.features.schema import USER_ACTIVITY

# The user side of recommendations: category affinity, not the whole activity profile.
RECOMMENDER_USER_FEATURES = [
    c.name
    for c in USER_ACTIVITY
    if c.name.startswith("top_category_") or c.name == "distinct_categories_30d"
]

propensity_v1 = FeatureService(
    name="propensity_v1",
    features=[user_activity, user_segment, user_realtime],
    description="Purchase propensity: activity, RFM, segment and real-time counters of a user.",
    tags={"model": "propensity", "version": "1"},
)

recommender_v1 = FeatureService(
    name="recommender_v1",
    features=[user_activity[RECOMMENDER_USER_FEATURES], item_popularity],
    description="Recommendations: a user's top categories with the candidate item's popularity.",
    tags={"model": "recommender", "version": "1"},
)

recommendations_v1 = FeatureService(
    name="recommendations_v1",
    features=[user_recommendations],
    description="Served recommendations: the champion recommender's top-k per user (batch).",
    tags={"model": "recommender", "version": "1"},
)
