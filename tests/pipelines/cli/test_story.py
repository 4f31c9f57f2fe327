"""``personalize story``'s day lines (the run itself: tests/e2e/test_story.py)."""

from __future__ import annotations

from datetime import date

from pipelines.cli.common import err_console
from pipelines.cli.story import _DayPrinter
from pipelines.orchestration.runner import RunEvent


def test_a_failed_run_is_printed_with_its_failed_tasks_under_the_day() -> None:
    day = date(2026, 1, 16)
    printer = _DayPrinter()
    with err_console.capture() as captured:
        printer.on_event(RunEvent("started", "train", day))
        printer.on_event(
            RunEvent(
                "finished",
                "train",
                day,
                "failed",
                duration_s=2.0,
                failed_tasks=("train_propensity: ValueError: 7 snapshot(s) [2026-01-04 ..]",),
            )
        )
        printer.flush()
    lines = captured.get().splitlines()
    assert lines[0].startswith("2026-01-16  train ✗"), lines
    assert lines[1] == "  ✗ train.train_propensity: ValueError: 7 snapshot(s) [2026-01-04 ..]"
