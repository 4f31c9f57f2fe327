"""A shop's whole history in one command: ingest -> features -> monitor for every day, then train.

``personalize load-history --start D1 --end D2`` (and ``personalize import FILE --backfill``) call
:func:`run_history`. Two ways to get there, with the same curated data and features:

* **bulk** (the default): one process goes through the days in order and, for each day, calls
  what the DAGs' tasks call -- :func:`pipelines.validation.ingest.ingest_table` for users, items
  and events, :func:`pipelines.features.offline.compute_features_for_day` and
  :func:`pipelines.flows.monitor.check_data` -- without a DAG run per day. What it does
  differently, and why the results are the same:

  - *ingest*: the sensor's check (:func:`batch_landed`) then the three tables, as the DAG orders
    them; a day whose events did not land ingests nothing, as the failed sensor stops the DAG.
    Days go in order, so each day is validated against exactly the curated days before it.
    One :class:`~pipelines.validation.session.ValidationSession` spans the days: curated files
    already read are not read again, empty batches GX has judged alike are not judged again, and
    the clean batches' Data Docs pages are rendered together at the end (a quarantined batch's
    page at once) -- the verdicts are those of a day-by-day run.
  - *features*: computed only for days whose ingest would have announced ``curated`` (every
    table loaded, closed or absent), as the asset schedule does. A :class:`CuratedReader` keeps
    the Arrow table of each curated file read, so the 30-day windows and the users/items known
    so far are not re-read from disk every day; the frames are built from the same files in the
    same order, so the features are equal (the test compares them with a day-by-day run). The
    Feast repo is applied once and the online store is materialized **once**, over the whole
    span: it keeps the latest row per entity, which is what 365 daily materializations leave.
  - *monitor*: the data-presence check of every featured day (gap alerts, deduplicated as the
    daily DAG does). Judging champions is not done per history day: before the first train
    there are none (the daily monitor only says "no champion yet"), and a champion from an
    earlier import would be judged on days it was not meant to serve and retrained right after
    anyway. When champions exist they are judged once, on the last day (one Evidently report per
    model).
  - *train*: the real ``train`` DAG for the last featured day, so the models are registered in
    MLflow with their aliases and gates exactly as on any other day.

* **through Airflow** (``through_airflow=True``, ``--through-airflow``): every day is the real
  ``ingest`` DAG run with what it sets off (``features`` on the curated asset, ``monitor`` on the
  features asset), then the ``train`` DAG, as ``personalize backfill ingest --follow`` would.
  About 1.5 s of Airflow per day on 2 cores: the reference the bulk path is tested against.

Either way a quarantined or missing day does not stop the others; the report says which days
need a look and the commands that fix them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from pipelines.days import day_range
from pipelines.models.catalog import model_names

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.orchestration.runner import RunRecord
    from pipelines.validation.session import ValidationSession

STAGES = ("ingest", "features", "monitor", "train")
INGEST_ORDER = ("users", "items", "events")  # the DAG: users and items, then events
# per-table outcomes that let the day go on to features (anything else stops it)
PASSING = ("loaded", "closed", "absent")


@dataclass
class DayOutcome:
    """What one day of the history came to: per table status and rows, and what to do."""

    day: date
    tables: dict[str, str] = field(default_factory=dict)  # loaded | closed | absent | ...
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    features: bool = False

    @property
    def status(self) -> str:
        """curated | closed | quarantined | missing | ... (the worst table's word)."""
        failed = [s for s in self.tables.values() if s not in PASSING]
        if failed:
            return "quarantined" if "quarantined" in failed else failed[0]
        events = self.tables.get("events", "missing")
        return "curated" if events == "loaded" else events

    @property
    def ok(self) -> bool:
        """Every table loaded, closed or absent: the DAG would have announced ``curated``."""
        return "events" in self.tables and all(s in PASSING for s in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"day": self.day.isoformat(), "status": self.status}


@dataclass
class HistoryReport:
    """What a history run did: the days, time per stage, Airflow's share, the train."""

    first_day: date
    last_day: date
    mode: str  # bulk | airflow
    days: list[DayOutcome] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    airflow: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] | None = None
    monitoring: dict[str, Any] = field(default_factory=dict)
    online_rows: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(d.status for d in self.days))

    @property
    def rows(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for day in self.days:
            total.update(day.rows)
        return dict(total)

    @property
    def failed_days(self) -> list[DayOutcome]:
        return [d for d in self.days if not d.ok]

    @property
    def train_failed(self) -> bool:
        return self.train is not None and self.train.get("state") != "success"

    @property
    def ok(self) -> bool:
        return not self.failed_days and not self.train_failed

    @property
    def airflow_share(self) -> float:
        overhead = self.airflow.get("airflow_overhead_s", 0.0)
        return round(overhead / self.wall_s, 3) if self.wall_s else 0.0

    def next_commands(self) -> list[str]:
        """What to run to finish the history: fix and release each bad day, then re-run from
        the first one (later windows include it), then train."""
        from pipelines.validation.ingest import release_hint

        commands = []
        for day in self.failed_days:
            for table, status in day.tables.items():
                if status == "quarantined":
                    commands.append(release_hint(table, day.day))
        if self.failed_days:
            first = self.failed_days[0].day
            mode = " --through-airflow" if self.mode == "airflow" else ""
            commands.append(
                f"personalize load-history --start {first} --end {self.last_day}{mode}"
                "  (after fixing, or landing, the batches above)"
            )
        elif self.train_failed:
            commands.append(f"personalize run train --date {self.train['day']}")
        return commands

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "mode": self.mode,
            "counts": self.counts,
            "rows": self.rows,
            "stages_s": self.stages_s,
            "wall_s": self.wall_s,
            "airflow": self.airflow,
            "airflow_share": self.airflow_share,
            "train": self.train,
            "monitoring": self.monitoring,
            "online_rows": self.online_rows,
            "ok": self.ok,
            "next_commands": self.next_commands(),
            "days": [d.to_dict() for d in self.days],
        }


@dataclass(frozen=True)
class HistoryProgress:
    """Progress for the CLI: ``done`` of ``total`` units of ``stage``; ``day`` just finished."""

    stage: str
    done: int
    total: int
    day: date | None = None
    status: str | None = None


ProgressCallback = Callable[[HistoryProgress], None]


class HistoryError(ValueError):
    """A history that cannot start: bad range, nothing landed."""


def landed_span(settings: Settings) -> tuple[date, date]:
    """First and last day with an events batch in landing (or curated): the default range."""
    from pipelines.data.partitions import partition_days

    days = partition_days(settings.landing_dir, "events") or partition_days(
        settings.curated_dir, "events"
    )
    if not days:
        raise HistoryError(
            f"no events batch in {settings.landing_dir / 'events'}: import a log first "
            "(`personalize import FILE`) or generate a shop (`personalize generate`)"
        )
    return days[0], days[-1]


def run_history(
    settings: Settings,
    first_day: date,
    last_day: date,
    *,
    through_airflow: bool = False,
    train: bool = True,
    progress: ProgressCallback | None = None,
) -> HistoryReport:
    """Run ingest -> features -> monitor for every day from ``first_day`` to ``last_day``, in
    order, then the ``train`` DAG for the last day that has features.

    A quarantined or missing day is recorded and the next day goes on; the report says what to
    run next. ``through_airflow`` runs the real DAGs day by day instead of the bulk path (same
    results, ~1.5 s of Airflow per day). Unexpected errors (a bug, a full disk) propagate: what
    was done stays done and re-running the range is idempotent.
    """
    if last_day < first_day:
        raise HistoryError(f"--end {last_day} is before --start {first_day}")
    if first_day < date.fromisoformat(settings.dags_start):
        # a DAG runs no task for a day before its start_date (the run "succeeds" empty): a
        # shop's log from before the configured start moves the start back for this history
        settings = settings.model_copy(update={"dags_start": first_day.isoformat()})
    settings.ensure_dirs()
    report = HistoryReport(first_day, last_day, "airflow" if through_airflow else "bulk")
    tell = progress or (lambda _update: None)
    began = time.perf_counter()
    if through_airflow:
        _history_through_airflow(settings, report, tell)
    else:
        _history_in_bulk(settings, report, tell)
    if train:
        _train(settings, report, tell)
    report.wall_s = round(time.perf_counter() - began, 2)
    report.stages_s = {k: round(v, 2) for k, v in report.stages_s.items()}
    return report


# ---- bulk -------------------------------------------------------------------------------------


@contextmanager
def _stage(report: HistoryReport, name: str) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        report.stages_s[name] = report.stages_s.get(name, 0.0) + time.perf_counter() - began


def ingest_day(
    settings: Settings, day: date, session: ValidationSession | None = None
) -> DayOutcome:
    """The ingest DAG's work for ``day`` without the DAG: sensor check, users, items, events.

    ``session``: the history run's validation state across days (same outcomes, less work).
    """
    from pipelines.validation.ingest import (
        BatchMissing,
        BatchQuarantined,
        batch_landed,
        ingest_table,
    )

    outcome = DayOutcome(day)
    try:
        landed = batch_landed(settings, "events", day)
    except BatchMissing as missing:  # quarantined and not released: the sensor fails at once
        outcome.tables["events"] = "missing"
        outcome.problems.append(str(missing))
        return outcome
    # without a batch the sensor times out and no table of the day is validated
    tables = INGEST_ORDER if landed else ("events",)
    for table in tables:
        try:
            result = ingest_table(settings, table, day, session)
        except BatchQuarantined as bad:
            outcome.tables[table] = "quarantined"
            outcome.rows[table] = 0
            outcome.problems.append(str(bad))
        except BatchMissing as missing:
            outcome.tables[table] = "missing"
            outcome.problems.append(str(missing))
        else:
            outcome.tables[table] = result.status
            outcome.rows[table] = result.rows
    return outcome


def _history_in_bulk(settings: Settings, report: HistoryReport, tell: ProgressCallback) -> None:
    from pipelines.features.offline import CuratedReader, compute_features_for_day
    from pipelines.flows.monitor import check_data
    from pipelines.validation.session import validation_session

    days = list(day_range(report.first_day, report.last_day))
    reader = CuratedReader(settings.curated_dir)
    gaps: set[str] = set()
    with validation_session(settings) as session:
        for number, day in enumerate(days, start=1):
            with _stage(report, "ingest"):
                outcome = ingest_day(settings, day, session)
            report.days.append(outcome)
            if outcome.ok:
                with _stage(report, "features"):
                    compute_features_for_day(settings, day, reader=reader)
                outcome.features = True
                with _stage(report, "monitor"):
                    gaps.update(check_data(settings, day)["missing_days"])
            tell(HistoryProgress("days", number, len(days), day, outcome.status))
        with _stage(report, "ingest"):
            session.finish()  # the clean batches' Data Docs pages, rendered together
    report.monitoring["missing_feature_days"] = sorted(gaps)
    featured = [d.day for d in report.days if d.features]
    if not featured:
        return
    with _stage(report, "features"):
        report.online_rows = materialize_span(settings, featured[0], featured[-1])
    with _stage(report, "monitor"):
        report.monitoring["models"] = _judge_champions(settings, featured[-1])


def materialize_span(settings: Settings, first: date, last: date) -> dict[str, int]:
    """Apply the Feast repo and materialize ``[first, last]`` at once: the latest row per
    entity, what a materialization per day would have left in the online store."""
    from pipelines.features.online import materialize_interval
    from pipelines.features.store import apply_repo
    from pipelines.flows.features import materialize_window

    apply_repo(settings)
    start, _ = materialize_window(first)
    _, end = materialize_window(last)
    return materialize_interval(settings, start, end)


def _judge_champions(settings: Settings, day: date) -> dict[str, Any]:
    """Each existing champion judged once, on the last day; nothing before the first train."""
    from pipelines import registry
    from pipelines.flows.monitor import monitor_model

    verdicts = {}
    for model in model_names():
        if registry.aliases(settings, model).get(registry.CHAMPION) is None:
            continue
        verdicts[model] = monitor_model(settings, model, day)
    return verdicts


# ---- through Airflow --------------------------------------------------------------------------


def _history_through_airflow(
    settings: Settings, report: HistoryReport, tell: ProgressCallback
) -> None:
    from pipelines.orchestration.runner import run_dag

    days = list(day_range(report.first_day, report.last_day))
    records: list[RunRecord] = []
    with _airflow_clock(settings) as clock:
        for number, day in enumerate(days, start=1):
            day_records = run_dag(settings, "ingest", day, follow=True)
            records.extend(day_records)
            outcome = _outcome_of_runs(settings, day, day_records)
            report.days.append(outcome)
            tell(HistoryProgress("days", number, len(days), day, outcome.status))
    from pipelines.orchestration.runner import airflow_share

    report.airflow = _merge_airflow(report.airflow, airflow_share(records, clock))
    for dag_id, timing in report.airflow.get("per_dag", {}).items():
        report.stages_s[dag_id] = report.stages_s.get(dag_id, 0.0) + timing["wall_s"]


def _outcome_of_runs(settings: Settings, day: date, records: list[RunRecord]) -> DayOutcome:
    """The day's outcome from its ingest run: the tasks' XComs (IngestResult) and failures."""
    from pipelines.validation.ingest import quarantine_attempts

    outcome = DayOutcome(day)
    ingest = next(r for r in records if r.dag_id == "ingest")
    results = _ingest_xcoms(ingest.run_id) if ingest.run_id else {}
    failed = {t.task_id: t for t in ingest.failed_tasks}
    for table in INGEST_ORDER:
        task_id = f"validate_{table}"
        if table in results:
            outcome.tables[table] = results[table]["status"]
            outcome.rows[table] = results[table]["rows"]
        elif task_id in failed:
            fresh = [a for a in quarantine_attempts(settings, table, day) if _unreleased(a)]
            outcome.tables[table] = "quarantined" if fresh else "missing"
            if table == "events" and outcome.tables[table] == "quarantined":
                outcome.rows[table] = 0
            outcome.problems.append(str(failed[task_id]))
    if "wait_for_events" in failed and "events" not in outcome.tables:
        outcome.tables["events"] = "missing"
        outcome.problems.append(str(failed["wait_for_events"]))
    if ingest.error:
        outcome.tables.setdefault("events", "failed")
        outcome.problems.append(ingest.error)
    outcome.features = any(r.dag_id == "features" and r.ok for r in records)
    return outcome


def _unreleased(attempt: Any) -> bool:
    from pipelines.validation.ingest import RELEASED_FILE

    return not (attempt / RELEASED_FILE).exists()


def _ingest_xcoms(run_id: str) -> dict[str, dict[str, Any]]:
    """``{table: IngestResult.to_xcom()}`` of an ingest run's validate tasks that succeeded."""
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.value).where(
                XComModel.dag_id == "ingest",
                XComModel.run_id == run_id,
                XComModel.key == "return_value",
                XComModel.task_id.in_([f"validate_{t}" for t in INGEST_ORDER]),
            )
        ).all()
    out = {}
    for task_id, value in rows:
        data = json.loads(value) if isinstance(value, str | bytes) else value
        if isinstance(data, dict) and "status" in data:
            out[task_id.removeprefix("validate_")] = data
    return out


# ---- train ------------------------------------------------------------------------------------


def _train(settings: Settings, report: HistoryReport, tell: ProgressCallback) -> None:
    """The real ``train`` DAG for the last day with features: models registered with aliases."""
    from pipelines import registry
    from pipelines.orchestration.runner import run_dag

    featured = [d.day for d in report.days if d.features]
    if not featured:
        report.train = {"state": "skipped", "reason": "no day of the range has features"}
        return
    day = featured[-1]
    tell(HistoryProgress("train", 0, 1, day))
    with _stage(report, "train"), _airflow_clock(settings) as clock:
        records = run_dag(settings, "train", day, follow=True)
    from pipelines.orchestration.runner import airflow_share

    share = airflow_share(records, clock)
    report.airflow = _merge_airflow(report.airflow, share)
    train_run = records[0]
    aliases = {m: registry.aliases(settings, m) for m in model_names()}
    state = train_run.state
    if state == "success" and not any(aliases.values()):
        state = "failed"  # a run that registered nothing (no task ran) is no train
    report.train = {
        "day": day.isoformat(),
        "state": state,
        "duration_s": round(train_run.duration_s, 2),
        "failed_tasks": [str(t) for t in train_run.failed_tasks],
        "error": train_run.error,
        "aliases": aliases,
        "gates": _newest_gates(settings),
    }
    tell(HistoryProgress("train", 1, 1, day, state))


def _newest_gates(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each model's newest version and its gate's word: why a model has no champion yet."""
    from pipelines import registry

    gates = {}
    for model in model_names():
        newest = registry.model_overview(settings, model, limit=1)
        if newest:
            gates[model] = {k: newest[0][k] for k in ("version", "gate", "gate_reason")}
    return gates


# ---- Airflow's share --------------------------------------------------------------------------


@contextmanager
def _airflow_clock(settings: Settings) -> Iterator[Any]:
    """Seconds inside task bodies per run (the story's clock), to tell Airflow's own time."""
    from pipelines.orchestration.airflow_compat import TaskBodyClock
    from pipelines.orchestration.airflow_env import configure_airflow

    configure_airflow(settings)  # the clock imports airflow: bind it to this state dir first
    with TaskBodyClock() as clock:
        yield clock


def _merge_airflow(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Two :func:`~pipelines.orchestration.runner.airflow_share` results as one (the days'
    runs, then the train)."""
    if not total:
        return more
    merged = {k: round(total.get(k, 0) + more.get(k, 0), 2) for k in ("dag_wall_s", "task_s")}
    merged["dag_runs"] = total.get("dag_runs", 0) + more.get("dag_runs", 0)
    merged["airflow_overhead_s"] = round(merged["dag_wall_s"] - merged["task_s"], 2)
    wall = merged["dag_wall_s"]
    merged["airflow_share"] = round(merged["airflow_overhead_s"] / wall, 3) if wall else 0.0
    per_dag = dict(total.get("per_dag", {}))
    for dag_id, timing in more.get("per_dag", {}).items():
        if dag_id in per_dag:
            old = per_dag[dag_id]
            timing = {k: round(old[k] + timing[k], 2) for k in ("runs", "wall_s", "task_s")}
        per_dag[dag_id] = timing
    merged["per_dag"] = per_dag
    return merged
