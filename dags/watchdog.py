"""
### watchdog — "missing run": a day whose daily DAG has not succeeded by its deadline

Hourly. A failed task pages through Airflow's failure callback; a run that never happens (the
scheduler was down, a batch never landed so `features` and `monitor` never started, a run stuck
in the queue) pages no one -- except this. Each daily DAG (`ingest`, `features`, `monitor`) ends
with `record_success`, which writes `runs/<dag>/<day>.json`; **check_missing_runs** raises a
critical `missing_run` alert for every day of the last week whose deadline (the end of the day,
UTC, plus `run_deadline_hours`, default 6) has passed without that entry, once per cool-down, and
resolves it once the day has succeeded. What to do: `docs/runbook.md#missing_run`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from pipelines.config import get_settings
from pipelines.orchestration.dag_defaults import dag_defaults

SETTINGS = get_settings()


@dag(
    dag_id="watchdog",
    schedule="@hourly",
    catchup=False,
    max_active_runs=1,
    tags=["personalize", "monitoring"],
    **dag_defaults(SETTINGS),
    doc_md=__doc__,
)
def watchdog() -> None:
    @task(multiple_outputs=False)
    def check_missing_runs(**context: object) -> dict:
        from pipelines.flows.watchdog import check_missing_runs_for_run

        return check_missing_runs_for_run(context)

    check_missing_runs()


watchdog()
