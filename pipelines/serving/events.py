"""Events posted to the API: validated against the ``events`` contract, counted, logged.

:func:`validate_events` applies the contract (``pipelines/data/contract.py``) field by field, the
same rules the ingest suites check — types, nullability, allowed values, bounds, the id rules,
"add_to_cart and purchase rows carry a price", unique ``event_id`` — and names the field and the
rule of every problem. Fields outside the contract are dropped (the contract allows extra
columns in a batch; the live path keeps only what features read).

:class:`RealtimeCounters` keeps the last hour of each user's views and add-to-carts in a SQLite
file under the state dir (shared by every server process) and gives the ``rt_*`` rows to push.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.data import contract
from pipelines.days import epoch_micros, from_epoch_micros

if TYPE_CHECKING:
    import pandas as pd

REALTIME_WINDOW = timedelta(hours=1)
_CONTROL = re.compile(contract.CONTROL_CHARACTERS_PATTERN)
_NOT_BLANK = re.compile(contract.ID_NOT_BLANK_PATTERN)


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (``events[3].price``), which rule, and a readable message."""

    loc: tuple[str | int, ...]
    rule: str
    message: str

    @property
    def field(self) -> str:
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "loc": ["body", *self.loc],
            "field": self.field,
            "rule": self.rule,
            "msg": f"{self.field}: {self.message}",
            "type": "contract",
        }


def event_list(payload: Any, max_events: int) -> tuple[list[Any], list[Problem]]:
    """The events of a body: one event object, ``{"events": [...]}`` or a JSON list."""
    if isinstance(payload, Mapping) and "events" in payload:
        events = payload["events"]
        where: tuple[str | int, ...] = ("events",)
        if not isinstance(events, list):
            return [], [Problem(where, "a list of events", "must be a list of event objects")]
    elif isinstance(payload, list):
        events, where = payload, ("events",)
    elif isinstance(payload, Mapping):
        return [payload], []
    else:
        return [], [Problem(("body",), "an event object or {'events': [...]}", "not an event")]
    if not events:
        return [], [Problem(where, "at least one event", "the batch is empty")]
    if len(events) > max_events:
        return [], [
            Problem(
                where,
                f"at most {max_events} events per request",
                f"{len(events)} events; send at most {max_events} per request",
            )
        ]
    return events, []


def validate_events(payload: Any, max_events: int) -> tuple[list[dict[str, Any]], list[Problem]]:
    """``(events, problems)``: the contract's columns of every event, typed (``event_ts`` an
    aware datetime), when there are no problems; else the problems of every event."""
    raw, problems = event_list(payload, max_events)
    single = isinstance(payload, Mapping) and "events" not in payload
    valid: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    for index, event in enumerate(raw):
        prefix: tuple[str | int, ...] = () if single else ("events", index)
        if not isinstance(event, Mapping):
            problems.append(Problem(prefix or ("body",), "an event object", "must be an object"))
            continue
        row, found = _validate_event(event, prefix)
        problems.extend(found)
        if not found:
            first = seen_ids.setdefault(row["event_id"], index)
            if first != index:
                problems.append(
                    Problem(
                        (*prefix, "event_id"),
                        "event_id is unique within the batch",
                        f"repeats events[{first}].event_id",
                    )
                )
                continue
            valid.append(row)
    return (valid, []) if not problems else ([], problems)


def _validate_event(
    event: Mapping[str, Any], prefix: tuple[str | int, ...]
) -> tuple[dict[str, Any], list[Problem]]:
    row: dict[str, Any] = {}
    problems: list[Problem] = []
    for column in contract.EVENTS.columns:
        loc = (*prefix, column.name)
        value = event.get(column.name)
        if value is None:
            if not column.nullable:
                problems.append(Problem(loc, "required", f"{column.description} Required."))
            row[column.name] = None
            continue
        checked, problem = _check(column, value)
        if problem is not None:
            problems.append(Problem(loc, *problem))
        row[column.name] = checked
    if not problems and row["event_type"] in contract.PRICED_EVENT_TYPES and row["price"] is None:
        problems.append(
            Problem(
                (*prefix, "price"),
                "add_to_cart and purchase rows carry a price",
                f"a {row['event_type']} needs its price",
            )
        )
    return row, problems


def _check(column: contract.Column, value: Any) -> tuple[Any, tuple[str, str] | None]:
    """``(typed value, None)`` or ``(None, (rule, message))``."""
    kind = column.kind
    if kind == "id":
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None, ("a string id", "must be a string")
        text = str(value).strip()
        if not _NOT_BLANK.search(text):
            return None, ("ids are not blank", "is blank")
        if len(text) > contract.ID_MAX_LENGTH:
            return None, (
                f"ids are at most ID_MAX_LENGTH ({contract.ID_MAX_LENGTH}) characters",
                f"{len(text)} characters",
            )
        if _CONTROL.search(text):
            return None, ("ids are without control characters", "contains a control character")
        return text, None
    if kind == "string":
        if not isinstance(value, str):
            return None, ("a string", "must be a string")
        if column.allowed is not None and value not in column.allowed:
            return None, (f"one of {list(column.allowed)}", f"{value[:40]!r} is not allowed")
        if column.pattern is not None and not re.search(column.pattern, value):
            return None, (f"matches {column.pattern}", "does not match")
        return value, None
    if kind == "timestamp":
        if not isinstance(value, str):
            return None, ("an ISO 8601 timestamp with a timezone", "must be a string")
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None, ("an ISO 8601 timestamp with a timezone", "is not ISO 8601")
        if stamp.tzinfo is None:
            return None, ("an ISO 8601 timestamp with a timezone", "has no timezone (UTC?)")
        return stamp.astimezone(UTC), None
    if kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, (f"a number ({kind})", "must be a number")
        if kind == "int" and not float(value).is_integer():
            return None, ("an integer", "must be a whole number")
        number = int(value) if kind == "int" else float(value)
        if not math.isfinite(number):
            return None, ("a finite number", "is not finite")
        return number, _bounds(column, number)
    return value, None


def _bounds(column: contract.Column, number: float) -> tuple[str, str] | None:
    low, high = column.min_value, column.max_value
    if low is not None and (number <= low if column.exclusive_min else number < low):
        sign = ">" if column.exclusive_min else ">="
        return f"{column.name} {sign} {low:g}", f"{number:g} is too small"
    if high is not None and number > high:
        return f"{column.name} <= {high:g}", f"{number:g} is too large"
    return None


# ---- real-time counters ------------------------------------------------------------------------


class RealtimeCounters:
    """The last hour of views and add-to-carts per user, for the ``user_realtime`` view.

    ``record(events)`` stores them and returns one row per user touched: ``user_id``,
    ``event_timestamp`` (the user's latest event), ``rt_views_1h`` and ``rt_carts_1h`` counted in
    the hour up to it — the frame :func:`pipelines.features.online.push_realtime` takes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS recent (user_id TEXT NOT NULL, ts INTEGER NOT NULL, "
                "views INTEGER NOT NULL, carts INTEGER NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS recent_user_ts ON recent (user_id, ts)")

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def record(self, events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        import pandas as pd

        rows = [
            (
                e["user_id"],
                epoch_micros(e["event_ts"]),
                int(e["event_type"] == "view"),
                int(e["event_type"] == "add_to_cart"),
            )
            for e in events
        ]
        users = sorted({r[0] for r in rows})
        window = int(REALTIME_WINDOW.total_seconds() * 1_000_000)
        conn = self._connect()
        out = []
        with conn:
            conn.executemany("INSERT INTO recent VALUES (?, ?, ?, ?)", rows)
            newest = max(r[1] for r in rows)
            conn.execute("DELETE FROM recent WHERE ts < ?", (newest - 24 * window,))
            for user in users:
                (latest,) = conn.execute(
                    "SELECT max(ts) FROM recent WHERE user_id = ?", (user,)
                ).fetchone()
                views, carts = conn.execute(
                    "SELECT coalesce(sum(views), 0), coalesce(sum(carts), 0) FROM recent "
                    "WHERE user_id = ? AND ts > ? AND ts <= ?",
                    (user, latest - window, latest),
                ).fetchone()
                out.append((user, from_epoch_micros(latest), int(views), int(carts)))
        frame = pd.DataFrame(
            out, columns=["user_id", "event_timestamp", "rt_views_1h", "rt_carts_1h"]
        )
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype(
            "datetime64[us, UTC]"
        )
        return frame.astype({"rt_views_1h": "int64", "rt_carts_1h": "int64"})
