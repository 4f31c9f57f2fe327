"""What the ``curated`` asset event says about the day it made available."""

from __future__ import annotations

from typing import Any


def curated_event_extra(loaded: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"day": D, "rows": {"events": n, ...}}`` from the tables' ingest results."""
    days = {result["day"] for result in loaded}
    if len(days) != 1:
        raise ValueError(f"ingest results disagree on the day: {sorted(days)}")
    return {
        "day": days.pop(),
        "rows": {result["table"]: result["rows"] for result in loaded},
    }
