"""Run DAGs for a data day in this process, the way the scheduler would, and say what comes next.

``personalize run DAG --date D`` and ``personalize backfill`` call :func:`run_dag` and
:func:`backfill`. Each run is one ``dag.test()`` call: real task instances, XComs and asset events
in the profile's Airflow DB, with no scheduler or worker to start. Measured on a toy DAG: ~5-6 s
for the first run in a process (Airflow builds its in-process execution API), then ~0.2 s.

How a run maps onto Airflow:

* Every run gets ``logical_date = day + 1 00:00 UTC`` (:func:`pipelines.days.logical_date_for`)
  and ``conf={"day": "YYYY-MM-DD"}``. For the daily ``CronDataIntervalTimetable`` DAGs this is the
  scheduler's own run for that day (``data_interval_start == day``). Asset-scheduled DAGs get a
  logical date too, although the scheduler gives their runs none: ``dag.test()`` first deletes the
  existing run *with the same logical date*, so with ``logical_date=None`` every run of an
  asset-scheduled DAG would delete an earlier run of another day. One logical date per day makes a
  re-run replace exactly that day's run and keeps the history of the other days.
* Re-running a day is idempotent: ``dag.test()`` deletes that day's previous run (manual or
  scheduled) and runs it again.
* After a run, its asset events (``AssetEvent`` rows with this run as source) name the DAGs
  scheduled on those assets, and ``TriggerDagRunOperator`` tasks name the runs they queued. Each
  becomes a :class:`FollowUp` for the day in the event's ``extra["day"]`` (or the triggered run's
  ``conf["day"]``, else the same day). With ``follow=True`` they run right away, depth first;
  otherwise they are reported with the command that runs them.
* Following a follow-up cleans up what a scheduler would otherwise run a second time: the
  consumer's ``AssetDagRunQueue`` rows are deleted, as the scheduler does when it creates an
  asset-triggered run (the events are linked to the new run as ``consumed_asset_events``); the
  queued run created by ``TriggerDagRunOperator`` is deleted and replaced by the run we made from
  its conf. Follow-ups that are not followed are left alone, for a scheduler to pick up.
* A consumer scheduled on several assets (``A & B``) is followed only when each of them is ready
  for that day: updated in this chain, queued for it in ``AssetDagRunQueue``, or announced by any
  earlier event with ``extra["day"] == day``; otherwise its follow-up says what it waits for.
  Asset aliases and name/URI references are resolved by the scheduler only and count as ready.
* A (DAG, day) runs at most once per chain, so a loop (monitor -> train -> monitor) stops.
* Tasks run in this process, so they see ``PERSONALIZE_HOME``/``PERSONALIZE_PROFILE`` of the
  ``settings`` passed here (set for the duration of the run).

Airflow is imported inside the functions only: importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pipelines.config import Settings
from pipelines.days import day_range, logical_date_for, parse_day
from pipelines.orchestration.airflow_compat import TaskBodyClock, reuse_bundle_syncs
from pipelines.orchestration.airflow_env import (
    AirflowConfigError,
    configure_airflow,
    configured_airflow,
    resolve_dags_folder,
)

if TYPE_CHECKING:
    from airflow.sdk import DAG

RunState = Literal["success", "failed"]


class UnknownDag(ValueError):
    """No DAG with this id in the DAGs folder."""

    def __init__(self, dag_id: str, known: list[str], dags_folder: Path) -> None:
        self.dag_id = dag_id
        self.known = sorted(known)
        listed = ", ".join(self.known) or "none"
        super().__init__(f"unknown DAG {dag_id!r} in {dags_folder}; known DAGs: {listed}")


class DagImportError(RuntimeError):
    """A file in the DAGs folder fails to import, so its DAGs cannot be run."""

    def __init__(self, errors: Mapping[str, str], dag_id: str | None = None) -> None:
        self.errors = dict(errors)
        self.dag_id = dag_id
        head = (
            f"DAG {dag_id!r} is not available: " if dag_id else ""
        ) + f"{len(self.errors)} DAG file(s) failed to import"
        details = "\n".join(f"{path}:\n{error.rstrip()}" for path, error in self.errors.items())
        super().__init__(f"{head}\n{details}")


@dataclass(frozen=True)
class FailedTask:
    """A task instance that ended ``failed``, with its exception on one line when known."""

    task_id: str
    message: str | None = None
    map_index: int = -1

    def __str__(self) -> str:
        name = self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"
        return f"{name}: {self.message}" if self.message else name


@dataclass(frozen=True)
class FollowUp:
    """A run that a finished run made due: a consumer of its assets or a triggered DAG."""

    dag_id: str
    day: date
    reason: str
    command: str
    source: Literal["asset", "trigger"] = "asset"
    conf: dict[str, Any] = field(default_factory=dict)
    # asset follow-ups: ids of the asset events that make it due; trigger ones: the queued run
    asset_event_ids: tuple[int, ...] = ()
    queued_run_id: str | None = None
    # assets the consumer's schedule still waits for (AND conditions), by name
    waiting_for: tuple[str, ...] = ()

    def describe(self) -> str:
        """The line the CLI prints for a follow-up that was not run."""
        waiting = f"; still waiting for {', '.join(self.waiting_for)}" if self.waiting_for else ""
        return (
            f"not run: {self.dag_id} for {self.day.isoformat()} ({self.reason}{waiting})"
            f" — run it with: {self.command}"
        )


@dataclass
class RunRecord:
    """What one DAG run did: outcome, failing tasks, assets produced and the runs now due."""

    dag_id: str
    day: date
    run_id: str | None
    state: RunState
    failed_tasks: list[FailedTask] = field(default_factory=list)
    skipped_tasks: list[str] = field(default_factory=list)  # task ids, sorted
    duration_s: float = 0.0
    # (asset URI as declared, event extra), in the order the run emitted them
    asset_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    reason: str = "requested"
    error: str | None = None  # the run could not be executed at all (not a task failure)

    @property
    def ok(self) -> bool:
        return self.state == "success"


@dataclass(frozen=True)
class RunEvent:
    """Progress for the CLI: a run started or finished."""

    kind: Literal["started", "finished"]
    dag_id: str
    day: date
    state: RunState | None = None
    run_id: str | None = None
    duration_s: float | None = None
    reason: str = "requested"
    # a finished run that failed: each failed task with its exception on one line
    failed_tasks: tuple[str, ...] = ()


def run_command(dag_id: str, day: date) -> str:
    """The CLI command that runs ``dag_id`` for ``day``."""
    return f"personalize run {dag_id} --date {day.isoformat()}"


# ---- parsing the DAGs folder -------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    dags: dict[str, DAG]
    import_errors: dict[str, str]


_parse_cache: dict[Path, tuple[tuple[tuple[str, int, int], ...], _Parsed]] = {}


def _folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of every .py file: a cheap "has anything changed" check."""
    entries = []
    for path in sorted(folder.rglob("*.py")):
        stat = path.stat()
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


def _parse(folder: Path) -> _Parsed:
    if configured_airflow() is None:
        raise AirflowConfigError(
            "call configure_airflow(settings) before parsing DAGs: DAG files import airflow"
        )
    signature = _folder_signature(folder)
    cached = _parse_cache.get(folder)
    if cached is not None and cached[0] == signature:
        return cached[1]

    from airflow.dag_processing.dagbag import BundleDagBag

    # BundleDagBag puts the folder on sys.path, as Airflow does for the dags-folder bundle, so
    # ``from assets import CURATED`` works in DAG files.
    bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    errors = {}
    for path, error in bag.import_errors.items():
        full = Path(path) if Path(path).is_absolute() else folder / path
        errors[str(full)] = error
    parsed = _Parsed(dags=dict(bag.dags), import_errors=errors)
    _parse_cache[folder] = (signature, parsed)
    return parsed


def load_dags(dags_folder: Path | str | None = None, *, strict: bool = False) -> dict[str, DAG]:
    """Every DAG in the folder by id, parsed once per process (again only if a file changed).

    Files that fail to import are skipped unless ``strict``, which raises DagImportError: one
    broken DAG file should not stop running the others, but a check of the folder wants to know.
    """
    parsed = _parse(resolve_dags_folder(dags_folder))
    if strict and parsed.import_errors:
        raise DagImportError(parsed.import_errors)
    return dict(parsed.dags)


def _get_dag(dag_id: str) -> DAG:
    folder = resolve_dags_folder()
    parsed = _parse(folder)
    if dag_id in parsed.dags:
        return parsed.dags[dag_id]
    if parsed.import_errors:
        own = {p: e for p, e in parsed.import_errors.items() if Path(p).stem == dag_id}
        raise DagImportError(own or parsed.import_errors, dag_id=dag_id)
    raise UnknownDag(dag_id, list(parsed.dags), folder)


# ---- failure messages --------------------------------------------------------------------------


class _FailureStore:
    """Last error per task instance, fed by an Airflow listener in this process."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str, str, int], str] = {}

    def pop_run(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
        found = {k: v for k, v in self.errors.items() if k[0] == dag_id and k[1] == run_id}
        for key in found:
            del self.errors[key]
        return {(k[2], k[3]): v for k, v in found.items()}


_failures: _FailureStore | None = None


def _one_line(error: object) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        text = str(error).strip()
        first = text.splitlines()[0] if text else ""
        return f"{type(error).__name__}: {first}" if first else type(error).__name__
    text = str(error).strip()
    return text.splitlines()[0] if text else None


def _failure_store() -> _FailureStore:
    """Register, once per process, a listener that keeps each failing task's exception.

    Tasks of ``dag.test()`` run in this process, and the task runner calls listeners with the
    exception object on failure and on each retry; the DB keeps no message.
    """
    global _failures
    if _failures is not None:
        return _failures
    from airflow.listeners import hookimpl
    from airflow.sdk.listener import get_listener_manager

    store = _FailureStore()

    class _Listener:
        @hookimpl
        def on_task_instance_failed(
            self, previous_state: object, task_instance: Any, error: object
        ) -> None:
            key = (
                task_instance.dag_id,
                task_instance.run_id,
                task_instance.task_id,
                getattr(task_instance, "map_index", -1),
            )
            message = _one_line(error)
            if message:
                store.errors[key] = message

    get_listener_manager().add_listener(_Listener())
    _failures = store
    return store


# ---- one run -----------------------------------------------------------------------------------


@contextmanager
def _task_environment(settings: Settings) -> Iterator[None]:
    """DAG files and tasks build their own Settings from the environment: point it at ours."""
    wanted = settings.as_environment()
    previous = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _declared_uri(uri: str) -> str:
    """The URI as written in dags/assets.py: Airflow stores "personalize://curated" with a "/"."""
    parts = urlsplit(uri)
    if parts.path == "/" and not parts.query and uri.endswith("/"):
        return uri[:-1]
    return uri


def _asset_condition(dag: DAG) -> Any | None:
    return getattr(dag.timetable, "asset_condition", None)


def _iter_assets(condition: Any) -> Iterator[Any]:
    from airflow.sdk import Asset
    from airflow.sdk.definitions.asset import AssetBooleanCondition

    if isinstance(condition, Asset):
        yield condition
    elif isinstance(condition, AssetBooleanCondition):
        for item in condition.objects:
            yield from _iter_assets(item)


def _condition_met(condition: Any, ready_uris: set[str]) -> bool:
    """Evaluate an asset schedule (Asset, AND, OR) against the assets updated so far.

    Aliases and name/URI references are resolved only by the scheduler: counted as met.
    """
    from airflow.sdk import Asset
    from airflow.sdk.definitions.asset import AssetAll, AssetAny

    if isinstance(condition, Asset):
        return condition.uri in ready_uris
    if isinstance(condition, AssetAll):
        return all(_condition_met(item, ready_uris) for item in condition.objects)
    if isinstance(condition, AssetAny):
        return any(_condition_met(item, ready_uris) for item in condition.objects)
    return True


class _Chain:
    """One ``run_dag`` call: the runs it made, depth first, and what it has updated so far."""

    def __init__(
        self,
        settings: Settings,
        *,
        follow: bool,
        on_event: Callable[[RunEvent], None] | None,
    ) -> None:
        self.settings = settings
        self.follow = follow
        self.on_event = on_event or (lambda event: None)
        self.records: list[RunRecord] = []
        self.done: set[tuple[str, date]] = set()
        self.updated_uris: set[str] = set()

    # the run itself
    def run(
        self,
        dag_id: str,
        day: date,
        conf: Mapping[str, Any],
        *,
        reason: str = "requested",
        consumed_event_ids: tuple[int, ...] = (),
    ) -> RunRecord:
        dag = _get_dag(dag_id)
        failures = _failure_store()
        self.done.add((dag_id, day))
        self.on_event(RunEvent("started", dag_id, day, reason=reason))
        run_conf = {"day": day.isoformat(), **conf}
        started = time.perf_counter()
        dag_run = dag.test(logical_date=logical_date_for(day), run_conf=run_conf)
        duration = time.perf_counter() - started
        run_id = dag_run.run_id

        record = self._describe_run(dag, day, run_id, failures.pop_run(dag_id, run_id))
        record.duration_s = duration
        record.reason = reason
        if consumed_event_ids:
            self._link_consumed_events(dag_id, run_id, consumed_event_ids)
        self.records.append(record)
        self.on_event(
            RunEvent(
                "finished",
                dag_id,
                day,
                record.state,
                run_id,
                round(duration, 3),
                reason=reason,
                failed_tasks=tuple(str(t) for t in record.failed_tasks),
            )
        )
        if self.follow:
            self._follow(record)
        return record

    def _describe_run(
        self, dag: DAG, day: date, run_id: str, errors: dict[tuple[str, int], str]
    ) -> RunRecord:
        from airflow.models import DagRun, TaskInstance
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            dag_run = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)
            )
            state: RunState = "success" if dag_run and dag_run.state == "success" else "failed"
            failed = session.execute(
                select(TaskInstance.task_id, TaskInstance.map_index)
                .where(
                    TaskInstance.dag_id == dag.dag_id,
                    TaskInstance.run_id == run_id,
                    TaskInstance.state == TaskInstanceState.FAILED,
                )
                .order_by(TaskInstance.task_id, TaskInstance.map_index)
            ).all()
            failed_tasks = [
                FailedTask(task_id, errors.get((task_id, map_index)), map_index)
                for task_id, map_index in failed
            ]
            skipped_tasks = list(
                session.scalars(
                    select(TaskInstance.task_id)
                    .where(
                        TaskInstance.dag_id == dag.dag_id,
                        TaskInstance.run_id == run_id,
                        TaskInstance.state == TaskInstanceState.SKIPPED,
                    )
                    .order_by(TaskInstance.task_id)
                )
            )
            events = session.execute(
                select(AssetEvent.id, AssetEvent.extra, AssetEvent.timestamp, AssetModel)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_dag_id == dag.dag_id, AssetEvent.source_run_id == run_id)
                .order_by(AssetEvent.timestamp, AssetEvent.id)
            ).all()
            asset_events = [
                (_declared_uri(asset.uri), dict(extra or {})) for _, extra, _, asset in events
            ]
            self.updated_uris.update(asset.uri for *_, asset in events)

            follow_ups = self._asset_follow_ups(dag.dag_id, day, events, session)
            follow_ups += self._trigger_follow_ups(dag.dag_id, day, run_id, session)

        follow_ups.sort(key=lambda item: item[0])
        return RunRecord(
            dag_id=dag.dag_id,
            day=day,
            run_id=run_id,
            state=state,
            failed_tasks=failed_tasks,
            skipped_tasks=skipped_tasks,
            asset_events=asset_events,
            follow_ups=[follow_up for _, follow_up in follow_ups],
        )

    # what the run made due
    def _asset_follow_ups(
        self, producer: str, day: date, events: list[Any], session: Any
    ) -> list[tuple[datetime, FollowUp]]:
        from airflow.models.asset import AssetDagRunQueue, AssetModel
        from sqlalchemy import select

        if not events:
            return []
        dags = _parse(resolve_dags_folder()).dags
        # (consumer, day) -> first event time, asset names, event ids
        due: dict[tuple[str, date], tuple[datetime, list[str], list[int]]] = {}
        for event_id, extra, timestamp, asset in events:
            event_day = parse_day(extra["day"]) if (extra or {}).get("day") else day
            for dag_id, dag in sorted(dags.items()):
                condition = _asset_condition(dag)
                if condition is None or all(a.uri != asset.uri for a in _iter_assets(condition)):
                    continue
                _first, names, ids = due.setdefault((dag_id, event_day), (timestamp, [], []))
                if asset.name not in names:
                    names.append(asset.name)
                ids.append(event_id)

        follow_ups = []
        for (dag_id, event_day), (timestamp, names, ids) in due.items():
            condition = _asset_condition(dags[dag_id])
            ready = self.updated_uris | set(
                session.scalars(
                    select(AssetModel.uri)
                    .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
                    .where(AssetDagRunQueue.target_dag_id == dag_id)
                )
            )
            waiting: tuple[str, ...] = ()
            if not _condition_met(condition, ready):
                ready |= self._uris_with_day(condition, event_day, session)
            if not _condition_met(condition, ready):
                waiting = tuple(
                    sorted({a.name for a in _iter_assets(condition) if a.uri not in ready})
                )
            label = "asset" if len(names) == 1 else "assets"
            follow_ups.append(
                (
                    timestamp,
                    FollowUp(
                        dag_id=dag_id,
                        day=event_day,
                        reason=f"{label} {', '.join(names)} from {producer}",
                        command=run_command(dag_id, event_day),
                        source="asset",
                        asset_event_ids=tuple(ids),
                        waiting_for=waiting,
                    ),
                )
            )
        return follow_ups

    def _uris_with_day(self, condition: Any, day: date, session: Any) -> set[str]:
        """Assets of ``condition`` with an event for ``day`` at any time: ready for that day.

        The scheduler tracks readiness in AssetDagRunQueue, which it fills for unpaused DAGs only
        (and DAGs start paused); here a day's data counts as available once any run announced it.
        """
        from airflow.models.asset import AssetEvent, AssetModel
        from sqlalchemy import select

        uris = {asset.uri for asset in _iter_assets(condition)}
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri.in_(uris))
        )
        return {uri for uri, extra in rows if (extra or {}).get("day") == day.isoformat()}

    def _trigger_follow_ups(
        self, producer: str, day: date, run_id: str, session: Any
    ) -> list[tuple[datetime, FollowUp]]:
        from airflow.models import DagRun
        from airflow.models.xcom import XComModel
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunType
        from sqlalchemy import select

        pushed = session.execute(
            select(XComModel.task_id, XComModel.value).where(
                XComModel.dag_id == producer,
                XComModel.run_id == run_id,
                XComModel.key == "trigger_run_id",
            )
        ).all()
        follow_ups = []
        for task_id, value in pushed:
            # the JSON column gives the run id back as a str; tolerate a doubly encoded one
            quoted = isinstance(value, str) and value.startswith('"')
            triggered_run_id = json.loads(value) if quoted else value
            for triggered in session.scalars(
                select(DagRun).where(
                    DagRun.run_id == str(triggered_run_id),
                    DagRun.run_type == DagRunType.OPERATOR_TRIGGERED,
                    DagRun.state == DagRunState.QUEUED,
                )
            ):
                conf = dict(triggered.conf or {})
                run_day = parse_day(conf.pop("day")) if conf.get("day") else day
                follow_ups.append(
                    (
                        triggered.queued_at or datetime.now(UTC),
                        FollowUp(
                            dag_id=triggered.dag_id,
                            day=run_day,
                            reason=f"triggered by {producer}.{task_id}",
                            command=run_command(triggered.dag_id, run_day),
                            source="trigger",
                            conf=conf,
                            queued_run_id=triggered.run_id,
                        ),
                    )
                )
        return follow_ups

    # following
    def _follow(self, record: RunRecord) -> None:
        not_run = []
        for follow_up in record.follow_ups:
            if follow_up.waiting_for:
                not_run.append(follow_up)
                continue
            if (follow_up.dag_id, follow_up.day) in self.done:
                # a loop (monitor -> train -> monitor) or a second path to the same run
                not_run.append(follow_up)
                continue
            if follow_up.source == "trigger":
                self._delete_queued_run(follow_up.dag_id, follow_up.queued_run_id)
            else:
                self._clear_asset_queue(follow_up.dag_id)
            self.run(
                follow_up.dag_id,
                follow_up.day,
                follow_up.conf,
                reason=follow_up.reason,
                consumed_event_ids=follow_up.asset_event_ids,
            )
        record.follow_ups = not_run

    def _delete_queued_run(self, dag_id: str, run_id: str | None) -> None:
        """The run TriggerDagRunOperator queued is replaced by ours: a scheduler must not run it."""
        from airflow.models import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            queued = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            )
            if queued is not None:
                session.delete(queued)

    def _clear_asset_queue(self, dag_id: str) -> None:
        """The consumer ran: empty its asset queue, as the scheduler does when creating the run."""
        from airflow.models.asset import AssetDagRunQueue
        from airflow.utils.session import create_session
        from sqlalchemy import delete

        with create_session(scoped=False) as session:
            session.execute(
                delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id)
            )

    def _link_consumed_events(self, dag_id: str, run_id: str, event_ids: tuple[int, ...]) -> None:
        """Record which asset events a followed run consumed, as an asset-triggered run would."""
        from airflow.models import DagRun
        from airflow.models.asset import AssetEvent
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            dag_run = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            )
            if dag_run is None:
                return
            events = session.scalars(select(AssetEvent).where(AssetEvent.id.in_(event_ids)))
            dag_run.consumed_asset_events.extend(events)


# ---- public entry points -----------------------------------------------------------------------


def default_day() -> date:
    """Yesterday (UTC): the latest day a daily schedule would have run by now."""
    return datetime.now(UTC).date() - timedelta(days=1)


def run_dag(
    settings: Settings,
    dag_id: str,
    day: date | None = None,
    *,
    follow: bool = False,
    conf: dict[str, Any] | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
) -> list[RunRecord]:
    """Run ``dag_id`` for ``day`` (default yesterday, UTC) and, with ``follow``, what it makes due.

    Returns the records in the order the runs happened: the requested run first. A task failure
    is reported in the record (``state="failed"``), not raised; unknown DAGs raise UnknownDag and
    broken DAG files DagImportError.
    """
    day = day or default_day()
    if conf and conf.get("day") not in (None, day.isoformat()):
        raise ValueError(f"conf day {conf['day']!r} contradicts the day to run, {day}")
    configure_airflow(settings)
    reuse_bundle_syncs(_folder_signature)
    # DAG files may read settings at parse time and tasks read them at run time: both must see
    # the caller's state dir, not whatever PERSONALIZE_HOME happens to be.
    with _task_environment(settings):
        _get_dag(dag_id)
        chain = _Chain(settings, follow=follow, on_event=on_event)
        chain.run(dag_id, day, conf or {})
    return chain.records


def backfill(
    settings: Settings,
    dag_id: str,
    start: date,
    end: date,
    *,
    follow: bool = False,
    on_event: Callable[[RunEvent], None] | None = None,
) -> list[RunRecord]:
    """Run ``dag_id`` for every day from ``start`` to ``end`` inclusive, in order.

    A failed day does not stop the rest: its record says what failed, and the next day runs (an
    error that prevents a run at all is recorded in ``RunRecord.error`` the same way).
    """
    days = list(day_range(start, end))
    configure_airflow(settings)
    reuse_bundle_syncs(_folder_signature)
    with _task_environment(settings):
        _get_dag(dag_id)
    records: list[RunRecord] = []
    for day in days:
        try:
            records.extend(run_dag(settings, dag_id, day, follow=follow, on_event=on_event))
        except (UnknownDag, DagImportError, AirflowConfigError):
            raise
        except Exception as error:
            message = _one_line(error)
            records.append(RunRecord(dag_id, day, None, "failed", error=message))
            if on_event is not None:
                on_event(RunEvent("finished", dag_id, day, "failed", failed_tasks=(message,)))
    return records


# ---- where a run's time went ------------------------------------------------------------------


@dataclass
class DagTiming:
    """Where a DAG's time went: runs, wall seconds, and seconds inside task bodies."""

    runs: int = 0
    wall_s: float = 0.0
    task_s: float = 0.0


def airflow_share(records: list[RunRecord], clock: TaskBodyClock) -> dict[str, Any]:
    """Wall time of the DAG runs against the time inside their task bodies, per DAG."""
    by_dag: dict[str, DagTiming] = {}
    for record in records:
        timing = by_dag.setdefault(record.dag_id, DagTiming())
        timing.runs += 1
        timing.wall_s += record.duration_s
        timing.task_s += clock.seconds.get((record.dag_id, record.run_id or ""), 0.0)
    wall = sum(t.wall_s for t in by_dag.values())
    tasks = sum(t.task_s for t in by_dag.values())
    return {
        "dag_runs": sum(t.runs for t in by_dag.values()),
        "dag_wall_s": round(wall, 2),
        "task_s": round(tasks, 2),
        "airflow_overhead_s": round(wall - tasks, 2),
        "airflow_share": round((wall - tasks) / wall, 3) if wall else 0.0,
        "per_dag": {
            dag: {"runs": t.runs, "wall_s": round(t.wall_s, 2), "task_s": round(t.task_s, 2)}
            for dag, t in sorted(by_dag.items())
        },
    }
