"""The GX suites in ``expectations/``: versioned JSON, reviewed in pull requests, loaded here.

Each expectation's ``meta`` names the contract ``column`` and a readable ``rule`` (and the
``check`` family), so a failure explains itself without knowing GX's expectation names. Checks that
look beyond the batch use a ``derived_column`` (see ``pipelines.validation.batch``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pipelines

SUITES_DIR = Path(pipelines.__file__).resolve().parent.parent / "expectations"


class SuiteProblem(ValueError):
    """A suite file that cannot be used, with the file named."""


@dataclass(frozen=True)
class SuiteFile:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def version(self) -> int | str:
        return self.data.get("meta", {}).get("version", "unversioned")

    @property
    def meta(self) -> dict[str, Any]:
        return self.data.get("meta", {})

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return self.data["expectations"]

    @property
    def derived_columns(self) -> dict[str, str]:
        """Derived column -> the contract column it describes."""
        return {
            e["meta"]["derived_column"]: e["meta"]["column"]
            for e in self.expectations
            if e.get("meta", {}).get("derived_column")
        }


def load_suite(table: str, suites_dir: Path | None = None) -> SuiteFile:
    path = (suites_dir or SUITES_DIR) / f"{table}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteProblem(f"{path}: no suite for table {table!r}") from None
    except json.JSONDecodeError as error:
        raise SuiteProblem(f"{path}: not valid JSON ({error})") from None
    for position, expectation in enumerate(data.get("expectations", [])):
        meta = expectation.get("meta", {})
        if "rule" not in meta or "check" not in meta:
            raise SuiteProblem(
                f"{path}: expectation #{position} ({expectation.get('type')}) needs meta.rule "
                "and meta.check so its failures can be explained"
            )
    keys = [
        (e.get("type"), e["meta"].get("column"), e["meta"]["rule"], e["meta"].get("derived_column"))
        for e in data.get("expectations", [])
    ]
    duplicated = {k for k in keys if keys.count(k) > 1}
    if duplicated:
        raise SuiteProblem(
            f"{path}: expectations must differ in type, column or rule: {duplicated}"
        )
    return SuiteFile(table, path, data)
