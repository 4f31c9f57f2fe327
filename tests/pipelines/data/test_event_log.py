"""The live event log: what was acknowledged is read back typed by the contract; a torn last
line (a crash before fsync returned, never acknowledged) is skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from pipelines.data import contract
from pipelines.data.event_log import append_events, event_log_path, read_event_log

DAY = date(2026, 3, 2)


def _event(n: int, **changes: object) -> dict[str, object]:
    event = {
        "event_id": f"e{n}",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "event_ts": datetime(2026, 3, 2, 10, n, tzinfo=UTC),
        "session_id": None,
        "price": None,
        "quantity": 1,
        "device": "web",
    }
    return {**event, **changes}


def test_events_are_logged_per_day_and_read_back_with_contract_dtypes(tmp_path: Path) -> None:
    late = _event(3, event_ts=datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC))
    assert append_events(tmp_path, [_event(1), _event(2, event_type="purchase", price=3.5), late])
    frame = read_event_log(tmp_path, DAY)
    assert list(frame["event_id"]) == ["e1", "e2"]
    assert list(frame.columns) == contract.EVENTS.column_names
    for column in contract.EVENTS.columns:
        assert str(frame[column.name].dtype) == column.pandas_dtype, column.name
    assert list(read_event_log(tmp_path, date(2026, 3, 3))["event_id"]) == ["e3"]


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    append_events(tmp_path, [_event(1)])
    with event_log_path(tmp_path, DAY).open("a") as log:
        log.write('{"event_id": "e2", "user_')
    assert list(read_event_log(tmp_path, DAY)["event_id"]) == ["e1"]
    assert read_event_log(tmp_path, date(2026, 1, 1)).empty
