"""The verdict is a pure function of check results, and it explains itself in one line."""

from __future__ import annotations

from datetime import date

from pipelines.validation.outcome import CheckResult, ValidationOutcome, decide


def check(
    success: bool, rule: str = "null or > 0", skipped: str | None = None, **kw
) -> CheckResult:
    return CheckResult("expect_x", "ranges", rule, "price", success, skipped, **kw)


def test_a_batch_is_valid_when_no_judged_check_failed() -> None:
    assert decide([check(True), check(False, skipped="no history")])
    assert not decide([check(True), check(False)])
    assert decide([])


def test_summary_names_column_rule_and_count() -> None:
    outcome = ValidationOutcome(
        table="events",
        day=date(2026, 1, 3),
        rows=500,
        results=[check(True, "not null"), check(False, unexpected_count=15, sample=[-2.5])],
        files=[],
        suite_name="events",
        suite_version=1,
    )
    assert (
        outcome.summary()
        == "events 2026-01-03: 1 of 2 checks failed — price: null or > 0 (15 rows)"
    )
    assert outcome.lines()[0].startswith("FAIL price: null or > 0 — 15 rows")
    assert "e.g. -2.5" in outcome.lines()[0]
    assert outcome.statistics()["unsuccessful_expectations"] == 1


def test_lines_put_failures_first_then_skipped() -> None:
    outcome = ValidationOutcome(
        "users",
        date(2026, 1, 1),
        3,
        [check(True, "a"), check(False, "b", skipped="no history"), check(False, "c")],
        [],
        "users",
        1,
    )
    assert [line.split()[0] for line in outcome.lines()] == ["FAIL", "SKIP", "ok"]
