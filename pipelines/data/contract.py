"""The e-commerce data contract: the one definition of ``events``, ``users`` and ``items``.

``docs/data-contract.md`` explains it for people; the generator, the importer and (later) the
validation suites read it from here, so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Kind = Literal["id", "string", "timestamp", "float", "int", "bool"]

EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase")
PRICED_EVENT_TYPES: tuple[str, ...] = ("add_to_cart", "purchase")
DEVICES: tuple[str, ...] = ("web", "ios", "android")
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
COUNTRY_CODE_PATTERN = r"^[A-Z]{2}$"  # ISO 3166-1 alpha-2
TABLE_NAMES: tuple[str, ...] = ("events", "users", "items")

# Bounds every route into the platform enforces (importer rejects, GX suites quarantine). Ids are
# keys, not free text: a 2,000,000-character or blank "id" is a broken export, not a customer.
ID_MAX_LENGTH = 128
ID_NOT_BLANK_PATTERN = r"\S"
CONTROL_CHARACTERS_PATTERN = r"[\x00-\x1f\x7f]"
QUANTITY_MAX = 10_000  # units in one event line; larger is a typo or a test order
PRICE_MAX = 1_000_000.0  # unit price in the shop's currency; also catches +inf


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    min_value: float | None = None
    exclusive_min: bool = False
    max_value: float | None = None

    @property
    def pandas_dtype(self) -> str:
        """The dtype this column has once a batch is read for validation (see ``read_frame``)."""
        return pandas_dtype(self.kind)


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    timestamp: str
    columns: tuple[Column, ...]
    description: str
    extra_columns_allowed: bool = True
    rules: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}; columns: {self.column_names}")

    def arrow_schema(self, extra: Iterable[tuple[str, pa.DataType]] = ()) -> pa.Schema:
        import pyarrow as pa

        # Nullability is the validation suites' job: a broken batch must still be writable.
        fields = [pa.field(c.name, arrow_type(c.kind)) for c in self.columns]
        fields += [pa.field(name, dtype) for name, dtype in extra]
        return pa.schema(fields)


def pandas_dtype(kind: Kind) -> str:
    """One pandas dtype per kind, as :func:`read_frame` produces it and the GX suites expect it.

    Text is plain ``object``: pandas' ``string`` extension dtype would be a second spelling of the
    same data, and the two once drifted apart (the importer wrote ``string``, the suites expected
    ``object``, every imported day was quarantined).
    """
    return {
        "id": "object",
        "string": "object",
        "timestamp": "datetime64[us, UTC]",
        "float": "float64",
        "int": "int64",
        "bool": "bool",
    }[kind]


def arrow_type(kind: Kind) -> pa.DataType:
    import pyarrow as pa

    return {
        "id": pa.string(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }[kind]


EVENTS = Table(
    name="events",
    key="event_id",
    timestamp="event_ts",
    description="One row per user interaction: a view, an add-to-cart or a purchase.",
    columns=(
        Column("event_id", "id", "Unique id of the event, across all days."),
        Column("user_id", "id", "The user who acted (joins users.user_id)."),
        Column("item_id", "id", "The item acted on (joins items.item_id)."),
        Column("event_type", "string", "Step of the funnel.", allowed=EVENT_TYPES),
        Column("event_ts", "timestamp", "When it happened, UTC, timezone-aware."),
        Column("session_id", "id", "Browsing session, when the source knows it.", nullable=True),
        Column(
            "price",
            "float",
            "Unit price paid or shown; required for add_to_cart and purchase.",
            nullable=True,
            min_value=0.0,
            exclusive_min=True,
            max_value=PRICE_MAX,
        ),
        Column("quantity", "int", "Units; 1 for views.", min_value=1, max_value=QUANTITY_MAX),
        Column("device", "string", "Client platform.", nullable=True, allowed=DEVICES),
    ),
    rules=(
        "event_id is unique within the batch and across days",
        "price is null or > 0 and at most PRICE_MAX; add_to_cart and purchase rows carry a price",
        "quantity is between 1 and QUANTITY_MAX",
        "ids are not blank, at most ID_MAX_LENGTH characters, without control characters",
        "event_ts falls inside the batch's day (UTC)",
    ),
)

USERS = Table(
    name="users",
    key="user_id",
    timestamp="signup_ts",
    description="One row per customer, landed on the day they sign up.",
    columns=(
        Column("user_id", "id", "Customer id."),
        Column("signup_ts", "timestamp", "Sign-up time, UTC."),
        Column("country", "string", "ISO 3166-1 alpha-2 code.", pattern=COUNTRY_CODE_PATTERN),
        Column("age_band", "string", "Age bracket.", nullable=True, allowed=AGE_BANDS),
        Column("consent_personalization", "bool", "May we personalise for this user?"),
    ),
)

ITEMS = Table(
    name="items",
    key="item_id",
    timestamp="launched_ts",
    description="One row per catalogue item, landed on the day it launches.",
    columns=(
        Column("item_id", "id", "Item (SKU) id."),
        Column("category", "string", "Catalogue category.", nullable=True),
        Column("brand", "string", "Brand.", nullable=True),
        Column(
            "price",
            "float",
            "List price.",
            nullable=True,
            min_value=0.0,
            exclusive_min=True,
            max_value=PRICE_MAX,
        ),
        Column("launched_ts", "timestamp", "When the item went on sale, UTC.", nullable=True),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (EVENTS, USERS, ITEMS)}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; expected one of {list(TABLES)}") from None


# ---- conversion helpers shared by the generator and the importer ----------------------------


def normalize_ids(values: pd.Series) -> pd.Series:
    """Ids as strings whatever they arrived as: ``123``, ``123.0`` and ``" 123 "`` become ``"123"``.

    Floats that are whole numbers lose their ``.0`` (CSV readers turn integer columns with gaps
    into floats); blanks become null.
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & np.isfinite(values) & (values == np.floor(values))
        out = values.astype(object).where(values.notna(), None)
        out[whole] = values[whole].astype("int64").astype(str)
        rest = values.notna() & ~whole
        out[rest] = values[rest].astype(str)
        return out.astype("string")
    if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("string")
    text = values.astype("string").str.strip()
    # "123.0" arriving as text from a float-typed export; the regex runs only where a dot is
    dotted = text.str.contains(".", regex=False, na=False)
    if dotted.any():
        text[dotted] = text[dotted].str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.mask(text == "")


def to_arrow(frame: pd.DataFrame, spec: Table) -> pa.Table:
    """The frame as an Arrow table with the contract's types; extra columns are kept after them.

    The pandas metadata is dropped: a file on disk is described by its Arrow schema alone, so
    whoever wrote it (generator, importer, curated writer) it reads back the same way.
    """
    import pyarrow as pa

    extra = [c for c in frame.columns if c not in spec.column_names]
    columns = spec.column_names + extra
    extra_types = [
        (c, pa.Schema.from_pandas(frame[[c]], preserve_index=False)[0].type) for c in extra
    ]
    schema = spec.arrow_schema(extra_types)
    table = pa.Table.from_pandas(frame[columns], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def read_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow batch as the frame validation and features see: the dtypes of
    :func:`pandas_dtype`, whatever pandas dtypes the writer had (``ignore_metadata``)."""
    return table.to_pandas(ignore_metadata=True)
