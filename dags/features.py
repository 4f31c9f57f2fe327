"""
### features — daily customer and item features into Feast

Runs when ingest updates the `curated` asset (the event carries the day it loaded), or for an
explicit day with `personalize run features --date D` / `personalize backfill features ...`.

1. **compute** the day's features from the 30 curated days ending at D (recency/frequency/monetary,
   engagement windows, category affinity, item popularity) and write the offline partitions
   `feast/offline/<view>/date=D/` atomically;
2. **apply** the Feast repo (`feature_repo/`, idempotent);
3. **materialize** only the interval of D (with a one-day overlap for late data) into the online
   store — never overwriting newer values already online;
4. update the `features` asset with `extra={"day": D}` for training and monitoring.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from assets import CURATED, FEATURES

from pipelines.config import get_settings
from pipelines.orchestration.dag_defaults import dag_defaults

SETTINGS = get_settings()


@dag(
    dag_id="features",
    schedule=[CURATED],
    catchup=False,
    max_active_runs=1,
    tags=["personalize", "features", "feast"],
    **dag_defaults(SETTINGS),
    doc_md=__doc__,
)
def features() -> None:
    # multiple_outputs=False: one XCom per task; a `-> dict` task would push every key too
    @task(multiple_outputs=False)
    def compute(**context: object) -> dict:
        from pipelines.flows.features import compute_for_run

        return compute_for_run(context)

    @task
    def apply_repo() -> None:
        from pipelines.flows.features import apply_for_run

        apply_for_run()

    @task(multiple_outputs=False)
    def materialize(**context: object) -> dict:
        from pipelines.flows.features import materialize_for_run

        return materialize_for_run(context)

    @task(multiple_outputs=False, outlets=[FEATURES])
    def announce_features(**context: object) -> dict:
        from pipelines.flows.features import features_event_extra

        extra = features_event_extra(context)
        context["outlet_events"][FEATURES].extra = extra
        return extra

    @task(trigger_rule="none_failed")  # a skipped branch is no failure; a failed task is
    def record_success(**context: object) -> dict:
        from pipelines.flows.watchdog import record_success_for_run

        return record_success_for_run(context)

    [compute(), apply_repo()] >> materialize() >> announce_features() >> record_success()


features()
