"""``personalize story --profile prod`` on a scratch cluster: a small shop's history and live days
through real Airflow DAG runs on the PostgreSQL metadata DB, MLflow behind the story's own
tracking server on PostgreSQL, Feast's registry on PostgreSQL and its online store on Redis, and
the serving API reading Redis during the live days.

The cluster (``pipelines.local.cluster.scratch_cluster``) gives fresh databases and a Redis of
its own; none of its Airflow services is started, as the story runs its DAGs in-process (and
the Celery module's running scheduler would take the story's asset events as its own), and its
registry must start empty: the first blessed models become champions (the story turns prod's
auto-promotion on, and says so).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import require_service, services_required

pytestmark = [pytest.mark.services, pytest.mark.cluster, pytest.mark.xdist_group("prod")]

# the history ends on a Sunday (the first champions' train); live Monday .. Saturday: the hand
# promotion on Friday is judged by Saturday's monitoring, no weekly train in between
STORY = (
    "--users",
    "300",
    "--items",
    "60",
    "--history-days",
    "18",
    "--live-days",
    "6",
    "--start",
    "2026-01-08",
)
STORY_TIMEOUT = 600.0


def test_the_prod_story_completes_with_every_turn_and_serves_from_redis(tmp_path: Path) -> None:
    from pipelines.local.cluster import scratch_cluster

    require_service("PostgreSQL", "127.0.0.1", 5432)
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if services_required():
            pytest.fail(reason, False)
        pytest.skip(reason)
    # mlflow_uri=None: the story starts its tracking server on the cluster's MLflow database
    with scratch_cluster(
        tmp_path, workers=1, mlflow_uri=None, train_time_budget_seconds=5.0
    ) as cluster:
        started = time.monotonic()
        done = cluster.cli("story", *STORY, timeout=STORY_TIMEOUT)
        seconds = time.monotonic() - started
        print(f"\nprod story: {seconds:.0f} s")
        summary_file = cluster.settings.state_dir / "story" / "summary.json"
        assert done.returncode == 0, done.stderr[-6000:]
        summary = json.loads(summary_file.read_text())

    assert "prod: auto-promotion is off" in done.stderr
    assert summary["missing_turns"] == [], summary["turns"]
    for model, facts in summary["models"].items():
        assert "champion" in facts["aliases"], (model, facts["aliases"])
    assert summary["paths"]["state dir"] == str(cluster.settings.state_dir)

    # the serving step: every read 200, every post 202 (or 422: events the contract refuses, as
    # the broken day's negative prices), the propensity features read from Redis
    responses = summary["live"]["responses"]
    assert responses.get("GET /v1/users/{user}/propensity 200", 0) >= 2, responses
    assert responses.get("GET /v1/users/{user}/recommendations 200", 0) >= 2, responses
    assert responses.get("POST /v1/events 202", 0) >= 6, responses
    assert all(
        key.endswith(" 200") if key.startswith("GET") else key.endswith((" 202", " 422"))
        for key in responses
    ), responses
    assert summary["live"]["realtime_after"], summary["live"]
    assert cluster.settings.feast_online_store["type"] == "redis"
