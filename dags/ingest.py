"""
### ingest — the validation gate of the platform

Daily, one run per data day (catchup for backfills). Waits for the day's **events** batch in
`landing/events/date=D/` (users and items batches are optional), validates **users**, **items**
and **events** with their Great Expectations suites (`expectations/*.json`), then for each table:

* **valid**: the batch is written to `curated/<table>/date=D/` atomically with `_validation.json`
  (GX run id, suite version, statistics);
* **invalid**: the whole batch moves to `quarantine/<table>/date=D/<attempt>/` with `reason.json`
  and a Data Docs page, an alert is written, and the task fails with a one-line summary. Fix the
  batch, then `personalize release-quarantine TABLE D`.

When all three tables are curated, the `curated` asset is updated with `extra={"day": D}` and the
features DAG runs. Re-running a day is idempotent.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag, task
from assets import CURATED

from pipelines.config import get_settings
from pipelines.orchestration.dag_defaults import dag_defaults

SETTINGS = get_settings()


def _validate(table: str, context: dict) -> dict:
    """Validate and load one table; a bad batch fails the task without retries."""
    from pipelines.flows.ingest import ingest_for_run
    from pipelines.orchestration.notifier import AlertedFailure, MissingBatchFailure
    from pipelines.validation.ingest import BatchMissing, BatchQuarantined

    try:
        return ingest_for_run(table, context)
    except BatchQuarantined as bad_batch:  # its quarantine alert is out: no second page
        raise AlertedFailure(str(bad_batch)) from None
    except BatchMissing as missing:
        raise MissingBatchFailure(str(missing)) from None


@dag(
    dag_id="ingest",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    catchup=True,
    max_active_runs=1,
    tags=["personalize", "ingest", "data-quality"],
    **dag_defaults(SETTINGS),
    doc_md=__doc__,
)
def ingest() -> None:
    @task.sensor(
        poke_interval=SETTINGS.sensor_poke_seconds,
        timeout=SETTINGS.sensor_timeout_seconds,
        mode="poke",
    )
    def wait_for_events(**context: object) -> bool:
        from pipelines.flows.ingest import events_landed_for_run
        from pipelines.orchestration.notifier import MissingBatchFailure
        from pipelines.validation.ingest import BatchMissing

        try:
            return events_landed_for_run(context)
        except BatchMissing as missing:
            raise MissingBatchFailure(str(missing)) from None

    # multiple_outputs=False: one XCom per task; a `-> dict` task would push every key too
    @task(multiple_outputs=False)
    def validate_users(**context: object) -> dict:
        return _validate("users", context)

    @task(multiple_outputs=False)
    def validate_items(**context: object) -> dict:
        return _validate("items", context)

    @task(multiple_outputs=False, trigger_rule="all_done")
    def validate_events(**context: object) -> dict:
        return _validate("events", context)

    @task(multiple_outputs=False, outlets=[CURATED])
    def announce_curated(loaded: list[dict], **context: object) -> dict:
        from pipelines.validation.announce import curated_event_extra

        extra = curated_event_extra(loaded)
        context["outlet_events"][CURATED].extra = extra
        return extra

    @task(trigger_rule="none_failed")  # a skipped branch is no failure; a failed task is
    def record_success(**context: object) -> dict:
        from pipelines.flows.watchdog import record_success_for_run

        return record_success_for_run(context)

    landed = wait_for_events()
    references = [validate_users(), validate_items()]
    landed >> references
    events = validate_events()
    references >> events
    announce_curated([*references, events]) >> record_success()


ingest()
