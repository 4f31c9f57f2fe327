"""The data contract: one definition, ids as strings whatever they arrive as."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.data import contract


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([123.0, 7.0, np.nan]), ["123", "7", None]),
        (pd.Series([123, 7]), ["123", "7"]),
        (pd.Series(["123.0", " 00123 ", "", "sku-9", None]), ["123", "00123", None, "sku-9", None]),
        (pd.Series([1.5]), ["1.5"]),
    ],
)
def test_ids_become_strings(values: pd.Series, expected: list[str | None]) -> None:
    result = contract.normalize_ids(values)
    assert [None if pd.isna(v) else v for v in result] == expected


def test_every_table_has_key_and_timestamp_columns() -> None:
    for spec in contract.TABLES.values():
        assert spec.column(spec.key).kind == "id"
        assert spec.column(spec.timestamp).kind == "timestamp"


def test_arrow_types_follow_the_contract() -> None:
    schema = contract.EVENTS.arrow_schema()
    assert schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("user_id").type == pa.string()
    assert schema.field("quantity").type == pa.int64()


def test_to_arrow_keeps_free_attributes_after_the_contract_columns() -> None:
    frame = pd.DataFrame(
        {
            "colour": ["red"],
            "item_id": ["i1"],
            "category": ["toys"],
            "brand": [None],
            "price": [9.5],
            "launched_ts": pd.to_datetime(["2026-01-01"], utc=True),
        }
    )
    table = contract.to_arrow(frame, contract.ITEMS)
    assert table.schema.names == [*contract.ITEMS.column_names, "colour"]


def test_unknown_table_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="events"):
        contract.table("orders")


def test_the_documented_contract_is_the_coded_one() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "data-contract.md").read_text()
    for spec in contract.TABLES.values():
        for column in spec.columns:
            assert f"| `{column.name}` | {column.kind} |" in text, (spec.name, column.name)


def test_the_suites_carry_exactly_the_contract_derived_checks() -> None:
    """The JSON suites and the contract cannot drift apart: rewriting a suite's contract checks
    from the contract (``python -m pipelines.validation.suites``) changes nothing."""
    from pipelines.validation.suites import load_suite, with_contract_expectations

    for table in contract.TABLE_NAMES:
        suite = load_suite(table)
        assert with_contract_expectations(suite.data, table) == suite.data, (
            f"{suite.path} differs from the contract: run `python -m pipelines.validation.suites`"
        )
        types = {
            e["kwargs"]["column"]: e["kwargs"]["type_"]
            for e in suite.expectations
            if e["type"] == "expect_column_type_to_be"
        }
        assert types == {c.name: c.pandas_dtype for c in contract.table(table).columns}


def test_what_any_writer_lands_reads_back_with_the_contract_dtypes(tmp_path) -> None:
    """The importer builds frames with pandas' ``string``/``boolean`` dtypes; the file must not
    remember them, or validation sees ``string`` where the suite expects ``object``."""
    import pyarrow.parquet as pq

    frame = pd.DataFrame(
        {
            "user_id": pd.Series(["u1"], dtype="string"),
            "signup_ts": pd.to_datetime(["2026-01-01"], utc=True).as_unit("us"),
            "country": pd.Series(["DE"], dtype="string"),
            "age_band": pd.Series([pd.NA], dtype="string"),
            "consent_personalization": pd.Series([True], dtype="boolean"),
        }
    )
    pq.write_table(contract.to_arrow(frame, contract.USERS), tmp_path / "u.parquet")
    back = contract.read_frame(pq.read_table(tmp_path / "u.parquet"))
    assert {c: str(t) for c, t in back.dtypes.items()} == {
        c.name: c.pandas_dtype for c in contract.USERS.columns
    }
