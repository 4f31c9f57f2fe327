"""The Feast behaviour feast_compat relies on, against the installed Feast and typeguard.

The typeguard toggle runs in a fresh interpreter: the point is what the first ``import feast``
of a process does. The encodings are compared with what Feast's own protos and functions give:
a Feast release that changes a format fails here, not in a store full of unreadable rows.
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import tomllib
from contextlib import closing
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from pipelines.features import feast_compat
from pipelines.features.feast_compat import (
    ENCODED_TYPES,
    ENTITY_KEY_SERIALIZATION_VERSION,
    FEAST_RANGE,
    TYPEGUARD_RANGE,
    import_feast,
)

REPO = Path(__file__).resolve().parents[3]


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def test_the_installed_versions_are_the_pinned_ones() -> None:
    assert version("feast") in SpecifierSet(",".join(FEAST_RANGE))
    assert version("typeguard") in SpecifierSet(",".join(TYPEGUARD_RANGE))


def test_feast_decorates_with_typeguard_at_import_and_the_toggle_skips_it_for_feast_only() -> None:
    # relied on: feast's modules call typeguard.typechecked while importing (else the toggle is
    # pointless and can go); after the toggle typeguard's decorator is the original again
    counted = run(
        "import typeguard\n"
        "calls = []\n"
        "original = typeguard.typechecked\n"
        "def counting(*a, **k):\n"
        "    calls.append(1)\n"
        "    return original(*a, **k)\n"
        "typeguard.typechecked = counting\n"
        "import feast\n"
        "print(len(calls))\n"
    )
    assert int(counted) > 0, "feast no longer uses typeguard.typechecked: drop import_feast"
    restored = run(
        "import typeguard\n"
        "original = typeguard.typechecked\n"
        "from pipelines.features.feast_compat import import_feast\n"
        "import_feast()\n"
        "import sys\n"
        "print('feast' in sys.modules, typeguard.typechecked is original)\n"
    )
    assert restored == "True True"


# ---- the pins -----------------------------------------------------------------------------------


def pyproject_specifier(name: str) -> SpecifierSet:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            return requirement.specifier
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


def test_the_pinned_ranges_are_pyprojects_and_bounded_above() -> None:
    for name, pinned in (("feast", FEAST_RANGE), ("typeguard", TYPEGUARD_RANGE)):
        assert pyproject_specifier(name) == SpecifierSet(",".join(pinned)), name
        assert any(spec.operator in ("<", "<=") for spec in SpecifierSet(",".join(pinned))), name


# ---- the encodings, against Feast's own protos and functions ------------------------------------

SAMPLES = {
    "Float64": (
        "double_val",
        [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, math.inf, -math.inf, math.nan, None],
        pa.float64(),
    ),
    "Int64": ("int64_val", [0, 1, -1, 300, 2**63 - 1, -(2**63), None, 1], pa.int64()),
    "String": ("string_val", ["", "a", "ünïcødé-42", "x" * 300, None, "a"], pa.string()),
}


def column(values: list[Any], kind: pa.DataType) -> pa.ChunkedArray:
    # two chunks: the encoders must not assume one
    half = len(values) // 2
    return pa.chunked_array([pa.array(values[:half], kind), pa.array(values[half:], kind)])


def feast_value(field: str, value: Any) -> Any:
    """Feast's ``Value`` of a cell: the empty one for null and NaN, as its materialize writes."""
    from feast.protos.feast.types.Value_pb2 import Value

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Value()
    return Value(**{field: value})


@pytest.fixture(scope="module", autouse=True)
def feast_imported() -> None:
    import_feast()


@pytest.mark.parametrize("feature_type", ENCODED_TYPES)
def test_value_cells_are_the_value_and_text_feasts_sqlite_store_writes(feature_type: str) -> None:
    from feast.infra.online_stores.helpers import extract_text_and_num

    field, values, kind = SAMPLES[feature_type]

    blobs, texts = feast_compat.value_cells(column(values, kind), feature_type)

    expected = [feast_value(field, v) for v in values]
    assert list(blobs) == [v.SerializeToString() for v in expected]
    assert list(texts) == [extract_text_and_num(v, False)[0] for v in expected]


def test_repeated_value_elements_joined_per_row_are_feasts_repeated_value() -> None:
    from feast.protos.feast.types.Value_pb2 import RepeatedValue

    rows = min(len(values) for _, values, _ in SAMPLES.values())
    columns = [
        feast_compat.repeated_value_elements(column(values[:rows], kind), feature_type)
        for feature_type, (_, values, kind) in SAMPLES.items()
    ]

    for row, parts in enumerate(zip(*columns, strict=True)):
        expected = [feast_value(field, values[row]) for field, values, _ in SAMPLES.values()]
        blob = RepeatedValue(val=expected).SerializeToString()
        assert b"".join(parts) == blob
        assert feast_compat.serialize_repeated_value(expected) == blob
        assert list(feast_compat.parse_repeated_value(blob)) == expected
    assert feast_compat.empty_value() == feast_value("double_val", None)


def test_unsupported_feature_types_are_refused() -> None:
    with pytest.raises(ValueError, match="Bool"):
        feast_compat.value_cells(column([True], pa.bool_()), "Bool")
    with pytest.raises(ValueError, match="Bool"):
        feast_compat.repeated_value_elements(column([True], pa.bool_()), "Bool")


def test_string_entity_keys_are_feasts_serialize_entity_key_at_the_configured_version() -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    version = ENTITY_KEY_SERIALIZATION_VERSION
    ids = ["u1", "", "ünïcødé-42", "x" * 300, 42]

    ours = feast_compat.serialize_string_entity_keys("user_id", ids, version)

    expected = [
        serialize_entity_key(
            EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=str(i))]),
            entity_key_serialization_version=version,
        )
        for i in ids
    ]
    assert ours == expected
    protos = feast_compat.string_entity_key_protos("user_id", ids)
    assert [feast_compat.serialize_entity_key(k, version) for k in protos] == expected


def test_the_store_is_configured_with_the_version_encoded_directly(tmp_path: Path) -> None:
    from pipelines.config import Settings
    from pipelines.features.store import feature_store_config

    config = feature_store_config(Settings(home=tmp_path))
    assert config["entity_key_serialization_version"] == ENTITY_KEY_SERIALIZATION_VERSION == 3


def test_sqlite_event_timestamps_are_what_feasts_sqlite_store_stores() -> None:
    # Feast's SQLite store registers its datetime adapter when imported and writes naive UTC
    import feast.infra.online_stores.sqlite  # noqa: F401
    from feast.utils import to_naive_utc

    stamps = [
        datetime(2026, 1, 2, tzinfo=UTC),
        datetime(2026, 1, 2, 12, 30, 15, 999_999, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
    ]
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE t (event_ts timestamp)")
        conn.executemany("INSERT INTO t VALUES (?)", [(to_naive_utc(s),) for s in stamps])
        stored = [row[0] for row in conn.execute("SELECT event_ts FROM t ORDER BY rowid")]

    ours = feast_compat.sqlite_event_timestamps(column(stamps, pa.timestamp("us", tz="UTC")))

    assert ours.tolist() == stored


def test_online_table_id_is_the_table_feasts_sqlite_store_uses() -> None:
    from feast.infra.online_stores.sqlite import _table_id

    for versioning in (False, True):
        registry = SimpleNamespace(enable_online_feature_view_versioning=versioning)
        config = SimpleNamespace(project="personalize", registry=registry)
        view = SimpleNamespace(
            name="user_activity",
            projection=SimpleNamespace(version_tag=None),
            current_version_number=2,
        )
        assert feast_compat.online_table_id(config, view) == _table_id(
            "personalize", view, versioning
        )
    unversioned = SimpleNamespace(enable_online_feature_view_versioning=False)
    config = SimpleNamespace(project="personalize", registry=unversioned)
    assert feast_compat.online_table_id(config, view) == "personalize_user_activity"


def test_python_values_are_what_feasts_online_response_gives() -> None:
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type
    from feast.value_type import ValueType

    values = [
        Value(int64_val=7),
        Value(double_val=2.5),
        Value(string_val="books"),
        Value(),  # null
        Value(int32_val=3),  # a kind the platform does not store: Feast converts it
        Value(unix_timestamp_val=1_700_000_000),
    ]
    types = [
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.STRING,
        ValueType.DOUBLE,
        ValueType.INT32,
        ValueType.UNIX_TIMESTAMP,
    ]
    ours = feast_compat.python_values(values, types)
    feasts = [feast_value_type_to_python_type(v, t) for v, t in zip(values, types, strict=True)]
    assert ours == feasts
    assert [type(v) for v in ours] == [type(v) for v in feasts]
