"""Where the platform leans on Feast's (and typeguard's) internals, and only here.

* :func:`import_feast` — import Feast without typeguard's import-time instrumentation.
* Entity keys: :func:`serialize_entity_key`, :func:`serialize_string_entity_keys` (Feast's
  version-3 encoding written directly) and :func:`string_entity_key_protos`.
* Values: :func:`value_cells` (the ``value`` and ``value_text`` Feast's SQLite store writes per
  feature), :func:`repeated_value_elements` (a column as elements of a ``RepeatedValue``),
  :func:`serialize_repeated_value`, :func:`parse_repeated_value`, :func:`empty_value`,
  :func:`python_values` (what ``OnlineResponse.to_dict`` makes of each ``Value``).
* Feast's SQLite store: :func:`online_table_id` (its table names) and
  :func:`sqlite_event_timestamps` (what its datetime adapter stores).

The bulk writer (``online.py``) encodes Feast's protobuf messages byte by byte because building
a ``Value`` per cell is what made Feast's own ``materialize`` slow; the encoding depends on
Feast's ``.proto`` field numbers and on its undocumented key and timestamp formats, all of which
a Feast release may change. ``tests/pipelines/features/test_feast_compat.py`` checks, against the
installed versions, every behaviour relied on here (bytes equal to Feast's own protos and
functions; Feast's classes decorated with ``typeguard.typechecked`` at import). The pins below are
the ranges it was written for; the test holds pyproject to the same.

Feast is imported inside the functions: importing this module must stay cheap and must not be
Feast's first import (see :func:`import_feast`).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from feast.feature_view import FeatureView
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
    from feast.protos.feast.types.Value_pb2 import Value as ValueProto
    from feast.repo_config import RepoConfig

FEAST_RANGE = (">=0.60", "<0.68")
TYPEGUARD_RANGE = (">=4", "<5")

ENTITY_KEY_SERIALIZATION_VERSION = 3
"""The ``entity_key_serialization_version`` of ``feature_store.yaml``: the one encoded directly."""
ENCODED_TYPES = ("Int64", "Float64", "String")
"""Feast feature types (``str(feature.dtype)``) that :func:`value_cells` and
:func:`repeated_value_elements` encode."""

_STRING_VALUE_TYPE = 2  # feast.value_type.ValueType.STRING, as serialize_entity_key writes it
_DOUBLE_TAG = 0x29  # Value.double_val: field 5, wire type 1 (fixed64)
_ELEMENT_TAG = 0x0A  # RepeatedValue.val: field 1, wire type 2 (length-delimited)
_EMPTY_ELEMENT = bytes([_ELEMENT_TAG, 0])  # an empty Value: what Feast writes for null and NaN
_PROTO_FIELDS = {"Int64": ("int64_val", int), "String": ("string_val", str)}
_DIRECT_KINDS = frozenset({"int64_val", "double_val", "string_val"})


def import_feast() -> None:
    """Import Feast without typeguard's import-time instrumentation.

    Feast 0.67 decorates its core classes with ``typeguard.typechecked``, which recompiles every
    method from source when ``feast`` is imported: ~4 s of the ~7 s an ``import feast`` takes
    here, and runtime type checks on every call afterwards. Python's ``-O`` turns the decorator
    into a no-op; this does the same for Feast's own import only, and leaves typeguard as it was
    for everyone else. Call it before the first ``import feast`` of the process.
    """
    if "feast" in sys.modules:
        return
    try:
        import typeguard
    except ImportError:  # a Feast without typeguard: nothing to skip
        import feast

        return

    def no_typecheck(target: Any = None, **_: Any) -> Any:
        return target if target is not None else (lambda decorated: decorated)

    original = typeguard.typechecked
    typeguard.typechecked = no_typecheck
    try:
        import feast  # noqa: F401
    finally:
        typeguard.typechecked = original


# ---- entity keys --------------------------------------------------------------------------------


def serialize_entity_key(entity_key: EntityKeyProto, version: int) -> bytes:
    """Feast's ``serialize_entity_key``: the bytes its online stores key rows by."""
    from feast.infra.key_encoding_utils import serialize_entity_key as feast_serialize

    return feast_serialize(entity_key, entity_key_serialization_version=version)


def string_entity_key_protos(join_key: str, ids: Sequence[Any]) -> list[EntityKeyProto]:
    """An ``EntityKey`` proto per id of a single string join key (what a provider reads by)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return [EntityKey(join_keys=[join_key], entity_values=[Value(string_val=str(i))]) for i in ids]


def serialize_string_entity_keys(join_key: str, ids: Sequence[Any], version: int) -> list[bytes]:
    """:func:`serialize_entity_key` of each id of a single string join key.

    Version 3 is written directly (~20x faster than a proto per id): a count of join keys, each
    key's type and length-prefixed name, then each value's type and length-prefixed bytes, all
    little-endian uint32. Any other version goes through Feast.
    """
    if version != 3:
        return [serialize_entity_key(k, version) for k in string_entity_key_protos(join_key, ids)]
    name = join_key.encode("utf8")
    prefix = (
        struct.pack("<III", 1, _STRING_VALUE_TYPE, len(name))
        + name
        + struct.pack("<I", _STRING_VALUE_TYPE)
    )
    length = struct.Struct("<I").pack
    encoded = (str(i).encode("utf8") for i in ids)
    return [prefix + length(len(value)) + value for value in encoded]


# ---- values -------------------------------------------------------------------------------------


def empty_value() -> ValueProto:
    """The empty ``Value``: Feast's null."""
    from feast.protos.feast.types.Value_pb2 import Value

    return Value()


def serialize_repeated_value(values: Sequence[ValueProto]) -> bytes:
    """The bytes of a ``RepeatedValue`` holding ``values`` in order."""
    from feast.protos.feast.types.Value_pb2 import RepeatedValue

    return RepeatedValue(val=values).SerializeToString()


def parse_repeated_value(blob: bytes) -> Sequence[ValueProto]:
    """The ``Value`` protos of a serialized ``RepeatedValue``, in order."""
    from feast.protos.feast.types.Value_pb2 import RepeatedValue

    return RepeatedValue.FromString(blob).val


def python_values(values: Sequence[ValueProto], value_types: Sequence[Any]) -> list[Any]:
    """Each ``Value`` as ``get_online_features(...).to_dict()`` gives it: Feast's
    ``feast_value_type_to_python_type`` with the feature's ``ValueType``, except that the scalar
    kinds the platform stores (int64, double, string; :data:`ENCODED_TYPES`) and the empty
    value (null) are read directly, as that function reads them."""
    from feast.type_map import feast_value_type_to_python_type

    out = []
    for value, value_type in zip(values, value_types, strict=True):
        kind = value.WhichOneof("val")
        if kind is None:
            out.append(None)
        elif kind in _DIRECT_KINDS:
            out.append(getattr(value, kind))
        else:
            out.append(feast_value_type_to_python_type(value, value_type))
    return out


def value_cells(column: pa.ChunkedArray, feature_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``value`` (a serialized ``Value``) and ``value_text`` Feast's SQLite store writes for
    every value of a column of ``feature_type`` (one of :data:`ENCODED_TYPES`).

    Doubles are packed directly (their tag, then the fixed64 IEEE value); ints and strings are
    converted once per distinct value and gathered by index, so a day's counts and categories
    cost a few thousand protobuf calls, not one per cell. Null and NaN become the empty
    ``Value`` and no text, as Feast writes them.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    _check_type(feature_type)
    null_blob = b""  # the empty Value serializes to nothing
    if feature_type == "Float64":
        numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        missing = np.isnan(numbers)
        pack = struct.Struct("<Bd").pack
        floats = numbers.tolist()
        blobs = np.array([pack(_DOUBLE_TAG, v) for v in floats], dtype=object)
        texts = np.array([str(v) for v in floats], dtype=object)
        blobs[missing], texts[missing] = null_blob, None
        return blobs, texts
    uniques, indices = _distinct(column)
    blobs = np.empty(len(uniques) + 1, dtype=object)
    texts = np.empty(len(uniques) + 1, dtype=object)
    for i, value in enumerate(uniques):
        blobs[i], value = _serialized_value(value, feature_type)
        texts[i] = str(value)
    blobs[-1], texts[-1] = null_blob, None
    return blobs[indices], texts[indices]


def repeated_value_elements(column: pa.ChunkedArray, feature_type: str) -> np.ndarray:
    """Every value of a column as an element of a ``RepeatedValue`` (its field tag, the length,
    the ``Value`` bytes), so a row's elements joined in feature order are the serialized
    ``RepeatedValue`` of the row.

    Doubles are packed directly; ints and strings are converted once per distinct value and
    gathered by index. Null and NaN become the empty ``Value``, as Feast writes them.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    _check_type(feature_type)
    if feature_type == "Float64":
        numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        pack = struct.Struct("<BBBd").pack  # element tag, length 9, double_val tag, value
        elements = np.array(
            [pack(_ELEMENT_TAG, 9, _DOUBLE_TAG, v) for v in numbers.tolist()], dtype=object
        )
        elements[np.isnan(numbers)] = _EMPTY_ELEMENT
        return elements
    uniques, indices = _distinct(column)
    elements = np.empty(len(uniques) + 1, dtype=object)
    for i, value in enumerate(uniques):
        blob, _ = _serialized_value(value, feature_type)
        elements[i] = bytes([_ELEMENT_TAG]) + _varint(len(blob)) + blob
    elements[-1] = _EMPTY_ELEMENT
    return elements[indices]


def _check_type(feature_type: str) -> None:
    if feature_type not in ENCODED_TYPES:
        raise ValueError(f"cannot encode feature type {feature_type}; expected {ENCODED_TYPES}")


def _distinct(column: pa.ChunkedArray) -> tuple[list[Any], np.ndarray]:
    """The distinct non-null values, and each row's index into them (nulls: one past the end)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks()
    uniques = encoded.dictionary.to_pylist()
    indices = encoded.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False)
    return uniques, indices


def _serialized_value(value: Any, feature_type: str) -> tuple[bytes, Any]:
    """The serialized ``Value`` of an int or string, and the value as converted for it."""
    from feast.protos.feast.types.Value_pb2 import Value

    field, convert = _PROTO_FIELDS[feature_type]
    value = convert(value)
    return Value(**{field: value}).SerializeToString(), value


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint (the length of a length-delimited field)."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# ---- Feast's SQLite online store ----------------------------------------------------------------


def online_table_id(config: RepoConfig, view: FeatureView) -> str:
    """The table Feast's SQL online stores keep ``view`` in (``<project>_<view>``, or versioned)."""
    from feast.infra.online_stores.helpers import compute_table_id

    return compute_table_id(
        config.project, view, config.registry.enable_online_feature_view_versioning
    )


def sqlite_event_timestamps(column: pa.ChunkedArray) -> np.ndarray:
    """``event_ts`` as Feast's SQLite store writes it, computed once per distinct stamp.

    It converts a stamp to naive UTC and registers ``int(ts.timestamp())`` as sqlite3's datetime
    adapter, so what lands in the table is whole seconds of the naive time.
    """
    import numpy as np
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks()
    converted = np.array(
        [
            int(ts.astimezone(UTC).replace(tzinfo=None).timestamp())
            for ts in encoded.dictionary.to_pylist()
        ],
        dtype=np.int64,
    )
    return converted[encoded.indices.to_numpy(zero_copy_only=False)]
