"""Entities: whom and what the features describe. Join keys are the curated tables' ids."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A shopper (curated users.user_id).",
)

item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A catalogue item (curated items.item_id).",
)

ENTITIES = {"user": user, "item": item}
"""schema.FeatureTable.entity -> Entity."""
