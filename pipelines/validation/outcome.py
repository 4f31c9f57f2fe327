"""What a validation decided, as plain data: printed by the CLI, written to reason.json and alerts.

The decision itself is a pure function of the check results (``decide``), so it can be tested and
explained without Great Expectations in the room.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class CheckResult:
    """One expectation of the suite, judged on one batch."""

    expectation: str
    check: str  # schema | keys | values | ranges | time | references | volume | file
    rule: str
    column: str | None
    success: bool
    skipped: str | None = None  # why the check could not be judged here
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample: list[Any] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return not self.success and self.skipped is None

    def line(self) -> str:
        """``FAIL price: null or > 0 — 312 rows (0.6%), e.g. -4.99, -12.0``."""
        status = "FAIL" if self.failed else "SKIP" if self.skipped else "ok  "
        where = f"{self.column}: " if self.column else "table: "
        text = f"{status} {where}{self.rule}"
        if self.skipped:
            return f"{text} (skipped: {self.skipped})"
        details = []
        if self.unexpected_count:
            share = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent else ""
            details.append(f"{self.unexpected_count:,} rows{share}")
        if self.observed is not None and not self.unexpected_count:
            details.append(f"observed {self.observed}")
        if self.sample:
            details.append("e.g. " + ", ".join(str(v) for v in self.sample[:5]))
        return f"{text} — {'; '.join(details)}" if details and self.failed else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationOutcome:
    """The verdict on one table's batch for one day, with everything needed to explain it."""

    table: str
    day: date
    rows: int
    results: list[CheckResult]
    files: list[str]
    suite_name: str
    suite_version: int | str
    run_id: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    data_docs_page: str | None = None
    note: str | None = None  # how the verdict was reached, when not by a GX run of its own

    @property
    def success(self) -> bool:
        return decide(self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    @property
    def skipped(self) -> list[CheckResult]:
        return [r for r in self.results if r.skipped]

    def statistics(self) -> dict[str, int]:
        judged = [r for r in self.results if not r.skipped]
        return {
            "evaluated_expectations": len(judged),
            "successful_expectations": sum(r.success for r in judged),
            "unsuccessful_expectations": len(self.failures),
            "skipped_expectations": len(self.skipped),
            "rows": self.rows,
        }

    def summary(self) -> str:
        """One line for the DAG log, the CLI and the alert's first line."""
        head = f"{self.table} {self.day.isoformat()}"
        if self.success:
            return f"{head}: valid — {self.rows:,} rows passed {len(self.results)} checks"
        failures = self.failures
        shown = "; ".join(
            f"{f.column or 'table'}: {f.rule}"
            + (f" ({f.unexpected_count:,} rows)" if f.unexpected_count else "")
            for f in failures[:3]
        )
        more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        return f"{head}: {len(failures)} of {len(self.results)} checks failed — {shown}{more}"

    def lines(self) -> list[str]:
        """One line per expectation, failures first, then skipped, then passed."""
        ordered = sorted(self.results, key=lambda r: (not r.failed, r.skipped is None))
        return [r.line() for r in ordered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "day": self.day.isoformat(),
            "success": self.success,
            "summary": self.summary(),
            "rows": self.rows,
            "files": self.files,
            "suite": {"name": self.suite_name, "version": self.suite_version},
            "gx_run_id": self.run_id,
            "statistics": self.statistics(),
            "extra_columns": self.extra_columns,
            "parameters": self.parameters,
            "data_docs_page": self.data_docs_page,
            **({"note": self.note} if self.note else {}),
            "failures": [f.to_dict() for f in self.failures],
            "skipped": [s.to_dict() for s in self.skipped],
        }


def decide(results: list[CheckResult]) -> bool:
    """A batch is valid when no judged check failed; skipped checks neither pass nor fail it."""
    return not any(r.failed for r in results)
