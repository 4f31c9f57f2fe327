"""What airflow_compat relies on, checked against the installed Airflow."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from packaging.specifiers import SpecifierSet

from pipelines.config import Settings
from pipelines.orchestration.airflow_compat import AIRFLOW_RANGE, TaskBodyClock


def test_the_installed_airflow_is_in_the_range_the_patches_were_written_for() -> None:
    assert version("apache-airflow") in SpecifierSet(",".join(AIRFLOW_RANGE))


def test_the_dagbag_module_still_has_the_names_the_bundle_reuse_replaces(
    airflow_settings: Settings,  # Airflow binds its home at first import: the session's one
) -> None:
    from airflow.dag_processing import dagbag

    assert callable(dagbag.BundleDagBag) and callable(dagbag.sync_bag_to_db)


def test_the_task_body_clock_wraps_execute_task_and_puts_it_back(
    airflow_settings: Settings,
) -> None:
    from airflow.sdk.execution_time import task_runner

    original = task_runner._execute_task
    assert list(inspect.signature(original).parameters)[:3] == ["context", "ti", "log"]
    with TaskBodyClock():
        assert task_runner._execute_task is not original
    assert task_runner._execute_task is original


def test_the_task_body_clock_counts_the_bodies_of_each_run(airflow_settings: Settings) -> None:
    from datetime import date

    from pipelines.orchestration.runner import run_dag

    with TaskBodyClock() as clock:
        records = run_dag(airflow_settings, "producer", date(2026, 5, 20), follow=True)
    assert [r.dag_id for r in records] == ["producer", "consumer"]
    # one task each: produce, then consume on the asset
    assert {key: clock.calls[key] for key in clock.seconds} == {
        (r.dag_id, r.run_id): 1 for r in records
    }
