"""The session's Airflow, with toy DAGs next to the real ones (Airflow: one home per process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Settings

_HEADER = '''
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, task

TOY = Asset("personalize://toy")


def markers():
    """Toy tasks write marker files into the state dir the runner hands to tasks."""
    from pipelines.config import get_settings

    folder = get_settings().state_dir / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

'''

TOY_DAG_FILES = {
    "producer.py": '"""Toy producer: marks produced-<day> and emits personalize://toy."""\n'
    + _HEADER
    + """
with DAG(
    dag_id="producer",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=True,
    tags=["toy"],
    default_args={"retries": 0},
    doc_md=__doc__,
):

    @task(outlets=[TOY])
    def produce(**context):
        from pipelines.days import day_from_context

        day = day_from_context(context).isoformat()
        (markers() / f"produced-{day}").write_text(day)
        context["outlet_events"][TOY].extra = {"day": day}

    produce()
""",
    "consumer.py": '"""Toy consumer of personalize://toy: marks consumed-<day>."""\n'
    + _HEADER
    + """
with DAG(
    dag_id="consumer",
    schedule=[TOY],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    tags=["toy"],
    default_args={"retries": 0},
    doc_md=__doc__,
):

    @task
    def consume(**context):
        from pipelines.days import day_from_context

        day = day_from_context(context).isoformat()
        (markers() / f"consumed-{day}").write_text(day)

    consume()
""",
    "other.py": '"""Toy producer of personalize://toy-other, the second input of both."""\n'
    + _HEADER
    + """
OTHER = Asset("personalize://toy-other")

with DAG(
    dag_id="other",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=True,
    tags=["toy"],
    default_args={"retries": 0},
    doc_md=__doc__,
):

    @task(outlets=[OTHER])
    def produce_other(**context):
        from pipelines.days import day_from_context

        context["outlet_events"][OTHER].extra = {"day": day_from_context(context).isoformat()}

    produce_other()
""",
    "both.py": '"""Toy consumer of toy AND toy-other: marks both-<day>."""\n'
    + _HEADER
    + """
with DAG(
    dag_id="both",
    schedule=TOY & Asset("personalize://toy-other"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    tags=["toy"],
    default_args={"retries": 0},
    doc_md=__doc__,
):

    @task
    def combine(**context):
        from pipelines.days import day_from_context

        day = day_from_context(context).isoformat()
        (markers() / f"both-{day}").write_text(day)

    combine()
""",
    "failing.py": '"""Toy DAG whose task fails on 2026-01-02 only: a bad day in a backfill."""\n'
    + _HEADER
    + """
with DAG(
    dag_id="failing",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=True,
    tags=["toy"],
    default_args={"retries": 0},
    doc_md=__doc__,
):

    @task
    def check(**context):
        from pipelines.days import day_from_context

        day = day_from_context(context).isoformat()
        if day == "2026-01-02":
            raise ValueError(f"toy failure for {day}\\nsecond line is not shown")
        (markers() / f"checked-{day}").write_text(day)

    check()
""",
    "flaky.py": '"""Toy DAG failing the first try of each day: retries=2, retry_delay=1 s."""\n'
    + _HEADER
    + """
with DAG(
    dag_id="flaky",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=True,
    tags=["toy"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    doc_md=__doc__,
):

    @task
    def wobble(**context):
        from pipelines.days import day_from_context

        day = day_from_context(context).isoformat()
        tries = markers() / f"flaky-tries-{day}"
        count = int(tries.read_text()) + 1 if tries.exists() else 1
        tries.write_text(str(count))
        if count == 1:
            raise RuntimeError("first try fails")

    wobble()
""",
    "trigger.py": '"""Toy DAG that triggers consumer with TriggerDagRunOperator."""\n'
    + _HEADER
    + """
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

with DAG(
    dag_id="trigger",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=True,
    tags=["toy"],
    default_args={"retries": 0},
    doc_md=__doc__,
):
    TriggerDagRunOperator(
        task_id="fire",
        trigger_dag_id="consumer",
        conf={"day": "{{ dag_run.conf['day'] }}", "source": "trigger"},
    )
""",
}


@pytest.fixture(scope="session")
def airflow_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the one Airflow of this test process, DAGs folder = real dags/ + toy DAGs."""
    from pipelines.orchestration.testing import prepare_test_airflow

    return prepare_test_airflow(tmp_path_factory.mktemp("airflow"), TOY_DAG_FILES)


@pytest.fixture(scope="session")
def toy_markers(airflow_settings: Settings) -> Path:
    return airflow_settings.state_dir / "toy"
