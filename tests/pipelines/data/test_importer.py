"""``import_file``: a shop's own CSV/parquet export becomes contract-shaped landing partitions."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data import contract, partitions
from pipelines.data.importer import ImportProblem, ImportReport, import_file, parse_mapping

ORDER_MAPPING = {
    "user_id": "customer",
    "item_id": "sku",
    "event_ts": "ordered_at",
    "quantity": "qty",
    "price": "unit_price",
}
EPOCH_2024_03_06_0800 = 1709712000


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def order_lines(tmp_path: Path) -> Path:
    """Order lines as a shop exports them: float-typed ids, three timestamp spellings, money."""
    return write_csv(
        tmp_path / "orders.csv",
        ["customer", "sku", "ordered_at", "qty", "unit_price"],
        [
            ["123.0", "00042", "2024-03-05T09:15:00Z", "2", "$1,299.00"],
            ["124.0", "00043", "2024-03-05 14:22:01", "1", "9.99"],
            ["124.0", "00043", "2024-03-05 14:22:01", "1", "9.99"],  # same line twice: legit
            ["125.0", "00044", str(EPOCH_2024_03_06_0800), "3", "4.50"],
            ["126.0", "00042", "2024-03-06T23:30:00-02:00", "1", "19.00"],  # 7 March in UTC
        ],
    )


def landed_files(settings: Settings, table: str) -> dict[str, bytes]:
    root = settings.landing_dir / table
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def read_landed(settings: Settings, table: str) -> pd.DataFrame:
    frames = [
        partitions.read_partition(settings.landing_dir, table, day)
        for day in partitions.partition_days(settings.landing_dir, table)
    ]
    return pd.concat(frames, ignore_index=True)


def test_order_lines_land_in_day_partitions_with_the_contract_schema(
    tmp_path: Path, settings: Settings
) -> None:
    source = order_lines(tmp_path)
    seen: list[int] = []

    report = import_file(
        source,
        "events",
        ORDER_MAPPING,
        settings=settings,
        event_type="purchase",
        progress=seen.append,
    )

    assert (report.rows_read, report.rows_written, report.rejected) == (5, 5, {})
    assert report.rejects_file is None
    assert sum(seen) == 5
    days = partitions.partition_days(settings.landing_dir, "events")
    assert days == [date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)]
    assert [p.name for p in report.partitions] == [f"date={d.isoformat()}" for d in days]

    for directory in report.partitions:
        (file,) = partitions.parquet_files(directory)
        assert file.name.startswith("import-")
        schema = pq.read_schema(file)
        assert schema.field("event_id").type == pa.string()
        assert schema.field("user_id").type == pa.string()
        assert schema.field("item_id").type == pa.string()
        assert schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
        assert schema.field("price").type == pa.float64()
        assert schema.field("quantity").type == pa.int64()
        assert schema.names == contract.EVENTS.column_names  # no source columns leak in

    landed = read_landed(settings, "events").sort_values(["event_ts", "event_id"])
    assert sorted(set(landed["user_id"])) == ["123", "124", "125", "126"]
    assert set(landed["item_id"]) == {"00042", "00043", "00044"}  # leading zeros survive
    assert set(landed["event_type"]) == {"purchase"}
    assert landed["session_id"].isna().all() and landed["device"].isna().all()
    first = landed[landed["user_id"] == "123"].iloc[0]
    assert (first["price"], first["quantity"]) == (1299.0, 2)
    assert first["event_ts"] == pd.Timestamp("2024-03-05 09:15:00", tz="UTC")
    epoch_row = landed[landed["user_id"] == "125"].iloc[0]
    assert epoch_row["event_ts"] == pd.Timestamp(EPOCH_2024_03_06_0800, unit="s", tz="UTC")
    offset_row = landed[landed["user_id"] == "126"].iloc[0]
    assert offset_row["event_ts"] == pd.Timestamp("2024-03-07 01:30:00", tz="UTC")

    ids = landed["event_id"]
    assert ids.is_unique  # the duplicated order line still gets two ids
    assert ids.str.fullmatch(r"imp-[0-9a-f]{20}").all()


def test_reimporting_the_same_file_rewrites_identical_bytes(
    tmp_path: Path, settings: Settings
) -> None:
    source = order_lines(tmp_path)
    import_file(source, "events", ORDER_MAPPING, settings=settings, event_type="purchase")
    first = landed_files(settings, "events")

    import_file(source, "events", ORDER_MAPPING, settings=settings, event_type="purchase")

    assert landed_files(settings, "events") == first
    assert len(read_landed(settings, "events")) == 5  # replaced, not appended


def test_a_mapping_to_a_missing_column_lists_the_columns_of_the_file(
    tmp_path: Path, settings: Settings
) -> None:
    source = order_lines(tmp_path)
    mapping = {**ORDER_MAPPING, "user_id": "client"}

    with pytest.raises(ImportProblem) as problem:
        import_file(source, "events", mapping, settings=settings, event_type="purchase")

    message = str(problem.value)
    assert "orders.csv" in message and "user_id=client" in message
    assert "customer, sku, ordered_at, qty, unit_price" in message
    assert not settings.landing_dir.exists()


@pytest.mark.parametrize(
    ("table", "mapping", "event_type", "expected"),
    [
        ("orders", {}, None, "unknown table"),
        ("events", {"shopper": "customer"}, "purchase", "has no field 'shopper'"),
        ("events", ORDER_MAPPING, "refund", "--event-type 'refund'"),
        ("events", ORDER_MAPPING, None, "event_type is required"),
        ("events", {"user_id": "customer", "item_id": "sku"}, "view", "event_ts is required"),
    ],
)
def test_usage_problems_raise_before_anything_is_written(
    tmp_path: Path,
    settings: Settings,
    table: str,
    mapping: dict[str, str],
    event_type: str | None,
    expected: str,
) -> None:
    source = order_lines(tmp_path)
    with pytest.raises(ImportProblem, match=expected):
        import_file(source, table, mapping, settings=settings, event_type=event_type)
    assert not settings.state_dir.exists()


def test_parse_mapping() -> None:
    assert parse_mapping(["user_id=customer", " item_id = sku "], "events") == {
        "user_id": "customer",
        "item_id": "sku",
    }
    for bad in (["user_id"], ["=customer"], ["user_id=a", "user_id=b"]):
        with pytest.raises(ImportProblem):
            parse_mapping(bad)
    with pytest.raises(ImportProblem, match="signup_ts"):  # lists the table's fields
        parse_mapping(["signup=joined"], "users")


def test_bad_rows_go_to_the_rejects_file_with_a_reason(tmp_path: Path, settings: Settings) -> None:
    source = write_csv(
        tmp_path / "orders.csv",
        ["customer", "sku", "ordered_at", "qty", "unit_price"],
        [
            ["1", "10", "2024-03-05 10:00:00", "1", "5.00"],  # good
            ["", "11", "2024-03-05 10:00:00", "1", "5.00"],  # missing user_id
            ["3", "12", "last tuesday", "1", "5.00"],  # unparseable event_ts
            ["4", "13", "2024-03-05 11:00:00", "1", "five"],  # unparseable price
            ["5", "14", "2024-03-05 12:00:00", "-1", "5.00"],  # a return
            ["6", "15", "2024-03-05 13:00:00", "-2", "5.00"],  # another return
            ["7", "16", "2024-03-05 14:00:00", "1", ""],  # purchases need a price
            ["8", "17", "2024-03-06 09:00:00", "1", "7.50"],  # good
        ],
    )

    report = import_file(source, "events", ORDER_MAPPING, settings=settings, event_type="purchase")

    assert report.rejected == {
        "negative quantity (cancellation/return)": 2,
        "missing price for purchase": 1,
        "missing user_id": 1,
        "unparseable event_ts": 1,
        "unparseable price": 1,
    }
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (8, 2, 6)
    assert report.rows_read == report.rows_written + sum(report.rejected.values())
    assert report.rejects_file is not None
    assert report.rejects_file.parent == settings.rejects_dir
    assert report.rejects_file.name.startswith("events-orders-")

    rejects = pd.read_csv(report.rejects_file, dtype=str, keep_default_na=False)
    assert list(rejects.columns) == [
        "customer", "sku", "ordered_at", "qty", "unit_price", "_row", "_reason",
    ]  # fmt: skip
    assert rejects["_row"].tolist() == ["1", "2", "3", "4", "5", "6"]
    assert rejects["_reason"].tolist() == [
        "missing user_id",
        "unparseable event_ts: last tuesday",
        "unparseable price: five",
        "negative quantity (cancellation/return)",
        "negative quantity (cancellation/return)",
        "missing price for purchase",
    ]
    assert rejects.loc[1, "ordered_at"] == "last tuesday"  # the source text, untouched
    assert sorted(read_landed(settings, "events")["user_id"]) == ["1", "8"]
    assert report.to_dict()["rows_rejected"] == 6


def test_a_fixed_reimport_removes_its_stale_rejects_and_days(
    tmp_path: Path, settings: Settings
) -> None:
    source = write_csv(
        tmp_path / "clicks.csv",
        ["user_id", "item_id", "clicked", "logged", "price"],
        [
            ["1", "10", "2024-03-05 10:00", "2024-04-01 10:00", ""],
            ["2", "11", "2024-03-06 10:00", "2024-04-01 11:00", ""],
        ],
    )
    wrong = import_file(
        source, "events", {"event_ts": "logged"}, settings=settings, event_type="purchase"
    )
    assert wrong.rejected == {"missing price for purchase": 2}
    assert wrong.rows_written == 0 and wrong.partitions == []
    assert not (settings.landing_dir / "events").exists()  # an all-rejected import lands nothing
    assert wrong.rejects_file is not None and wrong.rejects_file.exists()

    logged = import_file(
        source, "events", {"event_ts": "logged"}, settings=settings, event_type="view"
    )
    assert [p.name for p in logged.partitions] == ["date=2024-04-01"]
    assert not wrong.rejects_file.exists()  # nothing rejected any more

    fixed = import_file(
        source, "events", {"event_ts": "clicked"}, settings=settings, event_type="view"
    )
    assert partitions.partition_days(settings.landing_dir, "events") == [
        date(2024, 3, 5),
        date(2024, 3, 6),
    ]  # the April day of the same file is gone
    assert fixed.rows_written == 2


def test_mapped_event_types_accept_synonyms_and_reject_the_rest(
    tmp_path: Path, settings: Settings
) -> None:
    source = write_csv(
        tmp_path / "log.csv",
        ["visitor", "product", "ts", "action", "amount"],
        [
            ["1", "10", "2024-03-05 10:00", "Page View", ""],
            ["1", "10", "2024-03-05 10:01", "addtocart", "3.5"],
            ["1", "10", "2024-03-05 10:02", "transaction", "3.5"],
            ["1", "10", "2024-03-05 10:03", "wishlist", ""],
        ],
    )
    mapping = parse_mapping(
        ["user_id=visitor", "item_id=product", "event_ts=ts", "event_type=action", "price=amount"],
        "events",
    )

    report = import_file(source, "events", mapping, settings=settings)

    assert report.rejected == {"unknown event_type": 1}
    landed = read_landed(settings, "events").sort_values("event_ts")
    assert landed["event_type"].tolist() == ["view", "add_to_cart", "purchase"]
    assert landed["quantity"].tolist() == [1, 1, 1]  # unmapped quantity defaults to one


def test_day_first_dates_are_recognised_from_the_column(tmp_path: Path, settings: Settings) -> None:
    source = write_csv(
        tmp_path / "eu.csv",
        ["user_id", "item_id", "event_ts"],
        [["1", "10", "05/03/2024 14:22"], ["2", "11", "25/03/2024 08:00"]],
    )

    import_file(source, "events", {}, settings=settings, event_type="view")

    assert partitions.partition_days(settings.landing_dir, "events") == [
        date(2024, 3, 5),
        date(2024, 3, 25),
    ]


def test_users_normalise_country_and_consent(tmp_path: Path, settings: Settings) -> None:
    source = write_csv(
        tmp_path / "customers.csv",
        ["id", "joined", "country", "opt_in", "newsletter"],
        [
            ["1", "2024-03-05 10:00", "de", "yes", "x"],
            ["2", "2024-03-05 11:00", "NA", "", "y"],  # Namibia, not a missing value
            ["3", "2024-03-05 12:00", "Germany", "no", "z"],
        ],
    )
    mapping = {"user_id": "id", "signup_ts": "joined", "consent_personalization": "opt_in"}

    report = import_file(source, "users", mapping, settings=settings)

    assert report.rejected == {"invalid country": 1}
    landed = read_landed(settings, "users").sort_values("user_id")
    assert list(landed.columns) == contract.USERS.column_names  # unmapped extras are dropped
    assert landed["country"].tolist() == ["DE", "NA"]
    assert landed["consent_personalization"].tolist() == [True, False]  # blank is no consent


def test_parquet_items_keep_their_free_attributes(tmp_path: Path, settings: Settings) -> None:
    source = tmp_path / "catalogue.parquet"
    pd.DataFrame(
        {
            "sku": [1001, 1002, 1003],
            "launch": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 09:00", None]),
            "category": ["shoes", "bags", "shoes"],
            "colour": ["red", None, "blue"],
            "weight_kg": [0.8, 1.2, 0.5],
        }
    ).to_parquet(source)

    report = import_file(
        source, "items", {"item_id": "sku", "launched_ts": "launch"}, settings=settings
    )

    assert (report.rows_written, report.rejected) == (2, {"missing launched_ts": 1})
    assert [p.name for p in report.partitions] == ["date=2024-01-01", "date=2024-01-02"]
    (file,) = partitions.parquet_files(report.partitions[0])
    schema = pq.read_schema(file)
    assert schema.names == [*contract.ITEMS.column_names, "colour", "weight_kg"]
    assert schema.field("item_id").type == pa.string()
    assert schema.field("launched_ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("colour").type == pa.string()
    assert schema.field("weight_kg").type == pa.float64()
    landed = read_landed(settings, "items").sort_values("item_id")
    assert landed["item_id"].tolist() == ["1001", "1002"]
    assert landed["category"].tolist() == ["shoes", "bags"]  # taken under its own name
    assert landed["brand"].isna().all() and landed["price"].isna().all()


def test_report_to_dict_is_json_friendly(tmp_path: Path) -> None:
    report = ImportReport(
        source=tmp_path / "a.csv",
        table="events",
        rows_read=3,
        rows_written=2,
        rejected={"missing user_id": 1},
        partitions=[tmp_path / "date=2024-03-05"],
        rejects_file=None,
    )
    data = report.to_dict()
    assert data["rows_rejected"] == 1
    assert data["partitions"] == [str(tmp_path / "date=2024-03-05")]
    assert data["rejects_file"] is None and data["source"].endswith("a.csv")


# ---- bad values are refused at the door, each with its reason, nothing lost ---------------------

LONG_ID = "x" * 2_000_000


@pytest.mark.parametrize(
    ("customer", "qty", "price", "reason"),
    [
        # CSV blanks are missing; no-break and em spaces (Excel exports them) are "blank"
        ("\u00a0\u2003", "1", "5.00", "blank user_id (empty or whitespace only)"),
        (LONG_ID, "1", "5.00", "user_id longer than 128 characters"),
        ("ab\x07c", "1", "5.00", "control characters in user_id"),
        ("7", "1", "inf", "price not a finite number"),
        ("7", "1", "-Infinity", "price not a finite number"),
        ("7", "1", "2000000", "price above 1,000,000"),
        ("7", "10001", "5.00", "quantity above 10,000"),
        ("7", "inf", "5.00", "quantity not a finite number"),
    ],
)
def test_each_bad_value_is_rejected_with_its_reason(
    tmp_path: Path, settings: Settings, customer: str, qty: str, price: str, reason: str
) -> None:
    source = write_csv(
        tmp_path / "orders.csv",
        ["customer", "sku", "ordered_at", "qty", "unit_price"],
        [
            ["1", "10", "2024-03-05 10:00:00", "1", "5.00"],
            [customer, "11", "2024-03-05 10:30:00", qty, price],
        ],
    )
    report = import_file(source, "events", ORDER_MAPPING, settings=settings, event_type="purchase")
    assert report.rejected == {reason: 1}
    assert (report.rows_written, report.rows_rejected) == (1, 1)
    rejects = pd.read_csv(report.rejects_file, dtype=str, keep_default_na=False)
    assert rejects["_reason"].str.startswith(reason).all()
    assert len(rejects.loc[0, "_reason"]) < 200, "the reason describes the value, not quotes it"
    assert rejects.loc[0, "customer"] == customer.strip() or customer.isspace()


def test_nan_and_inf_in_a_parquet_export_are_rejected_not_read_as_blanks(
    tmp_path: Path, settings: Settings
) -> None:
    source = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "customer": ["1", "2", "3", "4"],
                "sku": ["10", "11", "12", "13"],
                "ordered_at": pa.array(
                    pd.to_datetime(["2024-03-05 10:00"] * 4, utc=True), pa.timestamp("us", "UTC")
                ),
                "qty": [1, 1, 1, 1],
                # a null price is "no price"; NaN and inf are broken numbers
                "unit_price": pa.array([5.0, float("nan"), float("inf"), None], pa.float64()),
            }
        ),
        source,
    )
    report = import_file(source, "events", ORDER_MAPPING, settings=settings, event_type="view")
    assert report.rejected == {"price not a finite number": 2}
    landed = read_landed(settings, "events").sort_values("user_id")
    assert landed["user_id"].tolist() == ["1", "4"]
    assert landed["price"].isna().tolist() == [False, True]


def test_a_line_landed_by_an_overlapping_export_is_a_duplicate_not_a_second_event(
    tmp_path: Path, settings: Settings
) -> None:
    """January and February exports that both hold 31 January: the overlap lands once; the
    second export's copies are rejected (left in, they would quarantine the day whole)."""
    header = ["customer", "sku", "ordered_at", "qty", "unit_price"]
    overlap = ["2", "11", "2024-01-31 16:00:00", "1", "5.00"]
    january = write_csv(
        tmp_path / "jan.csv", header, [["1", "10", "2024-01-30 10:00:00", "1", "5.00"], overlap]
    )
    february = write_csv(
        tmp_path / "feb.csv", header, [overlap, ["3", "12", "2024-02-01 09:00:00", "1", "5.00"]]
    )
    first = import_file(january, "events", ORDER_MAPPING, settings=settings, event_type="purchase")
    second = import_file(
        february, "events", ORDER_MAPPING, settings=settings, event_type="purchase"
    )
    assert first.rejected == {}
    assert second.rejected == {"duplicate event_id (already landed by another import or day)": 1}
    assert sorted(read_landed(settings, "events")["user_id"]) == ["1", "2", "3"]
    again = import_file(january, "events", ORDER_MAPPING, settings=settings, event_type="purchase")
    assert again.rejected == {}, "re-importing the same file is not a duplicate of itself"


def test_naive_timestamps_are_read_in_the_shops_timezone(
    tmp_path: Path, settings: Settings
) -> None:
    source = write_csv(
        tmp_path / "orders.csv",
        ["customer", "sku", "ordered_at", "qty", "unit_price"],
        [
            ["1", "10", "15/07/2024 00:30", "1", "5.00"],  # London summer time: 14 July 23:30 UTC
            ["2", "10", "15/01/2024 00:30", "1", "5.00"],  # winter: GMT = UTC
            ["3", "10", "2024-07-15T00:30:00+02:00", "1", "5.00"],  # explicit offset wins
            ["4", "10", "1721000000", "1", "5.00"],  # epoch seconds are absolute
        ],
    )
    import_file(
        source,
        "events",
        ORDER_MAPPING,
        settings=settings,
        event_type="purchase",
        timezone="Europe/London",
    )
    stamps = read_landed(settings, "events").set_index("user_id")["event_ts"]
    assert str(stamps["1"]) == "2024-07-14 23:30:00+00:00"
    assert str(stamps["2"]) == "2024-01-15 00:30:00+00:00"
    assert str(stamps["3"]) == "2024-07-14 22:30:00+00:00"
    assert stamps["4"] == pd.Timestamp(1721000000, unit="s", tz="UTC")


def test_an_unknown_timezone_is_a_usage_problem(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ImportProblem, match="Europe/Londn"):
        import_file(
            order_lines(tmp_path), "events", ORDER_MAPPING, settings=settings,
            event_type="purchase", timezone="Europe/Londn",
        )  # fmt: skip


def test_a_timestamp_format_settles_day_first_dates_no_value_reveals(
    tmp_path: Path, settings: Settings
) -> None:
    """Ten days of March 2011: no day above 12, so guessing reads 01/03 as 3 January."""
    rows = [[str(i), "10", f"{day:02d}/03/2011 10:00", "1", "5.00"] for i, day in enumerate([1, 2])]
    source = write_csv(
        tmp_path / "orders.csv", ["customer", "sku", "ordered_at", "qty", "unit_price"], rows
    )
    options = {"settings": settings, "event_type": "purchase", "timezone": "Europe/London"}
    import_file(source, "events", ORDER_MAPPING, timestamp_format="%d/%m/%Y %H:%M", **options)
    stamps = sorted(read_landed(settings, "events")["event_ts"].astype(str))
    assert stamps == ["2011-03-01 10:00:00+00:00", "2011-03-02 10:00:00+00:00"]
