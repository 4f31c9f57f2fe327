"""The in-process runner on real Airflow (no mocks), with the toy DAGs of conftest.py.

All tests share the session's Airflow DB, so each test works on its own days.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.orchestration import (
    AirflowConfigError,
    DagImportError,
    FollowUp,
    RunEvent,
    UnknownDag,
    airflow_environment,
    backfill,
    configure_airflow,
    load_dags,
    run_dag,
)


def _dag_runs(dag_id: str) -> list[tuple[str, dict]]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id))
        return [(run.run_type, dict(run.conf or {})) for run in runs]


def _asset_queue(dag_id: str) -> list[int]:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        return list(
            session.scalars(
                select(AssetDagRunQueue.asset_id).where(AssetDagRunQueue.target_dag_id == dag_id)
            )
        )


def _set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session(scoped=False) as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))


def test_run_without_follow_lists_the_consumer_and_does_not_run_it(
    airflow_settings: Settings, toy_markers: Path
) -> None:
    day = date(2026, 1, 5)
    events: list[RunEvent] = []

    records = run_dag(airflow_settings, "producer", day, on_event=events.append)

    assert len(records) == 1
    record = records[0]
    assert (record.dag_id, record.day, record.state, record.failed_tasks) == (
        "producer",
        day,
        "success",
        [],
    )
    assert (toy_markers / "produced-2026-01-05").read_text() == "2026-01-05"
    # as declared, although Airflow stores the URI as "personalize://toy/"
    assert record.asset_events == [("personalize://toy", {"day": "2026-01-05"})]
    follow_ups = {f.dag_id: f for f in record.follow_ups}
    assert sorted(follow_ups) == ["both", "consumer"]
    consumer = follow_ups["consumer"]
    assert (consumer.day, consumer.command) == (day, "personalize run consumer --date 2026-01-05")
    assert consumer.describe() == (
        "not run: consumer for 2026-01-05 (asset personalize://toy from producer)"
        " — run it with: personalize run consumer --date 2026-01-05"
    )
    assert follow_ups["both"].waiting_for == ("personalize://toy-other",)
    assert not (toy_markers / "consumed-2026-01-05").exists()
    assert [(e.kind, e.dag_id, e.day, e.state) for e in events] == [
        ("started", "producer", day, None),
        ("finished", "producer", day, "success"),
    ]
    assert record.duration_s > 0


def test_follow_runs_the_consumer_for_the_same_day(
    airflow_settings: Settings, toy_markers: Path
) -> None:
    day = date(2026, 1, 6)

    records = run_dag(airflow_settings, "producer", day, follow=True)

    assert [(r.dag_id, r.day, r.state) for r in records] == [
        ("producer", day, "success"),
        ("consumer", day, "success"),
    ]
    # consumer ran, so it is no longer a "not run" follow-up; both still waits for toy-other
    assert [(f.dag_id, f.waiting_for) for f in records[0].follow_ups] == [
        ("both", ("personalize://toy-other",))
    ]
    assert records[1].reason == "asset personalize://toy from producer"
    assert (toy_markers / "consumed-2026-01-06").read_text() == "2026-01-06"


def test_followed_consumer_leaves_no_queued_asset_run_behind(
    airflow_settings: Settings, toy_markers: Path
) -> None:
    # Only unpaused DAGs get AssetDagRunQueue rows (DAGs start paused).
    _set_paused("consumer", False)
    try:
        run_dag(airflow_settings, "producer", date(2026, 1, 7))
        assert _asset_queue("consumer"), "an unfollowed consumer stays queued for a scheduler"

        run_dag(airflow_settings, "producer", date(2026, 1, 7), follow=True)
        assert _asset_queue("consumer") == []
        assert (toy_markers / "consumed-2026-01-07").exists()
    finally:
        _set_paused("consumer", True)


def test_backfill_runs_every_day_in_order(airflow_settings: Settings, toy_markers: Path) -> None:
    events: list[RunEvent] = []

    records = backfill(
        airflow_settings, "producer", date(2026, 1, 10), date(2026, 1, 12), on_event=events.append
    )

    assert [(r.dag_id, r.day.isoformat(), r.state) for r in records] == [
        ("producer", "2026-01-10", "success"),
        ("producer", "2026-01-11", "success"),
        ("producer", "2026-01-12", "success"),
    ]
    assert [e.day.day for e in events if e.kind == "finished"] == [10, 11, 12]
    for day in ("2026-01-10", "2026-01-11", "2026-01-12"):
        assert (toy_markers / f"produced-{day}").exists()
    # without follow, each day lists its own consumer run
    consumers = [f.day.day for r in records for f in r.follow_ups if f.dag_id == "consumer"]
    assert consumers == [10, 11, 12]


def test_a_consumer_of_two_assets_runs_once_both_have_the_day(
    airflow_settings: Settings, toy_markers: Path
) -> None:
    day = date(2026, 1, 20)
    (other,) = run_dag(airflow_settings, "other", day, follow=True)
    assert [(f.dag_id, f.waiting_for) for f in other.follow_ups] == [
        ("both", ("personalize://toy",))
    ]
    assert not (toy_markers / "both-2026-01-20").exists()

    records = run_dag(airflow_settings, "producer", day, follow=True)

    assert [(r.dag_id, r.state) for r in records] == [
        ("producer", "success"),
        ("both", "success"),
        ("consumer", "success"),
    ]
    assert (toy_markers / "both-2026-01-20").exists()
    assert records[0].follow_ups == []


def test_conf_cannot_contradict_the_day(airflow_settings: Settings) -> None:
    with pytest.raises(ValueError, match="contradicts"):
        run_dag(airflow_settings, "producer", date(2026, 1, 1), conf={"day": "2026-01-02"})


def test_backfill_with_follow_interleaves_consumers(airflow_settings: Settings) -> None:
    records = backfill(
        airflow_settings, "producer", date(2026, 1, 13), date(2026, 1, 14), follow=True
    )

    assert [(r.dag_id, r.day.day) for r in records] == [
        ("producer", 13),
        ("consumer", 13),
        ("producer", 14),
        ("consumer", 14),
    ]


def test_failing_task_is_reported_and_backfill_continues(
    airflow_settings: Settings, toy_markers: Path
) -> None:
    events: list = []
    records = backfill(
        airflow_settings, "failing", date(2026, 1, 1), date(2026, 1, 3), on_event=events.append
    )

    assert [r.state for r in records] == ["success", "failed", "success"]
    # the finished event says what failed, as the story prints it under the day
    finished = [e.failed_tasks for e in events if e.kind == "finished"]
    assert finished == [(), ("check: ValueError: toy failure for 2026-01-02",), ()]
    bad = records[1]
    assert [f.task_id for f in bad.failed_tasks] == ["check"]
    assert bad.failed_tasks[0].message == "ValueError: toy failure for 2026-01-02"
    assert str(bad.failed_tasks[0]) == "check: ValueError: toy failure for 2026-01-02"
    assert (toy_markers / "checked-2026-01-03").exists()


def test_retries_happen_within_one_run(airflow_settings: Settings, toy_markers: Path) -> None:
    (record,) = run_dag(airflow_settings, "flaky", date(2026, 1, 4))

    assert record.state == "success"
    assert (toy_markers / "flaky-tries-2026-01-04").read_text() == "2"
    assert record.duration_s >= 1.0  # retry_delay is honoured by sleeping


def test_tasks_run_in_this_process(
    airflow_settings: Settings, toy_markers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.days

    monkeypatch.setattr(pipelines.days, "day_from_context", lambda context: date(2026, 2, 2))

    (record,) = run_dag(airflow_settings, "producer", date(2026, 2, 1))

    assert record.state == "success"
    assert (toy_markers / "produced-2026-02-02").exists()
    assert not (toy_markers / "produced-2026-02-01").exists()


def test_rerunning_a_day_replaces_that_days_run_only(
    airflow_settings: Settings, toy_markers: Path
) -> None:
    first = run_dag(airflow_settings, "consumer", date(2026, 3, 1))
    second = run_dag(airflow_settings, "consumer", date(2026, 3, 1))
    other = run_dag(airflow_settings, "consumer", date(2026, 3, 2))

    assert [r.state for r in first + second + other] == ["success"] * 3
    days = sorted(conf.get("day", "") for _, conf in _dag_runs("consumer"))
    assert days.count("2026-03-01") == 1  # re-run replaced the first run
    assert days.count("2026-03-02") == 1  # and another day's run is kept
    assert (toy_markers / "consumed-2026-03-01").exists()


def test_triggered_run_is_listed_or_followed(airflow_settings: Settings, toy_markers: Path) -> None:
    (record,) = run_dag(airflow_settings, "trigger", date(2026, 4, 1))

    assert record.state == "success"
    assert [(f.dag_id, f.day, f.source, f.reason) for f in record.follow_ups] == [
        ("consumer", date(2026, 4, 1), "trigger", "triggered by trigger.fire")
    ]
    queued = [c for t, c in _dag_runs("consumer") if t == "operator_triggered"]
    assert queued == [{"day": "2026-04-01", "source": "trigger"}]  # left for a scheduler
    assert not (toy_markers / "consumed-2026-04-01").exists()

    records = run_dag(airflow_settings, "trigger", date(2026, 4, 2), follow=True)

    assert [(r.dag_id, r.day.isoformat(), r.state) for r in records] == [
        ("trigger", "2026-04-02", "success"),
        ("consumer", "2026-04-02", "success"),
    ]
    assert (toy_markers / "consumed-2026-04-02").exists()
    queued = [c for t, c in _dag_runs("consumer") if t == "operator_triggered"]
    assert queued == [{"day": "2026-04-01", "source": "trigger"}]  # the followed one is gone
    followed = [c for t, c in _dag_runs("consumer") if c.get("day") == "2026-04-02"]
    assert followed == [{"day": "2026-04-02", "source": "trigger"}]  # its conf was carried over


def test_unknown_dag_lists_the_known_ones(airflow_settings: Settings) -> None:
    with pytest.raises(UnknownDag, match=r"unknown DAG 'nope'.*producer"):
        run_dag(airflow_settings, "nope", date(2026, 1, 1))
    with pytest.raises(UnknownDag):
        backfill(airflow_settings, "nope", date(2026, 1, 1), date(2026, 1, 2))


def test_broken_dag_file_is_named_with_its_error(
    airflow_settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "broken.py").write_text("from airflow.sdk import DAG\nimport no_such_module\n")
    (tmp_path / "fine.py").write_text(
        "from airflow.sdk import DAG\nwith DAG('fine', schedule=None):\n    pass\n"
    )

    assert list(load_dags(tmp_path)) == ["fine"]  # one broken file does not hide the others
    with pytest.raises(DagImportError) as raised:
        load_dags(tmp_path, strict=True)

    message = str(raised.value)
    assert str(tmp_path / "broken.py") in message
    assert "No module named 'no_such_module'" in message


def test_follow_up_line_names_what_it_waits_for() -> None:
    follow_up = FollowUp(
        dag_id="train",
        day=date(2026, 1, 5),
        reason="asset personalize://features from features",
        command="personalize run train --date 2026-01-05",
        waiting_for=("personalize://curated",),
    )

    assert follow_up.describe() == (
        "not run: train for 2026-01-05 (asset personalize://features from features;"
        " still waiting for personalize://curated) — run it with:"
        " personalize run train --date 2026-01-05"
    )


def test_airflow_environment_is_stable_per_state_dir(settings: Settings) -> None:
    from pipelines.orchestration.airflow_env import DEFAULT_DAGS_FOLDER

    first = airflow_environment(settings, dags_folder=DEFAULT_DAGS_FOLDER)
    again = airflow_environment(settings, dags_folder=DEFAULT_DAGS_FOLDER)

    assert first["AIRFLOW_HOME"] == str(settings.state_dir / "airflow")
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == settings.airflow_sql_alchemy_conn
    assert first["AIRFLOW__CORE__DAGS_FOLDER"] == str(DEFAULT_DAGS_FOLDER)
    assert first["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    # generated once, stored under airflow_home, the same for every process of this state dir
    assert first["AIRFLOW__CORE__FERNET_KEY"] == again["AIRFLOW__CORE__FERNET_KEY"]
    assert first["AIRFLOW__API_AUTH__JWT_SECRET"] == again["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert (settings.airflow_home / "jwt_secret").stat().st_mode & 0o077 == 0


def test_a_process_serves_one_airflow_home(airflow_settings: Settings, settings: Settings) -> None:
    configure_airflow(airflow_settings)  # same home again: a no-op

    with pytest.raises(AirflowConfigError, match="cannot switch"):
        configure_airflow(settings)


def test_airflow_imported_first_with_another_home_is_refused(settings: Settings) -> None:
    script = (
        "import sys\n"
        "import airflow.settings\n"
        "from pipelines.config import Settings\n"
        "from pipelines.orchestration import AirflowConfigError, configure_airflow\n"
        "try:\n"
        f"    configure_airflow(Settings(home={str(settings.home)!r}))\n"
        "except AirflowConfigError as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(settings.home / "elsewhere")

    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )

    assert completed.returncode == 3, completed.stderr[-2000:]
    assert "imported before configure_airflow()" in completed.stdout
    assert str(settings.home / "elsewhere") in completed.stdout


def test_the_local_airflow_db_is_in_write_ahead_log_mode(airflow_settings: Settings) -> None:
    """A dozen commits per task instance: WAL saves about a quarter of every run's time."""
    import sqlite3
    from contextlib import closing

    run_dag(airflow_settings, "producer", date(2026, 1, 4))
    database = airflow_settings.airflow_home / "airflow.db"
    with closing(sqlite3.connect(database)) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_write_ahead_log_leaves_other_databases_alone(tmp_path: Path) -> None:
    from pipelines.orchestration.airflow_env import use_write_ahead_log

    use_write_ahead_log("postgresql+psycopg2://postgres@127.0.0.1/airflow")
    use_write_ahead_log(f"sqlite:///{tmp_path / 'new' / 'airflow.db'}")
    assert (tmp_path / "new" / "airflow.db").exists()


def test_dag_test_parses_and_syncs_the_dags_folder_once_until_a_file_changes(
    airflow_settings: Settings, tmp_path: Path
) -> None:
    from airflow.dag_processing import dagbag

    run_dag(airflow_settings, "producer", date(2026, 1, 3))  # installs the reuse
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "empty.py").write_text("# no DAG here\n")

    def bag():
        return dagbag.BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="t")

    first = bag()
    assert bag() is first
    (folder / "another.py").write_text("# a new file\n")
    assert bag() is not first
