"""The story's live traffic on one day of the serving shop: a sample of the day's events goes
through the real API (uvicorn on a free port), the day's ingest counts each once, and the followed
customer's recommendations are shown changing when the champion moves -- in the story's words.

The full story (tests/e2e/test_story.py) runs the same code over its live days.
"""

from __future__ import annotations

from datetime import timedelta

from pipelines.cli.common import console
from pipelines.cli.story import _print_live
from pipelines.data.event_log import read_event_log
from pipelines.local.live import live_traffic
from pipelines.registry import CHAMPION, aliases, mlflow_client
from pipelines.validation.ingest import ingest_table

from .conftest import Shop


def test_a_live_day_goes_through_the_api_counts_once_and_shows_the_change(shop: Shop) -> None:
    settings = shop.settings
    day = shop.last_day - timedelta(days=3)  # a day no other serving test posts to
    # the champion now (another serving test may have moved it) and another registered version
    champion = aliases(settings, "recommender")[CHAMPION]
    other = (
        shop.next_recommender
        if champion != shop.next_recommender
        else shop.champions["recommender"]
    )
    client = mlflow_client(settings)
    try:
        with live_traffic(settings, seed=3) as traffic:
            traffic.before_day(settings, day)
            live = traffic.summary
            user = live.user
            assert user is not None and live.before is not None
            (entry,) = live.days
            assert entry["accepted"] == entry["posted"] > 0 and entry["refused"] == 0
            # the API took them: the day's serving log holds exactly what was posted
            logged = read_event_log(settings.landing_dir, day)
            assert len(logged) == entry["posted"] and user in set(logged["user_id"])
            assert live.realtime_after["rt_views_1h"] or live.realtime_after["rt_carts_1h"]

            result = ingest_table(settings, "events", day)
            assert result.status == "loaded" and result.rows == entry["export_rows"]
            # an engineer moves the champion in the MLflow UI; serving picks it up after the day
            client.set_registered_model_alias("recommender", CHAMPION, str(other))
            traffic.after_day(settings, day)
            assert entry["ingest"] == "curated" and entry["counted_once"]
            assert entry["posted_curated"] == entry["posted"]
            assert live.changed_on == day.isoformat()
            assert live.before["version"] == champion
            assert live.after["version"] == other
            # every answer counted per endpoint: the customer's two reads of each, the posts
            batches = -(-entry["posted"] // settings.serve_max_batch_events)
            assert live.responses == {
                "GET /v1/users/{user}/recommendations 200": 2,
                "GET /v1/users/{user}/propensity 200": 2,
                "POST /v1/events 202": batches,
            }, live.responses
    finally:
        client.set_registered_model_alias("recommender", CHAMPION, str(champion))

    with console.capture() as captured:
        _print_live(live.to_dict())
    text = captured.get()
    assert f"customer {user}" in text
    assert f"recommender v{champion}" in text and f"recommender v{other}" in text
    assert "before" in text and "after" in text and "counted once" in text
