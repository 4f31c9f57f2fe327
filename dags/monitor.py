"""
### monitor — drift, live performance and the actions they call for

Runs when the `features` asset is updated (the event names the day), or for an explicit day with
`personalize run monitor --date D`. For every model with a `champion`:

1. **check_data** — the day's features exist; feature days missing in the week before (a
   quarantined batch, a day that never landed) raise a `missing_data` alert;
2. **monitor_<model>** — data drift of the champion's inputs and drift of its predictions against
   the reference sample stored with its training run (Evidently, HTML + JSON under
   `reports/<model>/<date>/`, also logged to the MLflow experiment `personalize-monitoring`); live
   performance once labels have matured, beside the `previous_champion` scored in shadow on the
   same rows. The gates decide: alert, retrain, or roll back (audited, alerted);
3. **plan_retrain** → **trigger_train** — when drift calls for it (at most once per cool-down),
   a `train` run for the day and the drifted models;
4. **send_digest** — the day's warnings in one message (critical alerts paged at once; info is
   recorded only).

Thresholds live in `pipelines/gates.toml` (`[monitoring]`); alerts go to `alerts.jsonl`, and
critical ones at once to the webhook / e-mail configured in the settings. What to do about each
alert: `docs/runbook.md`.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from assets import FEATURES

from pipelines.config import get_settings
from pipelines.models.catalog import model_names
from pipelines.orchestration.dag_defaults import HEAVY_QUEUE, dag_defaults

SETTINGS = get_settings()


@dag(
    dag_id="monitor",
    schedule=[FEATURES],
    catchup=False,
    max_active_runs=1,
    tags=["personalize", "monitoring", "evidently"],
    **dag_defaults(SETTINGS),
    doc_md=__doc__,
)
def monitor() -> None:
    # multiple_outputs=False: one XCom per task; a `-> dict` task would push every key too
    @task(multiple_outputs=False)
    def check_data(**context: object) -> dict:
        from pipelines.flows.monitor import MonitoringError, check_data_for_run
        from pipelines.orchestration.notifier import AlertedFailure

        try:
            return check_data_for_run(context)
        except MonitoringError as problem:  # alerted already; a retry would not bring the data
            raise AlertedFailure(str(problem)) from None

    @task(multiple_outputs=False, queue=HEAVY_QUEUE)  # Celery: the heavy queue
    def watch(model: str, **context: object) -> dict:
        from pipelines.flows.monitor import monitor_model_for_run

        return monitor_model_for_run(model, context)

    @task(multiple_outputs=False)
    def plan_retrain(verdicts: list, **context: object) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.flows.monitor import plan_retrain_for_run

        plan = plan_retrain_for_run(verdicts, context)
        if plan is None:
            raise AirflowSkipException("no model needs retraining")
        return plan

    @task(multiple_outputs=False, trigger_rule="all_done")
    def send_digest(**context: object) -> dict:
        from pipelines.flows.monitor import send_digest_for_run

        return send_digest_for_run(context)

    @task(trigger_rule="none_failed")  # a skipped branch is no failure; a failed task is
    def record_success(**context: object) -> dict:
        from pipelines.flows.watchdog import record_success_for_run

        return record_success_for_run(context)

    checked = check_data()
    verdicts = []
    for model in model_names():
        verdict = watch.override(task_id=f"monitor_{model}")(model)
        checked >> verdict
        verdicts.append(verdict)
    plan = plan_retrain(verdicts)
    verdicts >> send_digest()  # the day's warnings in one message, whatever the verdicts
    verdicts >> record_success()  # the day is monitored once every champion was watched
    plan >> TriggerDagRunOperator(
        task_id="trigger_train",
        trigger_dag_id="train",
        conf={
            "day": "{{ ti.xcom_pull(task_ids='plan_retrain')['day'] }}",
            "models": "{{ ti.xcom_pull(task_ids='plan_retrain')['models'] }}",
        },
        wait_for_completion=False,
    )


monitor()
