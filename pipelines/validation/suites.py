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


# ---- expectations that follow from the contract ---------------------------------------------


def contract_expectations(table: str) -> list[dict[str, Any]]:
    """The expectations every suite must hold because the contract says so: each column exists
    with its dtype (:func:`contract.pandas_dtype`), ids are clean keys, numbers are finite and
    within bounds. The JSON suites carry them verbatim (reviewable, shown in Data Docs); a test
    checks they are exactly these, and ``python -m pipelines.validation.suites`` rewrites them.
    """
    from pipelines.data import contract

    spec = contract.table(table)
    out: list[dict[str, Any]] = []

    def expect(kind: str, column: str, rule: str, check: str, **kwargs: Any) -> None:
        meta: dict[str, Any] = {"check": check, "rule": rule, "column": column}
        if "derived_column" in kwargs:
            meta["derived_column"] = kwargs.pop("derived_column")
        target = kwargs.pop("on", column)
        out.append({"type": kind, "kwargs": {"column": target, **kwargs}, "meta": meta})

    for column in spec.columns:
        expect("expect_column_to_exist", column.name, "required column present", "schema")
    for column in spec.columns:
        dtype = column.pandas_dtype
        expect(
            "expect_column_type_to_be", column.name, f"type {column.kind} ({dtype})", "schema",
            type_=dtype,
        )  # fmt: skip
    for column in spec.columns:
        name = column.name
        if column.kind == "id":
            expect(
                "expect_column_values_to_match_regex", name, "not empty or whitespace only",
                "keys", regex=contract.ID_NOT_BLANK_PATTERN,
            )  # fmt: skip
            expect(
                "expect_column_value_lengths_to_be_between", name,
                f"at most {contract.ID_MAX_LENGTH} characters", "keys",
                max_value=contract.ID_MAX_LENGTH,
            )  # fmt: skip
            expect(
                "expect_column_values_to_not_match_regex", name, "no control characters",
                "keys", regex=contract.CONTROL_CHARACTERS_PATTERN,
            )  # fmt: skip
        elif column.kind in ("float", "int") and column.min_value is not None:
            bounds: dict[str, Any] = {"min_value": column.min_value}
            if column.exclusive_min:
                bounds["strict_min"] = True
            lower = ">" if column.exclusive_min else ">="
            rule = f"{lower} {column.min_value:g}"
            if column.max_value is not None:
                bounds["max_value"] = column.max_value
                rule += f", at most {_number(column.max_value)}"
            if column.nullable:
                rule = f"null or {rule}"
            expect("expect_column_values_to_be_between", name, rule, "ranges", **bounds)
        if column.kind == "float":
            derived = f"_{name}_is_number"
            expect(
                "expect_column_values_to_be_in_set", name, "a number, not NaN", "ranges",
                on=derived, value_set=[True], derived_column=derived,
            )  # fmt: skip
    return out


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def _contract_key(expectation: dict[str, Any]) -> tuple[str, str | None, str | None]:
    meta = expectation.get("meta", {})
    return (expectation["type"], meta.get("column"), meta.get("derived_column"))


def with_contract_expectations(data: dict[str, Any], table: str) -> dict[str, Any]:
    """``data`` (a suite's JSON) with its contract expectations replaced by the derived ones:
    the schema checks first, in column order; a value check replaces the suite's check of the
    same kind and column in place; new ones follow the suite's own checks."""
    derived = contract_expectations(table)
    by_key = {_contract_key(e): e for e in derived if e["meta"]["check"] != "schema"}
    placed: set[tuple[str, str | None, str | None]] = set()
    body = []
    for expectation in data.get("expectations", []):
        key = _contract_key(expectation)
        if expectation.get("meta", {}).get("check") == "schema":
            continue
        if key in by_key:
            body.append(by_key[key])
            placed.add(key)
        else:
            body.append(expectation)
    schema = [e for e in derived if e["meta"]["check"] == "schema"]
    rest = [e for key, e in by_key.items() if key not in placed]
    return {**data, "expectations": schema + body + rest}


def _rewrite_suites() -> None:  # pragma: no cover - a maintainer's tool, checked by a test
    from pipelines.data import contract

    for table in contract.TABLE_NAMES:
        path = SUITES_DIR / f"{table}.json"
        data = with_contract_expectations(json.loads(path.read_text()), table)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"{path}: {len(data['expectations'])} expectations")


if __name__ == "__main__":  # pragma: no cover
    _rewrite_suites()
