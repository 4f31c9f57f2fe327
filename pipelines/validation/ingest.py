"""The validation gate of ingest: a day's batch is curated whole or quarantined whole.

* valid   -> ``curated/<table>/date=D/`` replaced atomically with the batch and ``_validation.json``
             (GX run id, suite name and version, statistics: lineage for training);
* invalid -> the landed files move to ``quarantine/<table>/date=D/<attempt>/`` with ``reason.json``
             and the Data Docs page; an alert is written; ``BatchQuarantined`` carries one line.

Every landed row ends up in exactly one of the two places, and re-running a day gives the same
curated bytes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.alerts.delivery import deliver
from pipelines.alerts.records import Alert
from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.partitions import PartitionWriter, partition_dir, write_table
from pipelines.validation.batch import (
    BatchUnreadable,
    LandedBatch,
    curated_history,
    history_window_days,
    landed_files,
    prepare,
    read_batch,
)
from pipelines.validation.outcome import CheckResult, ValidationOutcome
from pipelines.validation.suites import load_suite

if TYPE_CHECKING:
    from pipelines.validation.session import ValidationSession

VALIDATION_FILE = "_validation.json"
REASON_FILE = "reason.json"
RELEASED_FILE = "released.json"


class BatchQuarantined(Exception):
    """A batch failed its suite and was moved to quarantine; the message is one readable line."""

    def __init__(self, outcome: ValidationOutcome, quarantine_dir: Path) -> None:
        super().__init__(f"{outcome.summary()} — quarantined: {quarantine_dir / REASON_FILE}")
        self.outcome = outcome
        self.quarantine_dir = quarantine_dir


class BatchMissing(Exception):
    """The day's events batch is not in landing."""


@dataclass
class IngestResult:
    """What the DAG hands on through XCom: references and counts only."""

    table: str
    day: date
    status: str  # loaded | closed (no events, and the calendar says that is fine) | absent
    rows: int = 0
    path: str | None = None
    gx_run_id: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "day": self.day.isoformat(),
            "status": self.status,
            "rows": self.rows,
            "path": self.path,
            "gx_run_id": self.gx_run_id,
        }


# ---- validation ----------------------------------------------------------------------------


def validate_files(
    settings: Settings,
    table: str,
    day: date,
    files: list[Path],
    session: ValidationSession | None = None,
    *,
    serving_log: bool = False,
) -> tuple[ValidationOutcome, LandedBatch | None]:
    """Run the table's suite on ``files`` as the batch of ``day`` (batch None: unreadable).

    ``serving_log``: merge the day's serving event log (events accepted by the API, see
    :mod:`pipelines.data.event_log`) into the batch first, so the same suite validates both.

    ``session``: what a history run keeps across its days (see
    :mod:`pipelines.validation.session`); the verdict is the same with or without it.
    """
    suite = load_suite(table)
    run_name = f"{table}-{day.isoformat()}"
    try:
        batch = read_batch(files, table, day)
    except BatchUnreadable as unreadable:
        return _unreadable_outcome(table, day, files, suite.name, suite.version, unreadable), None
    if serving_log and table == "events":
        batch = with_serving_log(settings.landing_dir, batch)
        files = batch.files

    from pipelines.validation.gx_runner import run_suite

    volume = suite.meta.get("volume", {})
    history = curated_history(
        settings.curated_dir,
        settings.landing_dir,
        table,
        day,
        history_days=history_window_days(volume),
        cache=session.curated if session is not None else None,
    )
    prepared = prepare(batch, history, suite.meta, suite.derived_columns)
    gx_run = run_suite(
        settings.state_dir,
        suite,
        prepared.frame,
        prepared.parameters,
        run_name,
        prepared.skipped,
        docs=session.docs if session is not None else None,
        empty_verdicts=session.empty_verdicts if session is not None else None,
    )
    spec = contract.table(table)
    outcome = ValidationOutcome(
        table=table,
        day=day,
        rows=batch.rows,
        results=gx_run.results,
        files=[str(f) for f in files],
        suite_name=suite.name,
        suite_version=suite.version,
        run_id=gx_run.run_id,
        extra_columns=[c for c in batch.frame.columns if c not in spec.column_names],
        parameters={k: _jsonable(v) for k, v in prepared.parameters.items()},
        data_docs_page=gx_run.data_docs_page,
        note=gx_run.note,
    )
    return outcome, batch


def with_serving_log(landing_dir: Path, batch: LandedBatch) -> LandedBatch:
    """The landed events of the batch's day plus the serving log's events of that day that the
    export does not already hold (by ``event_id``: the shop's own copy of an event wins, and an
    event logged twice counts once). The log file is named among the batch's files (lineage);
    it stays where it is whatever the verdict, as the API may still be appending to it."""
    import numpy as np
    import pandas as pd

    from pipelines.data.event_log import event_log_path, read_event_log

    logged = read_event_log(landing_dir, batch.day)
    if logged.empty:
        return batch
    logged = logged.drop_duplicates("event_id", keep="first")
    if "event_id" in batch.frame.columns:
        logged = logged[~logged["event_id"].isin(batch.frame["event_id"])]
    if logged.empty:
        return batch
    frame = pd.concat([batch.frame, logged], ignore_index=True) if batch.rows else logged
    frame = frame.reset_index(drop=True)
    nan_rows = {
        name: np.concatenate([mask, np.zeros(len(logged), bool)])
        for name, mask in batch.nan_rows.items()
    }
    files = [*batch.files, event_log_path(landing_dir, batch.day)]
    return LandedBatch(batch.table, batch.day, files, frame, nan_rows)


def _unreadable_outcome(
    table: str,
    day: date,
    files: list[Path],
    suite_name: str,
    suite_version: int | str,
    unreadable: BatchUnreadable,
) -> ValidationOutcome:
    check = CheckResult(
        expectation="readable_parquet_file",
        check="file",
        rule="readable parquet file",
        column=None,
        success=False,
        observed=f"{unreadable.path.name}: {unreadable.problem}",
    )
    return ValidationOutcome(
        table=table,
        day=day,
        rows=0,
        results=[check],
        files=[str(f) for f in files],
        suite_name=suite_name,
        suite_version=suite_version,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


# ---- curated or quarantine -----------------------------------------------------------------


def ingest_table(
    settings: Settings, table: str, day: date, session: ValidationSession | None = None
) -> IngestResult:
    """Validate the landed batch of ``table`` for ``day`` and load or quarantine it.

    ``session``: a history run's state across days (same outcome, less work).
    """
    files = landed_files(settings.landing_dir, table, day)
    if not files:
        if table != "events":
            return IngestResult(table, day, "absent")
        closed = _closed_reason(settings, day)
        if closed is None:
            raise BatchMissing(missing_batch_message(settings, table, day))
        target = load_closed_day(settings, day, closed)
        return IngestResult(table, day, "closed", 0, str(target))
    outcome, batch = validate_files(settings, table, day, files, session, serving_log=True)
    if outcome.success and batch is not None:
        target = load_curated(settings, outcome, batch)
        return IngestResult(table, day, "loaded", batch.rows, str(target), outcome.run_id)
    target = quarantine(settings, outcome, files)
    raise BatchQuarantined(outcome, target)


def load_curated(settings: Settings, outcome: ValidationOutcome, batch: LandedBatch) -> Path:
    """Replace the curated partition with the batch and its lineage, all or nothing."""
    target = partition_dir(settings.curated_dir, outcome.table, outcome.day)
    data = contract.to_arrow(batch.frame, contract.table(outcome.table))
    with PartitionWriter(target) as staged:
        write_table(data, staged / "part-0.parquet")
        lineage = {**outcome.to_dict(), "loaded_at": datetime.now(UTC).isoformat()}
        (staged / VALIDATION_FILE).write_text(json.dumps(lineage, indent=2, default=str) + "\n")
    return target


def _closed_reason(settings: Settings, day: date) -> str | None:
    """Why no events batch is fine for ``day`` (the shop's calendar); None: it is missing.

    A quarantined, unreleased batch is never "closed": that day had data and it is waiting.
    """
    from pipelines.data.calendar import ShopCalendar

    if any(_unreleased(a) for a in quarantine_attempts(settings, "events", day)):
        return None
    return ShopCalendar.from_settings(settings).empty_day_reason(day)


def load_closed_day(settings: Settings, day: date, reason: str) -> Path:
    """An empty curated events day with its reason: features and monitoring see a day without
    trading (windows roll on), not a gap to alert about."""
    import pandas as pd

    spec = contract.table("events")
    empty = pd.DataFrame({c.name: pd.Series(dtype=c.pandas_dtype) for c in spec.columns})
    target = partition_dir(settings.curated_dir, "events", day)
    with PartitionWriter(target) as staged:
        write_table(contract.to_arrow(empty, spec), staged / "part-0.parquet")
        lineage = {
            "table": "events",
            "day": day.isoformat(),
            "status": "closed",
            "rows": 0,
            "reason": reason,
            "loaded_at": datetime.now(UTC).isoformat(),
        }
        (staged / VALIDATION_FILE).write_text(json.dumps(lineage, indent=2) + "\n")
    return target


def closed_day_reason(settings: Settings, day: date) -> str | None:
    """Why ``day`` was loaded as a closed day (no trading), or None when it was not."""
    lineage = partition_dir(settings.curated_dir, "events", day) / VALIDATION_FILE
    if not lineage.exists():
        return None
    record = json.loads(lineage.read_text())
    return record.get("reason") if record.get("status") == "closed" else None


def closed_days(settings: Settings, table: str = "events") -> set[date]:
    """Curated days that were loaded as closed (no trading), from their lineage."""
    from pipelines.data.partitions import iter_partitions

    out = set()
    for day, directory in iter_partitions(settings.curated_dir, table):
        lineage = directory / VALIDATION_FILE
        if lineage.exists() and json.loads(lineage.read_text()).get("status") == "closed":
            out.add(day)
    return out


def quarantine(settings: Settings, outcome: ValidationOutcome, files: list[Path]) -> Path:
    """Move the whole batch out of landing, with its reason, and raise an alert."""
    attempt = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    base = partition_dir(settings.quarantine_dir, outcome.table, outcome.day)
    target = base / attempt
    with PartitionWriter(target) as staged:
        for path in files:
            shutil.copy2(path, staged / path.name)
        reason = {
            **outcome.to_dict(),
            "quarantined_at": datetime.now(UTC).isoformat(),
            "landing": str(partition_dir(settings.landing_dir, outcome.table, outcome.day)),
            "next_step": release_hint(outcome.table, outcome.day),
        }
        (staged / REASON_FILE).write_text(json.dumps(reason, indent=2, default=str) + "\n")
    # the copy is complete and published: only now may the landed files go
    for path in files:
        path.unlink()
    _remove_if_empty(files[0].parent if files else None)
    # on every configured channel (webhook, e-mail) and always in alerts.jsonl; never raises
    deliver(quarantine_alert(outcome, target), settings)
    return target


def quarantine_alert(outcome: ValidationOutcome, target: Path) -> Alert:
    failures = outcome.failures
    return Alert(
        type="quarantine",
        severity="critical" if outcome.table == "events" else "warning",
        day=outcome.day,
        table=outcome.table,
        summary=f"Batch quarantined: {outcome.summary()}",
        details={
            "failures": [
                {
                    "column": f.column,
                    "rule": f.rule,
                    "observed": f.observed,
                    "unexpected_count": f.unexpected_count,
                    "sample": f.sample[:5],
                }
                for f in failures
            ],
            "rows": outcome.rows,
            "reason_file": str(target / REASON_FILE),
            "data_docs_page": outcome.data_docs_page,
            "impact": "nothing of this batch reached curated; downstream DAGs wait for this day",
        },
        runbook=(
            f"Read {target / REASON_FILE} (and the Data Docs page). Fix the files in {target} "
            f"or have the source re-deliver them, then: {release_hint(outcome.table, outcome.day)}"
        ),
    )


def release_hint(table: str, day: date) -> str:
    return f"personalize release-quarantine {table} {day.isoformat()}"


def _remove_if_empty(directory: Path | None) -> None:
    if directory is not None and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()


def quarantine_attempts(settings: Settings, table: str, day: date) -> list[Path]:
    """Quarantined attempts of a table's day, oldest first."""
    base = partition_dir(settings.quarantine_dir, table, day)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def missing_batch_message(settings: Settings, table: str, day: date) -> str:
    landing = partition_dir(settings.landing_dir, table, day)
    attempts = [a for a in quarantine_attempts(settings, table, day) if _unreleased(a)]
    if attempts:
        return (
            f"no {table} batch for {day} in {landing}: it was quarantined "
            f"({attempts[-1] / REASON_FILE}); fix it and run `{release_hint(table, day)}`"
        )
    return (
        f"no {table} batch for {day} in {landing}: the source has not delivered it. "
        f"Land it there (or `personalize import`) and re-run `personalize run ingest --date {day}`"
    )


def _unreleased(attempt: Path) -> bool:
    return not (attempt / RELEASED_FILE).exists()


def batch_landed(settings: Settings, table: str, day: date) -> bool:
    """Is there anything to validate yet? A quarantined, unreleased day fails at once instead."""
    if landed_files(settings.landing_dir, table, day):
        return True
    if any(_unreleased(a) for a in quarantine_attempts(settings, table, day)):
        raise BatchMissing(missing_batch_message(settings, table, day))
    # a closed day has nothing to wait for: validation loads it as closed at once
    return table == "events" and _closed_reason(settings, day) is not None


class NothingToRelease(Exception):
    """No quarantined batch waits for release, or landing already holds one."""


def release_quarantine(settings: Settings, table: str, day: date) -> Path:
    """Put the newest quarantined attempt back into landing so ingest validates it again.

    The attempt keeps its ``reason.json`` and gains ``released.json``: quarantine keeps history.
    If the fixed batch fails again, ingest quarantines it as a new attempt.
    """
    contract.table(table)
    waiting = [a for a in quarantine_attempts(settings, table, day) if _unreleased(a)]
    if not waiting:
        raise NothingToRelease(f"no quarantined {table} batch for {day} waits for release")
    attempt = waiting[-1]
    landing = partition_dir(settings.landing_dir, table, day)
    if landed_files(settings.landing_dir, table, day):
        raise NothingToRelease(
            f"{landing} already holds a batch: validate that one with "
            f"`personalize run ingest --date {day}` or remove it first"
        )
    files = sorted(attempt.glob("*.parquet"))
    if not files:
        raise NothingToRelease(f"{attempt} holds no parquet file to release")
    with PartitionWriter(landing) as staged:
        for path in files:
            shutil.copy2(path, staged / path.name)
    for path in files:
        os.unlink(path)
    released = {"released_at": datetime.now(UTC).isoformat(), "to": str(landing)}
    (attempt / RELEASED_FILE).write_text(json.dumps(released, indent=2) + "\n")
    return landing


# ---- validating a file outside Airflow -------------------------------------------------------


def validate_path(
    settings: Settings, path: Path, table: str, day: date | None = None
) -> ValidationOutcome:
    """``personalize validate``: the same suite on any file or partition dir, nothing moved.

    The day comes from ``day``, else from ``date=`` in the path, else the most common day of the
    table's timestamp column in the file.
    """
    contract.table(table)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"{path}: no parquet file to validate")
    resolved = day or day_in_path(path) or most_common_day(files, table)
    outcome, _ = validate_files(settings, table, resolved, files)
    return outcome


def day_in_path(path: Path) -> date | None:
    for part in reversed(path.resolve().parts):
        if part.startswith("date="):
            try:
                return date.fromisoformat(part.removeprefix("date="))
            except ValueError:
                return None
    return None


def most_common_day(files: list[Path], table: str) -> date:
    """The day most rows of the file fall on; today (UTC) when the file can't tell."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = contract.table(table).timestamp
    try:
        stamps = pd.concat(
            [pq.read_table(f, columns=[column]).column(column).to_pandas() for f in files]
        )
    except (pa.ArrowException, OSError, KeyError):
        # an unreadable file or missing column is what validation itself will report
        return datetime.now(UTC).date()
    days = pd.to_datetime(stamps, utc=True, errors="coerce").dropna().dt.date
    return days.mode().iloc[0] if len(days) else datetime.now(UTC).date()


def day_report(settings: Settings, day: date) -> list[str]:
    """Where each table of ``day`` ended up, with the Data Docs page of its validation run."""
    lines = []
    for table in contract.TABLE_NAMES:
        lineage = partition_dir(settings.curated_dir, table, day) / VALIDATION_FILE
        waiting = [a for a in quarantine_attempts(settings, table, day) if _unreleased(a)]
        if waiting:
            reason = json.loads((waiting[-1] / REASON_FILE).read_text())
            lines.append(
                f"{table} {day}: QUARANTINED — {reason['summary']}\n"
                f"    reason: {waiting[-1] / REASON_FILE}\n"
                f"    Data Docs: {reason.get('data_docs_page') or 'none (file unreadable)'}"
            )
        elif lineage.exists() and json.loads(lineage.read_text()).get("status") == "closed":
            lines.append(f"{table} {day}: closed — {json.loads(lineage.read_text())['reason']}")
        elif lineage.exists():
            record = json.loads(lineage.read_text())
            extra = record.get("extra_columns") or []
            note = f" (extra columns kept: {', '.join(extra)})" if extra else ""
            lines.append(
                f"{table} {day}: curated {record['rows']:,} rows{note}\n"
                f"    Data Docs: {record.get('data_docs_page')}"
            )
        else:
            lines.append(f"{table} {day}: no batch")
    return lines
