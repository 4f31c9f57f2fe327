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


@pytest.mark.parametrize("command", [[], ["generate"], ["import"], ["config"]])
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
