"""
### train — fit, register, gate and promote every model of the catalogue

Weekly (Monday 04:00 UTC, on the week that just ended), on demand with
`personalize train [MODEL] [--date D]`, and when monitoring sees drift (a triggered run whose conf
names the day and the model).
The run's conf may name the models to train: `{"day": "YYYY-MM-DD", "models": ["propensity"]}`;
the other models' train, gate and promote tasks are skipped (Airflow state `skipped`).

For each model of `pipelines/models/catalog.py` (`propensity`, `recommender`, `segmentation`):

1. **train** — build the training set (point-in-time correct, from Feast) over the window ending at
   the day, fit the candidates, evaluate on a temporal test split, log everything to MLflow
   (params, metrics, plots, model with signature, dataset lineage, GX run ids, model card,
   reference sample for drift) and register a new version with the alias `challenger`;
2. **gate** — score the challenger and the current `champion` on the same fresh holdout and bless
   or reject the challenger (thresholds in `pipelines/gates.toml`); the record is written to the
   version's tags and description;
3. **promote** — a blessed challenger becomes `champion` when auto-promotion is on (local profile),
   otherwise it waits for a human in the MLflow UI. Every alias move lands in `audit.jsonl`.

Then the segmentation champion's labels are written to the `user_segment` feature view and the
`models` asset is updated.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag, task
from assets import MODELS

from pipelines.config import get_settings
from pipelines.models.catalog import model_names
from pipelines.orchestration.dag_defaults import HEAVY_QUEUE, dag_defaults

SETTINGS = get_settings()


@dag(
    dag_id="train",
    schedule=CronDataIntervalTimetable("0 4 * * 1", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["personalize", "models", "mlflow"],
    **dag_defaults(SETTINGS),
    doc_md=__doc__,
)
def train() -> None:
    # multiple_outputs=False: one XCom per task; a `-> dict` task would push every key too
    @task(multiple_outputs=False, queue=HEAVY_QUEUE)  # Celery: the heavy queue
    def fit(model: str, **context: object) -> dict:
        from pipelines.flows.train import train_for_run

        return train_for_run(model, context)

    @task(multiple_outputs=False)
    def gate(model: str, trained: dict, **context: object) -> dict:
        from pipelines.flows.train import gate_for_run

        return gate_for_run(model, trained)

    @task(multiple_outputs=False)
    def promote(model: str, gated: dict, **context: object) -> dict:
        from pipelines.flows.train import promote_for_run

        return promote_for_run(model, gated)

    @task(multiple_outputs=False, trigger_rule="none_failed")
    def publish_segments(**context: object) -> dict:
        from pipelines.flows.train import publish_segments_for_run

        return publish_segments_for_run(context)

    @task(multiple_outputs=False, outlets=[MODELS], trigger_rule="none_failed")
    def announce_models(**context: object) -> dict:
        from pipelines.flows.train import models_event_extra

        extra = models_event_extra(context)
        context["outlet_events"][MODELS].extra = extra
        return extra

    promoted = {}
    for model in model_names():
        trained = fit.override(task_id=f"train_{model}")(model)
        gated = gate.override(task_id=f"gate_{model}")(model, trained)
        promoted[model] = promote.override(task_id=f"promote_{model}")(model, gated)
    segments = publish_segments()
    promoted["segmentation"] >> segments
    [promoted["propensity"], promoted["recommender"], segments] >> announce_models()


train()
