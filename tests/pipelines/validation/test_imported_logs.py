"""Bring your own data, end to end: a shop's export goes through `personalize import`, then every
imported day through ingest (real GX suites) and features (real offline store).

Three exports, as shops have them: order lines (CSV, day-first naive London time, closed on
Saturdays, cancellations and anonymous lines), a click log (parquet, epoch milliseconds, string
event names) and a click log (CSV, ISO timestamps with " UTC"). Clean rows must pass every day
(0 quarantined), and the bad rows must be only in the rejects files.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data import partitions
from pipelines.data.catalogue import import_shop_log
from pipelines.features.offline import compute_features_for_day
from pipelines.validation.ingest import closed_days, ingest_table

ORDER_MAP = {
    "user_id": "CustomerID",
    "item_id": "StockCode",
    "event_ts": "InvoiceDate",
    "quantity": "Quantity",
    "price": "UnitPrice",
    "session_id": "InvoiceNo",
}
CLICK_MAP = {
    "user_id": "user_id",
    "item_id": "product_id",
    "event_ts": "event_time",
    "event_type": "event_type",
    "session_id": "user_session",
}


def order_lines(
    path: Path, start: date, days: int, prefix: str, seed: int = 1, invoices: int = 12
) -> dict[str, int]:
    """A wholesaler's order lines; returns the planted bad rows by their reject reason."""
    rng = np.random.default_rng(seed)
    rows, planted = [], {"negative quantity (cancellation/return)": 0, "missing user_id": 0}
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day.weekday() == 5:  # closed on Saturdays
            continue
        for invoice in range(invoices if day.weekday() != 6 else invoices // 2):  # quiet Sundays
            customer = f"{prefix}{rng.integers(0, 40)}"
            minute = int(rng.integers(8 * 60, 17 * 60))
            stamp = f"{day:%d/%m/%Y} {minute // 60:02d}:{minute % 60:02d}"
            number = f"{offset:03d}{invoice:03d}"
            for _ in range(int(rng.integers(2, 6))):
                sku = f"{prefix}SKU{int(rng.zipf(1.6)) % 60:03d}"
                quantity, price = int(rng.integers(1, 24)), f"{rng.uniform(0.4, 12):.2f}"
                rows.append([number, sku, quantity, stamp, price, customer, "United Kingdom"])
            if invoice == 0:  # a cancellation, as the real export writes them
                rows.append([f"C{number}", sku, -quantity, stamp, price, customer, "UK"])
                planted["negative quantity (cancellation/return)"] += 1
            if invoice == 1:  # a till sale without a customer
                rows.append([number, sku, 1, stamp, price, "", "United Kingdom"])
                planted["missing user_id"] += 1
    columns = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
    pd.DataFrame(rows, columns=[*columns, "Country"]).to_csv(path, index=False)
    return planted


def click_log(start: date, days: int, prefix: str, seed: int = 2) -> tuple[pd.DataFrame, int]:
    """A click log: sessions of views, some carts and purchases, some remove_from_cart."""
    rng = np.random.default_rng(seed)
    rows, removes = [], 0
    base = pd.Timestamp(start, tz="UTC")
    for offset in range(days):
        for session in range(25):
            user = int(rng.integers(0, 60)) if rng.random() < 0.6 else 1000 + offset * 100 + session
            moment = base + pd.Timedelta(days=offset, minutes=int(rng.integers(0, 1400)))
            for step in range(int(rng.integers(1, 6))):
                item = int(rng.zipf(1.7)) % 80
                kind = "view" if step < 3 else ("cart" if step == 3 else "purchase")
                if rng.random() < 0.05:
                    kind, removes = "remove_from_cart", removes + 1
                rows.append(
                    {
                        "event_time": moment + pd.Timedelta(seconds=step * 40),
                        "event_type": kind,
                        "product_id": item,
                        "category_code": f"apparel.{['shoes', 'shirt', 'bag'][item % 3]}",
                        "brand": ["acme", "zeta", None][item % 3],
                        "price": round(float(10 + item * 1.5), 2),
                        "user_id": user,
                        "user_session": f"{prefix}s{offset}-{session}",
                    }
                )
    frame = pd.DataFrame(rows)
    frame["user_id"] = prefix + frame["user_id"].astype(str)
    frame["product_id"] = prefix + frame["product_id"].astype(str)
    return frame, removes


def run_days(settings: Settings, days: list[date]) -> dict[date, str]:
    status = {}
    for day in days:
        for table in ("users", "items", "events"):
            result = ingest_table(settings, table, day)
        status[day] = result.status
        compute_features_for_day(settings, day)
    return status


def curated(settings: Settings, table: str, days: list[date]) -> pd.DataFrame:
    frames = [partitions.read_partition(settings.curated_dir, table, d) for d in days]
    return pd.concat(frames, ignore_index=True)


def imported_days(settings: Settings) -> list[date]:
    return partitions.partition_days(settings.landing_dir, "events")


def assert_nothing_lost(settings: Settings, report, rejected: dict[str, int]) -> None:
    assert report.rows_read == report.rows_written + report.rows_rejected
    assert report.rejected == rejected
    curated = sum(
        pq.ParquetFile(f).metadata.num_rows
        for _, d in partitions.iter_partitions(settings.curated_dir, "events")
        for f in partitions.parquet_files(d)
    )
    assert curated == report.rows_written, "every landed row is curated"
    assert not list(settings.quarantine_dir.rglob("reason.json")), "no day quarantined"


def test_order_lines_with_closed_saturdays_pass_ingest_and_features(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", closed_weekdays=["sat"])
    source = tmp_path / "Online Retail.csv"
    planted = order_lines(source, date(2025, 3, 3), 14, prefix="")
    log = import_shop_log(
        source, ORDER_MAP, settings=settings, event_type="purchase", timezone="Europe/London",
        users_mapping={"country": "Country"},
    )  # fmt: skip
    days = [date(2025, 3, 3) + timedelta(days=i) for i in range(14)]
    status = run_days(settings, days)
    assert {d for d, s in status.items() if s == "closed"} == {date(2025, 3, 8), date(2025, 3, 15)}
    assert set(status.values()) == {"loaded", "closed"}
    assert closed_days(settings) == {date(2025, 3, 8), date(2025, 3, 15)}
    assert_nothing_lost(settings, log.events, planted)
    users = pd.concat(
        [partitions.read_partition(settings.curated_dir, "users", d) for d in days],
        ignore_index=True,
    )
    assert users["user_id"].is_unique and len(users) == log.derived["users"].rows
    assert set(users["country"]) == {"ZZ"}, "country names are not ISO codes: unknown, not wrong"
    items = pd.concat(
        [partitions.read_partition(settings.curated_dir, "items", d) for d in days],
        ignore_index=True,
    )
    assert items["price"].gt(0).all() and items["launched_ts"].notna().all()
    activity = pq.read_table(
        partitions.partition_dir(settings.feast_offline_dir, "user_activity", days[-1])
    ).to_pandas()
    assert set(activity["user_id"]) >= set(users["user_id"]) - set(), "features for everyone"


def test_a_click_log_in_parquet_with_epoch_milliseconds(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    frame, removes = click_log(date(2025, 4, 7), 6, prefix="p")
    frame["event_time"] = frame["event_time"].astype("int64") // 1_000_000  # epoch ms
    source = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)
    log = import_shop_log(
        source, {**CLICK_MAP, "price": "price"}, settings=settings,
        items_mapping={"category": "category_code", "brand": "brand"},
    )  # fmt: skip
    status = run_days(settings, imported_days(settings))
    assert set(status.values()) == {"loaded"} and len(status) == 6
    assert_nothing_lost(settings, log.events, {"unknown event_type": removes})
    items = curated(settings, "items", list(status))
    assert items["category"].str.startswith("apparel.").all(), "category mapped from the log"
    assert log.derived["items"].with_attributes == len(items)


def test_a_click_log_in_csv_with_iso_utc_timestamps(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    frame, removes = click_log(date(2025, 5, 5), 5, prefix="c", seed=3)
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    source = tmp_path / "2025-May.csv"
    frame.to_csv(source, index=False)
    log = import_shop_log(source, {**CLICK_MAP, "price": "price"}, settings=settings)
    status = run_days(settings, imported_days(settings))
    assert set(status.values()) == {"loaded"} and len(status) == 5
    assert_nothing_lost(settings, log.events, {"unknown event_type": removes})
    # a second export of the same shop derives only its newcomers, and nothing twice
    later, _ = click_log(date(2025, 5, 10), 2, prefix="c", seed=4)
    later = later[later["event_type"] != "remove_from_cart"]
    later["event_time"] = later["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    later.to_csv(tmp_path / "2025-May-b.csv", index=False)
    second = import_shop_log(tmp_path / "2025-May-b.csv", CLICK_MAP, settings=settings)
    status = run_days(settings, [date(2025, 5, 10), date(2025, 5, 11)])
    assert set(status.values()) == {"loaded"}
    assert second.derived["users"].rows < second.events.accepted["user_id"].nunique()
    assert not list(settings.quarantine_dir.rglob("reason.json"))


@pytest.mark.parametrize("weekday", [5])
def test_without_the_calendar_a_closed_day_is_missing(tmp_path: Path, weekday: int) -> None:
    """The same gap is an incident when the calendar does not allow it: the guard works."""
    from pipelines.validation.ingest import BatchMissing

    settings = Settings(home=tmp_path / "home")
    source = tmp_path / "orders.csv"
    order_lines(source, date(2025, 3, 3), 7, prefix="")
    import_shop_log(source, ORDER_MAP, settings=settings, event_type="purchase")
    saturday = next(date(2025, 3, 3) + timedelta(days=i) for i in range(7) if i == weekday)
    with pytest.raises(BatchMissing, match="has not delivered it"):
        ingest_table(settings, "events", saturday)


def test_an_exports_partial_last_day_is_loaded_with_its_volume_judged_by_the_floor(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "home", closed_weekdays=["sat"])
    source = tmp_path / "orders.csv"
    # ~160 lines a day: above the suite's min_band_rows, so a short full day is caught
    order_lines(source, date(2025, 3, 3), 12, prefix="", invoices=48)
    frame = pd.read_csv(source, dtype=str)
    stamps = pd.to_datetime(frame["InvoiceDate"], format="%d/%m/%Y %H:%M")
    last = stamps.dt.date.max()
    # the export was taken at 09:00 on its last day: a tenth of a day's lines
    frame[(stamps.dt.date < last) | (stamps.dt.hour < 9)].to_csv(source, index=False)
    import_shop_log(source, ORDER_MAP, settings=settings, event_type="purchase")
    status = run_days(settings, imported_days(settings))
    assert status[last] == "loaded"
    lineage = json.loads(
        (
            partitions.partition_dir(settings.curated_dir, "events", last) / "_validation.json"
        ).read_text()
    )
    assert "a partial day" in json.dumps(lineage)
    # a full day that small is still caught: the note belongs to the export's last day only
    marker = partitions.partition_dir(settings.landing_dir, "events", last) / "_partial.json"
    assert marker.exists()
    marker.unlink()
    from pipelines.validation.ingest import BatchQuarantined

    with pytest.raises(BatchQuarantined, match="row count"):
        ingest_table(settings, "events", last)
