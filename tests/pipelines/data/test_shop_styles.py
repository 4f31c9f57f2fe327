"""``write_shop_export``: synthetic exports shaped like real shops' files, imported as such."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data import shop_styles
from pipelines.data.importer import EVENT_TYPE_SYNONYMS, import_file
from pipelines.data.shop_styles import (
    SHOP_STYLES,
    ShopExport,
    ShopStyleError,
    read_shop_export,
    write_shop_export,
)

SMALL = {"customers": 250, "items": 200, "days": 60}  # Dec 1 .. Jan 29: spans the holiday
YEAR = {"customers": 150, "items": 300}  # a full year: repeat purchases need many orders


def read_orders(export: ShopExport) -> pd.DataFrame:
    return pd.read_csv(export.events, dtype=str, keep_default_na=False)


def wall_clock(orders: pd.DataFrame) -> pd.Series:
    # day first, minutes: a month-first reading fails on 13/12/2010 and later days
    return pd.to_datetime(orders["InvoiceDate"], format="%d/%m/%Y %H:%M")


@pytest.fixture(scope="module")
def wholesale_year(tmp_path_factory: pytest.TempPathFactory) -> ShopExport:
    return write_shop_export("gift-wholesale", tmp_path_factory.mktemp("year"), **YEAR)


@pytest.fixture(scope="module")
def clicks(tmp_path_factory: pytest.TempPathFactory) -> ShopExport:
    return write_shop_export(
        "fashion-clicks", tmp_path_factory.mktemp("clicks"), customers=3000, items=300, days=14
    )


@pytest.mark.parametrize("style", SHOP_STYLES)
def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, style: str) -> None:
    first = write_shop_export(style, tmp_path / "a", seed=7, **SMALL)
    again = write_shop_export(style, tmp_path / "b", seed=7, **SMALL)
    other = write_shop_export(style, tmp_path / "c", seed=8, **SMALL)
    assert first.events.read_bytes() == again.events.read_bytes()
    assert (tmp_path / "a" / "export.json").read_bytes() == (
        tmp_path / "b" / "export.json"
    ).read_bytes()
    assert first.events.read_bytes() != other.events.read_bytes()


def test_recipe_is_written_next_to_the_export_and_reads_back(tmp_path: Path) -> None:
    export = write_shop_export("gift-wholesale", tmp_path, **SMALL)
    assert read_shop_export(tmp_path) == export
    args = export.import_args()
    assert args[:3] == [str(export.events), "--table", "events"]
    assert "session_id=InvoiceNo" in args and "event_id" not in " ".join(args)
    assert args[args.index("--event-type") + 1] == "purchase"
    assert args[args.index("--timezone") + 1] == "Europe/London"
    assert args[args.index("--items") + 1] == str(export.items)
    command = export.import_command()
    # the calendar comes first, as settings: the closed Saturdays then load as closed days
    assert command.startswith("PERSONALIZE_CLOSED_WEEKDAYS='[\"sat\"]' ")
    assert "PERSONALIZE_CLOSED_DATES='[\"12-24..01-03\"]' personalize import " in command


def test_wholesale_is_closed_on_saturdays_and_over_christmas(wholesale_year: ShopExport) -> None:
    days = set(wall_clock(read_orders(wholesale_year)).dt.date)
    span = [wholesale_year.first_day + timedelta(d) for d in range(365)]
    holiday = {d for d in span if (d.month, d.day) >= (12, 24) or (d.month, d.day) <= (1, 3)}
    assert not {d for d in days if d.weekday() == 5}
    assert not days & holiday
    assert set(wholesale_year.closed_dates) == holiday
    assert wholesale_year.closed_weekdays == (5,)
    # every other day trades (a quiet day of a small shop may have no order), Sundays included
    assert len([d for d in span if wholesale_year.is_open(d) and d not in days]) <= 10
    assert any(d.weekday() == 6 for d in days)


def test_wholesale_timestamps_are_day_first_minutes_and_the_last_day_stops_at_midday(
    wholesale_year: ShopExport,
) -> None:
    orders = read_orders(wholesale_year)
    assert orders["InvoiceDate"].str.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}").all()
    stamps = wall_clock(orders)
    assert (stamps.dt.day > 12).any()
    last = stamps[stamps.dt.date == wholesale_year.last_day]
    assert len(last) > 0 and last.dt.hour.max() < 12
    assert stamps.dt.hour.min() >= 7 and stamps.dt.hour.max() < 20
    assert list(orders.columns) == [
        "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
        "CustomerID", "Country",
    ]  # fmt: skip


def test_most_wholesale_lines_reorder_a_sku_the_customer_bought_before(
    wholesale_year: ShopExport,
) -> None:
    orders = read_orders(wholesale_year)
    bought = orders[(orders["CustomerID"] != "") & ~orders["InvoiceNo"].str.startswith("C")]
    bought = bought.assign(ts=wall_clock(bought)).sort_values(["ts", "InvoiceNo"], kind="stable")
    repeat_share = bought.duplicated(["CustomerID", "StockCode"]).mean()
    assert 0.6 <= repeat_share <= 0.8
    # re-orders are across invoices: one order lists a SKU once
    assert not bought.duplicated(["InvoiceNo", "StockCode"]).any()


def test_wholesale_skus_come_back_on_a_rhythm(wholesale_year: ShopExport) -> None:
    """A customer's SKU is re-ordered on its own cycle, not at random invoices: the gaps between
    its order days vary less than those of a Poisson process (coefficient of variation ~1)."""
    orders = read_orders(wholesale_year)
    bought = orders[(orders["CustomerID"] != "") & ~orders["InvoiceNo"].str.startswith("C")]
    days = bought.assign(day=wall_clock(bought).dt.normalize())
    days = days.drop_duplicates(["CustomerID", "StockCode", "day"]).sort_values("day")
    gaps = days.groupby(["CustomerID", "StockCode"])["day"].diff().dt.days
    pairs = days.assign(gap=gaps).dropna(subset=["gap"]).groupby(["CustomerID", "StockCode"])
    spread = pairs["gap"].agg(["std", "mean", "size"])
    spread = spread[spread["size"] >= 3]
    assert len(spread) > 500
    # measured: ~0.57 with cycles; ~0.90 when each SKU had a fixed chance per invoice
    assert (spread["std"] / spread["mean"]).median() < 0.75


def test_wholesale_customers_of_a_kind_buy_from_a_few_product_groups(
    wholesale_year: ShopExport,
) -> None:
    assert wholesale_year.items is not None
    catalogue = pd.read_csv(wholesale_year.items, dtype=str)
    orders = read_orders(wholesale_year).merge(catalogue[["StockCode", "Category"]])
    orders = orders[orders["CustomerID"] != ""]
    # over each customer's distinct SKUs: counted per line, a SKU re-ordered on a short cycle
    # would make any repertoire look concentrated
    repertoire = orders.drop_duplicates(["CustomerID", "StockCode"])
    per_customer = repertoire.groupby(["CustomerID", "Category"]).size()
    top3 = per_customer.groupby(level=0).apply(lambda s: s.nlargest(3).sum() / s.sum())
    overall = repertoire["Category"].value_counts(normalize=True).nlargest(3).sum()
    # without kinds each customer's top three groups would be about the shop's top three
    assert top3.mean() > overall + 0.1
    # popularity is Zipf-like: the top 5% of SKUs carry a large share of the lines
    counts = orders["StockCode"].value_counts()
    assert counts.iloc[: len(counts) // 20].sum() / counts.sum() > 0.2


def test_wholesale_cancellations_and_guest_lines_are_planted(wholesale_year: ShopExport) -> None:
    orders = read_orders(wholesale_year)
    quantity = orders["Quantity"].astype(int)
    cancelled = orders["InvoiceNo"].str.startswith("C")
    assert (cancelled == (quantity < 0)).all()
    assert 0.01 <= cancelled.mean() <= 0.03
    assert orders.loc[cancelled, "InvoiceNo"].str.fullmatch(r"C\d{6}").all()
    guests = orders["CustomerID"] == ""
    assert 0.05 <= guests.mean() <= 0.2
    assert not (cancelled & guests).any()
    assert orders.loc[~guests, "CustomerID"].str.fullmatch(r"\d+\.0").all()
    assert wholesale_year.planted == {
        "missing user_id": int(guests.sum()),
        "negative quantity (cancellation/return)": int(cancelled.sum()),
    }
    assert len(orders) == wholesale_year.rows


def test_default_wholesale_is_benchmark_sized_and_quick(tmp_path: Path) -> None:
    export = write_shop_export("gift-wholesale", tmp_path, scale=0.1)  # 400 customers, a year
    assert 40_000 <= export.rows <= 60_000  # x10 at scale 1: ~500k lines
    assert (export.first_day, export.last_day) == (date(2010, 12, 1), date(2011, 11, 30))


def test_clicks_funnel_and_one_visit_long_tail(clicks: ShopExport) -> None:
    log = pd.read_csv(clicks.events, dtype=str)
    counts = log["event_type"].value_counts()
    assert counts["view"] > 10 * counts["cart"] > 10 * counts["purchase"]
    assert 0.02 <= counts["cart"] / counts["view"] <= 0.1
    assert 0.3 <= counts["purchase"] / counts["cart"] <= 0.8
    assert counts["remove_from_cart"] == clicks.planted["unknown event_type"]
    sessions = log.groupby("user_id")["user_session"].nunique()
    assert (sessions == 1).mean() > 0.6 and sessions.max() >= 5
    assert log["event_time"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC").all()
    # open every day
    assert pd.to_datetime(log["event_time"].str[:10]).dt.date.nunique() == 14
    # every name but the planted one is one the importer knows
    assert set(counts.index) - set(EVENT_TYPE_SYNONYMS) == {"remove_from_cart"}


@pytest.mark.parametrize(
    ("start", "opening_utc_hour"),
    [(date(2010, 12, 1), 7), (date(2011, 6, 1), 6)],  # London: UTC+0 in winter, +1 in summer
)
def test_import_of_a_wholesale_csv_rejects_only_the_planted_rows(
    tmp_path: Path, settings: Settings, start: date, opening_utc_hour: int
) -> None:
    export = write_shop_export("gift-wholesale", tmp_path / "shop", **{**SMALL, "start": start})
    assert export.timestamp_format == "%d/%m/%Y %H:%M"
    report = import_file(
        export.events,
        "events",
        export.mapping,
        settings=settings,
        event_type=export.event_type,
        timezone=export.timezone,
    )
    assert report.rows_read == export.rows == report.rows_written + report.rows_rejected
    assert report.rejected == export.planted
    assert report.accepted is not None
    stamps = report.accepted["event_ts"]
    # the shop opens at 07:00 London time; read day first, every line falls on a trading day
    assert stamps.dt.hour.min() == opening_utc_hour
    expected_days = set(wall_clock(read_orders(export)).dt.date)
    assert set(stamps.dt.date) <= expected_days
    assert all(export.is_open(d) for d in stamps.dt.date.unique())
    assert set(report.accepted["event_type"]) == {"purchase"}


def test_import_of_wholesale_parquet_with_epoch_millis(tmp_path: Path, settings: Settings) -> None:
    summer = {**SMALL, "start": date(2011, 6, 1)}
    export = write_shop_export("gift-wholesale", tmp_path, file_format="parquet", **summer)
    schema = pq.read_schema(export.events)
    assert str(schema.field("InvoiceDate").type) == "int64"
    assert export.timezone is None  # epoch instants need no zone
    report = import_file(
        export.events, "events", export.mapping, settings=settings, event_type="purchase"
    )
    assert report.rows_read == report.rows_written + report.rows_rejected
    assert report.rejected == export.planted
    assert report.accepted is not None
    # British Summer Time: the shop opens at 07:00 London = 06:00 UTC
    assert report.accepted["event_ts"].dt.hour.min() == 6


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_import_of_clicks_rejects_only_remove_from_cart(
    tmp_path: Path, settings: Settings, file_format: str
) -> None:
    export = write_shop_export(
        "fashion-clicks", tmp_path, customers=300, items=100, days=5, file_format=file_format
    )
    report = import_file(
        export.events, "events", export.mapping, settings=settings, timezone=export.timezone
    )
    assert report.rows_read == export.rows == report.rows_written + report.rows_rejected
    assert report.rejected == export.planted and export.planted["unknown event_type"] > 0
    assert report.accepted is not None
    assert set(report.accepted["event_type"]) == {"view", "add_to_cart", "purchase"}
    assert report.accepted["event_ts"].dt.date.nunique() == 5


def test_unknown_style_and_format_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ShopStyleError, match="gift-wholesale"):
        write_shop_export("bookshop", tmp_path)
    with pytest.raises(ShopStyleError, match="parquet"):
        write_shop_export("fashion-clicks", tmp_path, file_format="xlsx")
    assert shop_styles.SHOP_STYLES == ("gift-wholesale", "fashion-clicks")


def test_generate_shop_style_prints_the_import_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    out = tmp_path / "export"
    args = ["--home", str(tmp_path / "home"), "generate", "--shop-style", "gift-wholesale"]
    args += ["--out", str(out), "--customers", "50", "--items", "60", "--days", "20"]
    result = CliRunner().invoke(app, [*args, "--start", "2011-03-01"])
    assert result.exit_code == 0, result.output
    export = read_shop_export(out)
    # the sizes typed win over the style's; the ones not typed come from the style, not from
    # the landing generator's own defaults
    assert (export.customers, export.item_count, export.first_day) == (50, 60, date(2011, 3, 1))
    assert export.last_day == date(2011, 3, 20)
    command = export.import_command(tmp_path / "home")
    assert "--timestamp-format '%d/%m/%Y %H:%M'" in command, "quoted for the shell"
    assert command in result.output  # one line (soft wrap): copy, paste, run
    default = CliRunner().invoke(app, [*args[:5], "--out", str(tmp_path / "d"), "--scale", "0.02"])
    assert default.exit_code == 0, default.output
    assert read_shop_export(tmp_path / "d").first_day == date(2010, 12, 1)
    assert read_shop_export(tmp_path / "d").last_day == date(2011, 11, 30)
    refused = CliRunner().invoke(app, ["generate", "--shop-style", "bookshop", "--out", str(out)])
    assert refused.exit_code == 2
