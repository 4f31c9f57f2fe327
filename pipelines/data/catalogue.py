"""Users and items derived from an event log, for shops that export only orders or clicks.

Features (first seen, last price, category affinity) and the cold-start paths need the ``users``
and ``items`` tables, and the events suite checks that every event's user and item is known. A
shop that brings only its order log gets them derived here:

* a **user** lands on the day of their first event: ``signup_ts`` = first seen, ``country`` from
  the customer catalogue or the log when mapped (else ``ZZ``, ISO 3166's "unknown"),
  ``consent_personalization`` from the catalogue, else ``assume_consent`` (off by default:
  never personalise without a recorded consent);
* an **item** lands on the day of its first event: ``launched_ts`` = first seen, ``price`` = the
  last price it was sold or shown at (the catalogue's list price when the log has none),
  ``category`` / ``brand`` from the catalogue or the log's columns when mapped.

Ids already landed or curated (by an earlier import, a catalogue with dates, or the generator)
are not derived again: a second export of the same shop adds only the newcomers. Derived files
are named ``derived-<sha8 of the log>.parquet``, so re-importing the same log rewrites them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.importer import (
    ImportReport,
    check_targets,
    file_digest,
    has_column,
    import_file,
    landed_keys,
    remove_stale,
    write_days,
)

DERIVED_FILE_PREFIX = "derived-"
UNKNOWN_COUNTRY = "ZZ"  # ISO 3166-1 user-assigned code, commonly "unknown or unspecified"


@dataclass
class DerivedReport:
    table: str
    rows: int  # rows derived and landed
    with_attributes: int  # of which the catalogue (or the log's mapped columns) described
    partitions: list[Path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "with_attributes": self.with_attributes,
            "partitions": [str(p) for p in self.partitions],
        }


def _first_seen(events: pd.DataFrame, key: str) -> pd.DataFrame:
    ordered = events.sort_values(["event_ts", "event_id"], kind="stable")
    return ordered.groupby(key, sort=True).agg(first_ts=("event_ts", "first")).reset_index()


def derive_users(
    events: pd.DataFrame,
    *,
    known: pd.Index,
    attributes: pd.DataFrame | None = None,
    assume_consent: bool = False,
) -> pd.DataFrame:
    """One contract ``users`` row per user of ``events`` not in ``known``."""
    seen = _first_seen(events, "user_id")
    seen = seen[~seen["user_id"].isin(known)]
    users = pd.DataFrame(
        {
            "user_id": seen["user_id"].astype(object).to_numpy(),
            "signup_ts": seen["first_ts"].to_numpy(),
        }
    )
    users["signup_ts"] = pd.to_datetime(users["signup_ts"], utc=True).dt.as_unit("us")
    described = _attributes(
        attributes, "user_id", ("country", "age_band", "consent_personalization")
    )
    users = users.merge(described, on="user_id", how="left")
    country = users.get("country")
    users["country"] = (
        UNKNOWN_COUNTRY
        if country is None
        else country.where(country.str.fullmatch(contract.COUNTRY_CODE_PATTERN[1:-1]).fillna(False))
        .fillna(UNKNOWN_COUNTRY)
        .astype(object)
    )
    if "age_band" not in users:
        users["age_band"] = None
    users["age_band"] = users["age_band"].where(users["age_band"].isin(contract.AGE_BANDS), None)
    consent = users.get("consent_personalization")
    users["consent_personalization"] = (
        assume_consent
        if consent is None
        else consent.astype("boolean").fillna(assume_consent).astype(bool)
    )
    users.attrs["with_attributes"] = int(users["user_id"].isin(described["user_id"]).sum())
    return users[contract.USERS.column_names]


def derive_items(
    events: pd.DataFrame,
    *,
    known: pd.Index,
    attributes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One contract ``items`` row per item of ``events`` not in ``known``."""
    ordered = events.sort_values(["event_ts", "event_id"], kind="stable")
    seen = ordered.groupby("item_id", sort=True).agg(
        launched_ts=("event_ts", "first"), price=("price", "last")
    )
    # attribute columns the log carried for its rows (e.g. category_code on a click log): the
    # latest non-blank value per item
    for column in ("category", "brand"):
        if column in ordered.columns:
            seen[column] = ordered.groupby("item_id", sort=True)[column].last()
    seen = seen.reset_index()
    described = _attributes(attributes, "item_id", ("category", "brand", "price"))
    # catalogue items nobody bought or viewed yet exist all the same (cold-start candidates):
    # they launch with the log's first day
    unseen = described.loc[~described["item_id"].isin(seen["item_id"]), ["item_id"]]
    if len(unseen) and len(ordered):
        first_day = pd.Timestamp(ordered["event_ts"].min()).floor("D")
        seen = pd.concat(
            [seen, unseen.assign(launched_ts=first_day, price=float("nan"))], ignore_index=True
        )
    seen = seen[~seen["item_id"].isin(known)]
    items = seen.merge(described, on="item_id", how="left", suffixes=("", "_catalogue"))
    for column in ("category", "brand"):
        from_catalogue = (
            items.pop(f"{column}_catalogue") if f"{column}_catalogue" in items else None
        )
        if from_catalogue is not None:
            items[column] = from_catalogue.combine_first(items.get(column, from_catalogue))
        elif column not in items:
            items[column] = None
    if "price_catalogue" in items:
        items["price"] = items["price"].combine_first(items.pop("price_catalogue"))
    items["launched_ts"] = pd.to_datetime(items["launched_ts"], utc=True).dt.as_unit("us")
    items["price"] = items["price"].astype("float64")
    for column in ("item_id", "category", "brand"):
        items[column] = items[column].astype(object).where(items[column].notna(), None)
    items.attrs["with_attributes"] = int(items["item_id"].isin(described["item_id"]).sum())
    return items[contract.ITEMS.column_names]


def _attributes(frame: pd.DataFrame | None, key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame({key: pd.Series([], dtype=object)})
    keep = [key, *(c for c in columns if c in frame.columns and frame[c].notna().any())]
    return frame[keep].drop_duplicates(key, keep="last")


def land_derived(
    settings: Settings,
    events: pd.DataFrame,
    *,
    digest: str,
    users_attributes: pd.DataFrame | None = None,
    items_attributes: pd.DataFrame | None = None,
    assume_consent: bool = False,
) -> dict[str, DerivedReport]:
    """Derive the users and items of ``events`` that are not landed yet and land them by day."""
    file_name = f"{DERIVED_FILE_PREFIX}{digest}.parquet"
    reports = {}
    for table, derive in (("users", derive_users), ("items", derive_items)):
        spec = contract.table(table)
        known = landed_keys(settings, table, own_file_name=file_name)
        if table == "users":
            frame = derive(
                events, known=known, attributes=users_attributes, assume_consent=assume_consent
            )
        else:
            frame = derive(events, known=known, attributes=items_attributes)
        written = (
            write_days(frame, spec, settings.landing_dir, file_name, None) if len(frame) else []
        )
        remove_stale(
            settings.landing_dir,
            spec,
            file_name,
            {pd.Timestamp(d).date() for d in frame[spec.timestamp].dt.floor("D").unique()},
        )
        reports[table] = DerivedReport(
            table, len(frame), int(frame.attrs.get("with_attributes", 0)), written
        )
    return reports


# ---- a shop's log with its optional catalogues, in one call ------------------------------------


@dataclass
class LogImport:
    """What ``personalize import`` did with a log and its catalogues."""

    events: ImportReport
    catalogues: dict[str, ImportReport]  # "users"/"items" -> the catalogue file's import
    derived: dict[str, DerivedReport]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.events.to_dict(),
            "catalogues": {t: r.to_dict() for t, r in self.catalogues.items()},
            "derived": {t: r.to_dict() for t, r in self.derived.items()},
        }


def import_shop_log(
    path: Path,
    mapping: dict[str, str],
    *,
    settings: Settings,
    event_type: str | None = None,
    timezone: str | None = None,
    timestamp_format: str | None = None,
    items: Path | None = None,
    items_mapping: dict[str, str] | None = None,
    users: Path | None = None,
    users_mapping: dict[str, str] | None = None,
    derive: bool = True,
    assume_consent: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LogImport:
    """Import an events log; catalogues first (``--items``/``--users``), then derive whoever the
    catalogues did not land.

    A catalogue whose timestamp (``launched_ts``/``signup_ts``) is mapped or present lands by
    its own days; one without is a table of attributes for the derived rows. Without a
    catalogue file, ``items_mapping``/``users_mapping`` name columns of the log itself
    (``category=category_code`` on a click log, ``country=Country`` on order lines).
    """
    items_mapping = dict(items_mapping or {})
    users_mapping = dict(users_mapping or {})
    catalogues: dict[str, ImportReport] = {}
    attributes: dict[str, pd.DataFrame | None] = {"users": None, "items": None}
    for table, file, fields in (("users", users, users_mapping), ("items", items, items_mapping)):
        if file is None:
            continue
        stamp = contract.table(table).timestamp
        land = stamp in fields or has_column(Path(file), stamp)
        report = import_file(
            Path(file), table, fields, settings=settings, timezone=timezone, land=land
        )
        catalogues[table] = report
        attributes[table] = report.accepted
    carry = {}
    for table, fields in (("users", users_mapping), ("items", items_mapping)):
        if table not in catalogues:
            check_targets(fields, contract.table(table), Path(path).name)
            carry.update(fields)
    events = import_file(
        path,
        "events",
        mapping,
        settings=settings,
        event_type=event_type,
        timezone=timezone,
        timestamp_format=timestamp_format,
        carry=carry,
        progress=progress,
    )
    derived: dict[str, DerivedReport] = {}
    if derive and events.accepted is not None and len(events.accepted):
        log = events.accepted
        for table in ("users", "items"):
            if table not in catalogues:
                fields = users_mapping if table == "users" else items_mapping
                key = contract.table(table).key
                if fields:
                    attributes[table] = log[[key, *fields]]
        derived = land_derived(
            settings,
            log,
            digest=file_digest(Path(path)),
            users_attributes=attributes["users"],
            items_attributes=attributes["items"],
            assume_consent=assume_consent,
        )
    return LogImport(events, catalogues, derived)
