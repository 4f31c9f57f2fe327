"""The personalize command: help everywhere, exit codes 0 ok / 1 data problem / 2 usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["generate"],
        ["import"],
        ["config"],
        ["story"],
        ["alerts"],
        ["alerts", "ack"],
        ["load-history"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_generate_writes_landing_batches_and_reports_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = invoke(
        "--home",
        str(home),
        "generate",
        "--users",
        "50",
        "--items",
        "20",
        "--days",
        "3",
        "--start",
        "2026-02-01",
        "--bad",
        "empty-file@2026-02-02",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["users"] == 50 and report["items"] == 20
    assert [d["bad"] for d in report["days"]] == [None, "empty-file", None]
    assert (home / "landing/events/date=2026-02-03/part-0.parquet").is_file()
    assert (home / "truth/purchase_probability_7d.parquet").is_file()


def test_generate_prints_a_summary_people_can_read(tmp_path: Path) -> None:
    result = invoke(
        "--home", str(tmp_path), "generate", "--users", "30", "--items", "12", "--days", "2"
    )
    assert result.exit_code == 0, result.output
    assert "funnel:" in result.output and "events" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--bad", "melted@2026-01-02"], "missing-column"),
        (["generate", "--drift", "promo@tomorrow"], "not a date"),
        (["generate", "--start", "01/02/2026"], "not a date"),
        (["generate", "--days", "2", "--drift", "promo@2027-01-01"], "outside the generated days"),
        (["--profile", "staging", "config"], "local or prod"),
        (["story", "--history-days", "20", "--live-days", "6", "--start", "soon"], "not a date"),
    ],
)
def test_usage_errors_exit_2_and_say_why(args: list[str], message: str, tmp_path: Path) -> None:
    result = invoke("--home", str(tmp_path), *args)
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
    assert not (tmp_path / "landing").exists()


def test_config_shows_where_things_live(tmp_path: Path) -> None:
    result = invoke("--home", str(tmp_path), "config", "--json")
    assert result.exit_code == 0
    described = json.loads(result.output)
    assert described["profile"] == "local"
    assert described["home"] == str(tmp_path.resolve())


ORDER_LINES = """customer,sku,ordered_at,qty,unit_price
123.0,5001.0,2026-02-01T10:00:00Z,1,9.99
124.0,5002.0,2026-02-01 11:30:00,2,$19.50
,5003.0,2026-02-02 09:00:00,1,5.00
125.0,5001.0,not a time,1,9.99
126.0,5004.0,2026-02-02 12:00:00,-1,9.99
"""
ORDER_MAP = [
    "--map",
    "user_id=customer",
    "--map",
    "item_id=sku",
    "--map",
    "event_ts=ordered_at",
    "--map",
    "quantity=qty",
    "--map",
    "price=unit_price",
]


def test_import_order_lines_reports_counts_and_rejects(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(ORDER_LINES)
    result = invoke(
        "--home",
        str(tmp_path / "h"),
        "import",
        str(source),
        "--table",
        "events",
        "--event-type",
        "purchase",
        *ORDER_MAP,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows_read"] == 5 and report["rows_written"] == 2
    assert report["rows_read"] == report["rows_written"] + sum(report["rejected"].values())
    assert (tmp_path / "h/landing/events/date=2026-02-01").is_dir()


def test_import_with_a_missing_column_exits_2_listing_the_columns(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(ORDER_LINES)
    result = invoke(
        "--home",
        str(tmp_path / "h"),
        "import",
        str(source),
        "--event-type",
        "purchase",
        "--map",
        "user_id=client",
        "--map",
        "item_id=sku",
        "--map",
        "event_ts=ordered_at",
    )
    assert result.exit_code == 2
    assert "customer, sku, ordered_at, qty, unit_price" in result.output.replace("\n", " ")


def test_import_where_no_row_converts_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("customer,sku,ordered_at\n1,2,never\n3,4,soon\n")
    result = invoke(
        "--home",
        str(tmp_path / "h"),
        "import",
        str(source),
        "--event-type",
        "purchase",
        "--map",
        "user_id=customer",
        "--map",
        "item_id=sku",
        "--map",
        "event_ts=ordered_at",
    )
    assert result.exit_code == 1
    assert "no row could be converted" in result.output
