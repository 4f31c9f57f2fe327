"""Bad values that arrive by any route but the importer (a shop's job writing parquet into
landing, a hand-fixed file) are caught by the GX suites: quarantined whole, reason naming the
column and the rule, every row kept in quarantine."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.partitions import partition_dir
from pipelines.validation.ingest import BatchQuarantined, ingest_table

DAY = date(2026, 2, 3)


def clean_events(rows: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(rows)],
            "user_id": [f"u{i % 3}" for i in range(rows)],
            "item_id": [f"i{i % 2}" for i in range(rows)],
            "event_type": ["purchase"] * rows,
            "event_ts": pd.date_range("2026-02-03 08:00", periods=rows, freq="h", tz="UTC"),
            "session_id": [None] * rows,
            "price": [9.5] * rows,
            "quantity": [1] * rows,
            "device": ["web"] * rows,
        }
    )


def land(settings: Settings, frame: pd.DataFrame, day: date = DAY) -> None:
    target = partition_dir(settings.landing_dir, "events", day)
    target.mkdir(parents=True, exist_ok=True)
    data = contract.to_arrow(frame, contract.EVENTS)
    # pandas would turn NaN into null on the way to Arrow; a foreign writer keeps NaN as NaN
    price = pa.array(frame["price"].to_numpy(), pa.float64(), from_pandas=False)
    data = data.set_column(data.schema.get_field_index("price"), "price", price)
    pq.write_table(data, target / "part-0.parquet")


BAD_VALUES = {
    "empty id": ("user_id", "", "user_id: not empty or whitespace only"),
    "whitespace id": ("user_id", "   ", "user_id: not empty or whitespace only"),
    "2,000,000-character id": ("item_id", "x" * 2_000_000, "item_id: at most 128 characters"),
    "control characters": ("event_id", "e\x00zz", "event_id: no control characters"),
    "infinite price": ("price", float("inf"), "price: null or > 0, at most 1,000,000"),
    "minus infinite price": ("price", float("-inf"), "price: null or > 0, at most 1,000,000"),
    "NaN price": ("price", float("nan"), "price: a number, not NaN"),
    "price out of bounds": ("price", 5_000_000.0, "price: null or > 0, at most 1,000,000"),
    "quantity out of bounds": ("quantity", 50_000, "quantity: >= 1, at most 10,000"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_bad_value_quarantines_the_batch_naming_column_and_rule(
    settings: Settings, case: str
) -> None:
    column, value, reason = BAD_VALUES[case]
    frame = clean_events()
    frame[column] = frame[column].astype(object)
    frame.loc[2, column] = value
    if column == "price":
        frame[column] = frame[column].astype("float64")
        frame.loc[2, "event_type"] = "view"  # views need no price: only the value is at fault
    if column == "quantity":
        frame[column] = frame[column].astype("int64")
    land(settings, frame)
    with pytest.raises(BatchQuarantined, match=reason.replace("(", r"\(").replace(")", r"\)")):
        ingest_table(settings, "events", DAY)
    [attempt] = (settings.quarantine_dir / "events" / f"date={DAY}").iterdir()
    assert pq.read_table(attempt / "part-0.parquet").num_rows == len(frame), "nothing lost"
    failures = json.loads((attempt / "reason.json").read_text())["failures"]
    assert [f"{f['column']}: {f['rule']}" for f in failures] == [reason]
    assert all(len(json.dumps(f["sample"])) < 1000 for f in failures), "samples are cut"


def test_personalize_validate_refuses_them_with_a_nonzero_exit(settings: Settings) -> None:
    frame = clean_events()
    frame.loc[1, "user_id"] = " "
    frame.loc[4, "price"] = float("inf")
    land(settings, frame)
    target = partition_dir(settings.landing_dir, "events", DAY)
    result = CliRunner().invoke(
        app, ["--home", str(settings.state_dir), "validate", str(target), "--table", "events"]
    )
    assert result.exit_code != 0, result.output
    assert "not empty or whitespace only" in result.output
    assert "at most 1,000,000" in result.output


def test_a_line_already_loaded_on_another_day_quarantines_the_later_day(
    settings: Settings,
) -> None:
    land(settings, clean_events())
    assert ingest_table(settings, "events", DAY).status == "loaded"
    later = date(2026, 2, 4)
    again = (
        clean_events()
        .iloc[:2]
        .assign(event_ts=pd.date_range("2026-02-04 08:00", periods=2, freq="h", tz="UTC"))
    )
    land(settings, again, later)
    with pytest.raises(BatchQuarantined, match="event_id: not already loaded on another day"):
        ingest_table(settings, "events", later)


def test_a_clean_batch_passes_every_contract_check(settings: Settings) -> None:
    land(settings, clean_events())
    assert ingest_table(settings, "events", DAY).status == "loaded"
