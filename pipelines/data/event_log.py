"""The live event log: events accepted by the serving API, appended durably per day.

``<landing>/serving_events/date=YYYY-MM-DD/events.jsonl`` — one JSON object per line, the columns
of the ``events`` contract (``event_ts`` as ISO 8601 UTC), in the order they were accepted. The
day is the UTC day of each event's ``event_ts``, so a day's file holds exactly the events of that
day, as the contract's "event_ts falls inside the batch's day" rule asks of a landed batch.

It lives beside ``landing/events/`` rather than in it: a shop's daily export is landed by
replacing its partition (``partitions.write_partition``), which would delete a log kept there,
and the ingest sensor must not mistake a half-day of live events for the day's batch.
:func:`read_event_log` gives a day's log as a frame typed by the contract, ready to be landed
or validated like any batch; the day's ingest merges it into the landed events
(``pipelines.validation.ingest.with_serving_log``).

Appends are durable when :func:`append_events` returns: the lines are written with one
``write`` under an exclusive ``flock`` (several server processes may append to one file), then
``fsync``-ed, and a new file's directory is ``fsync``-ed too.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.data import contract
from pipelines.data.partitions import partition_dir

if TYPE_CHECKING:
    import pandas as pd

LOG_TABLE = "serving_events"
LOG_FILE = "events.jsonl"


def event_log_path(landing_dir: Path, day: date) -> Path:
    return partition_dir(landing_dir, LOG_TABLE, day) / LOG_FILE


def append_events(landing_dir: Path, events: Iterable[Mapping[str, Any]]) -> dict[date, int]:
    """Append ``events`` (contract columns; ``event_ts`` a timezone-aware datetime) to their
    days' logs and make them durable; events written per day."""
    by_day: dict[date, list[str]] = {}
    for event in events:
        stamp: datetime = event["event_ts"]
        day = stamp.astimezone(UTC).date()
        row = {name: event.get(name) for name in contract.EVENTS.column_names}
        row["event_ts"] = stamp.astimezone(UTC).isoformat()
        by_day.setdefault(day, []).append(json.dumps(row, separators=(",", ":")))
    for day, lines in by_day.items():
        _append_lines(event_log_path(landing_dir, day), lines)
    return {day: len(lines) for day, lines in by_day.items()}


def _append_lines(path: Path, lines: list[str]) -> None:
    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_event_log(landing_dir: Path, day: date) -> pd.DataFrame:
    """A day's live events as a frame with the contract's dtypes (empty if none were logged).

    A torn last line (a crash mid-append, before ``fsync`` returned, so never acknowledged) is
    skipped; every acknowledged event is read.
    """
    import pandas as pd

    path = event_log_path(landing_dir, day)
    rows = []
    if path.exists():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.endswith("\n"):
                    break  # torn tail: never acknowledged
                rows.append(json.loads(line))
    frame = pd.DataFrame(rows, columns=contract.EVENTS.column_names)
    return contract.read_frame(contract.to_arrow(_typed(frame), contract.EVENTS))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = frame.copy()
    out["event_ts"] = pd.to_datetime(out["event_ts"], utc=True).astype("datetime64[us, UTC]")
    out["price"] = pd.to_numeric(out["price"]).astype("float64")
    out["quantity"] = pd.to_numeric(out["quantity"]).astype("int64")
    return out
