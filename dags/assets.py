"""Assets of the platform, declared once: producers set ``outlets``, consumers ``schedule``.

Each asset event carries ``extra={"day": "YYYY-MM-DD"}``: the data day it made available.
"""

from __future__ import annotations

from airflow.sdk import Asset

CURATED = Asset("personalize://curated", extra={"layer": "curated"})
FEATURES = Asset("personalize://features", extra={"layer": "features"})
MODELS = Asset("personalize://models", extra={"layer": "models"})
