"""Synthetic exports that look like real shops' files, to be brought in by ``personalize import``.

:mod:`pipelines.data.generator` writes contract-shaped landing batches directly; the styles here
write what a shop would hand over instead (an order-line CSV, a click log), with the quirks of the
public datasets they are modelled on, so the importer, the calendar and the models are exercised
on data shaped like real data:

* ``gift-wholesale`` — the UCI "Online Retail" order-line export of a UK gift wholesaler
  (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country):
  order lines only; most lines re-order a SKU the customer bought before, each SKU on its own
  cycle (a multiple of the customer's order gap, with SKUs taken up and given up during the
  year), so what comes back depends on how overdue it is; customers of a kind buy
  from related product groups (what a collaborative model can learn); Zipf-like popularity;
  weekday and yearly seasonality; closed on Saturdays and Dec 24 .. Jan 3; cancellations as
  ``C``-prefixed invoices with negative quantities; lines without CustomerID; naive day-first
  London wall-clock times (``25/03/2011 14:05``); the export stops at midday on its last day.
* ``fashion-clicks`` — a REES46 / RetailRocket style click log (event_time ``... UTC``,
  event_type view/cart/purchase/remove_from_cart, product_id, category_code, brand, price,
  user_id, user_session): a long tail of one-visit users, a realistic funnel, open every day.

Every draw comes from one ``numpy`` generator seeded by ``seed`` and is vectorised, so the same
arguments give the same bytes, and the default 500k-line export takes a few seconds.
:func:`write_shop_export` also writes ``export.json``, the recipe: the ``--map`` pairs, event
type and timezone ``personalize import`` needs, and the calendar the export was drawn with.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SHOP_STYLES: tuple[str, ...] = ("gift-wholesale", "fashion-clicks")
FILE_FORMATS: tuple[str, ...] = ("csv", "parquet")
RECIPE_FILE = "export.json"

WHOLESALE_TIMEZONE = "Europe/London"
WHOLESALE_CLOSED_WEEKDAYS: tuple[int, ...] = (5,)  # Saturday, as in the UCI file
WHOLESALE_HOLIDAY = ((12, 24), (1, 3))  # closed from Dec 24 to Jan 3, both included
# The same calendar in the settings' spelling (pipelines/data/calendar.py), for personalize.toml.
WHOLESALE_CALENDAR_SETTINGS: dict[str, list[str]] = {
    "closed_weekdays": ["sat"],
    "closed_dates": ["12-24..01-03"],
}


class ShopStyleError(ValueError):
    """A bad request for a shop export (unknown style or format, impossible size)."""


@dataclass(frozen=True)
class StyleDefaults:
    customers: int
    items: int
    days: int
    start: date


DEFAULTS: dict[str, StyleDefaults] = {
    # UCI Online Retail: 541,909 lines, 4,372 customers, 4,070 SKUs, 2010-12-01 .. 2011-12-09
    "gift-wholesale": StyleDefaults(customers=4000, items=4000, days=365, start=date(2010, 12, 1)),
    # REES46 publishes one file per month from 2019-10; two months, ~500k events
    "fashion-clicks": StyleDefaults(customers=50_000, items=3000, days=61, start=date(2019, 10, 1)),
}


@dataclass(frozen=True)
class ShopExport:
    """What :func:`write_shop_export` wrote and how to import it."""

    style: str
    events: Path  # the order/event log file written
    mapping: dict[str, str]  # contract field -> source column, for `personalize import --map`
    event_type: str | None  # constant event type (order lines: "purchase"), else None
    timezone: str | None  # zone of naive timestamps; None when there are none (epoch, "UTC")
    items: Path | None  # optional catalogue file
    items_mapping: dict[str, str]  # --items-map pairs (of the catalogue, else of the log)
    closed_weekdays: tuple[int, ...]  # 0=Mon .. 6=Sun
    closed_dates: tuple[date, ...]  # holiday dates inside the span (closed whatever the weekday)
    first_day: date
    last_day: date
    rows: int  # rows of the events file
    file_format: str = "csv"
    seed: int = 42
    customers: int = 0
    item_count: int = 0
    planted: dict[str, int] = field(default_factory=dict)  # rows the importer must reject, by why
    # strftime format of text timestamps (None: epoch numbers). Day-first text is ambiguous in a
    # file whose days are all <= 12; the importer can only guess it from the values.
    timestamp_format: str | None = None

    def import_args(self) -> list[str]:
        """Arguments of ``personalize import`` for this export (after the command name)."""
        args = [str(self.events), "--table", "events"]
        for target, source in self.mapping.items():
            args += ["--map", f"{target}={source}"]
        if self.event_type is not None:
            args += ["--event-type", self.event_type]
        if self.timezone is not None:
            args += ["--timezone", self.timezone]
        if self.timestamp_format is not None:
            args += ["--timestamp-format", self.timestamp_format]
        if self.items is not None:
            args += ["--items", str(self.items)]
        for target, source in self.items_mapping.items():
            args += ["--items-map", f"{target}={source}"]
        return args

    def import_command(self, home: Path | None = None) -> str:
        """The shell command to run next, quoted for copy and paste."""
        prefix = ["personalize"] + (["--home", str(home)] if home is not None else [])
        # the shop's calendar travels as settings: its closed days then load as closed
        calendar = self.to_dict().get("calendar_settings", {})
        env = [f"PERSONALIZE_{k.upper()}={shlex.quote(json.dumps(v))}" for k, v in calendar.items()]
        return " ".join([*env, shlex.join([*prefix, "import", *self.import_args()])])

    def is_open(self, day: date) -> bool:
        return day.weekday() not in self.closed_weekdays and day not in self.closed_dates

    def to_dict(self) -> dict[str, Any]:
        """The recipe as written to ``export.json``: file paths relative to the export's folder,
        so the folder can be moved and the same seed gives the same bytes."""
        calendar = WHOLESALE_CALENDAR_SETTINGS if self.style == "gift-wholesale" else {}
        return {
            "style": self.style,
            "events": self.events.name,
            "mapping": dict(self.mapping),
            "event_type": self.event_type,
            "timezone": self.timezone,
            "items": self.items.name if self.items is not None else None,
            "items_mapping": dict(self.items_mapping),
            "closed_weekdays": list(self.closed_weekdays),
            "closed_dates": [d.isoformat() for d in self.closed_dates],
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "rows": self.rows,
            "file_format": self.file_format,
            "seed": self.seed,
            "customers": self.customers,
            "item_count": self.item_count,
            "planted": dict(self.planted),
            "timestamp_format": self.timestamp_format,
            "calendar_settings": calendar,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> ShopExport:
        return cls(
            style=data["style"],
            events=Path(folder) / data["events"],
            mapping=dict(data["mapping"]),
            event_type=data["event_type"],
            timezone=data["timezone"],
            items=Path(folder) / data["items"] if data["items"] else None,
            items_mapping=dict(data["items_mapping"]),
            closed_weekdays=tuple(data["closed_weekdays"]),
            closed_dates=tuple(date.fromisoformat(d) for d in data["closed_dates"]),
            first_day=date.fromisoformat(data["first_day"]),
            last_day=date.fromisoformat(data["last_day"]),
            rows=int(data["rows"]),
            file_format=data["file_format"],
            seed=int(data["seed"]),
            customers=int(data["customers"]),
            item_count=int(data["item_count"]),
            planted={k: int(v) for k, v in data["planted"].items()},
            timestamp_format=data.get("timestamp_format"),
        )


def read_shop_export(folder: Path) -> ShopExport:
    """The recipe a previous :func:`write_shop_export` left in ``folder``."""
    folder = Path(folder)
    return ShopExport.from_dict(json.loads((folder / RECIPE_FILE).read_text()), folder)


def write_shop_export(
    style: str,
    out_dir: Path,
    *,
    customers: int | None = None,
    items: int | None = None,
    days: int | None = None,
    seed: int = 42,
    start: date | None = None,
    file_format: str = "csv",
    scale: float = 1.0,
) -> ShopExport:
    """Write a ``style`` export (plus ``export.json``) into ``out_dir``; return its recipe.

    Sizes default to :data:`DEFAULTS` (``scale`` multiplies the default customers and items, not
    the days: the calendar stays a year). ``file_format="parquet"`` writes timestamps as epoch
    milliseconds (int64) instead of text, the other importer route.
    """
    if style not in SHOP_STYLES:
        raise ShopStyleError(f"unknown shop style {style!r}; expected one of {SHOP_STYLES}")
    if file_format not in FILE_FORMATS:
        raise ShopStyleError(f"unknown format {file_format!r}; expected one of {FILE_FORMATS}")
    if not scale > 0:
        raise ShopStyleError(f"scale {scale!r} must be positive")
    base = DEFAULTS[style]
    n_customers = customers if customers is not None else max(10, round(base.customers * scale))
    n_items = items if items is not None else max(20, round(base.items * scale))
    n_days = days if days is not None else base.days
    for name, value, least in (("customers", n_customers, 2), ("items", n_items, 10),
                               ("days", n_days, 1)):  # fmt: skip
        if value < least:
            raise ShopStyleError(f"{name}={value}: need at least {least}")
    first = start if start is not None else base.start
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer: Callable[..., ShopExport] = (
        _write_gift_wholesale if style == "gift-wholesale" else _write_fashion_clicks
    )
    export = writer(
        out_dir,
        customers=n_customers,
        n_items=n_items,
        days=n_days,
        first=first,
        rng=np.random.default_rng(seed),
        file_format=file_format,
        seed=seed,
    )
    (out_dir / RECIPE_FILE).write_text(json.dumps(export.to_dict(), indent=2) + "\n")
    return export


# ---- shared helpers -----------------------------------------------------------------------------


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Popularity ~ 1/rank**exponent, ranks shuffled so that popularity is not the id order."""
    ranks = rng.permutation(n) + 1
    weights = 1.0 / ranks.astype("float64") ** exponent
    return weights / weights.sum()


def _sample_rows(rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per entry of ``rows`` from the distribution ``cdf[row]`` (a K x N matrix of
    cumulative probabilities), looping over the K distinct rows only."""
    out = np.empty(len(rows), dtype=np.int64)
    for k in np.unique(rows):
        where = np.flatnonzero(rows == k)
        out[where] = np.searchsorted(cdf[k], rng.random(len(where)) * cdf[k, -1], side="right")
    return np.minimum(out, cdf.shape[1] - 1)


def _pick(rng: np.random.Generator, words: list[str], n: int) -> np.ndarray:
    return np.asarray(words, dtype=object)[rng.integers(0, len(words), n)]


def _write_frame(frame: pd.DataFrame, path: Path, file_format: str) -> None:
    if file_format == "csv":
        frame.to_csv(path, index=False, lineterminator="\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path)


def _stamp_strings(day_text: np.ndarray, day: np.ndarray, clock: np.ndarray,
                   clock_text: np.ndarray) -> np.ndarray:  # fmt: skip
    """Timestamps as text built from a few hundred day strings and the clock strings of the
    day: one string concatenation per row instead of one ``strftime`` call per row."""
    return np.char.add(day_text[day], clock_text[clock]).astype(object)


# ---- gift-wholesale ---------------------------------------------------------------------------

# Product groups of a UK gift wholesaler, with the nouns of their descriptions.
GIFT_GROUPS: dict[str, list[str]] = {
    "HOME DECOR": ["HANGING HEART T-LIGHT HOLDER", "METAL LANTERN", "PHOTO FRAME", "WALL CLOCK",
                   "DOORSTOP", "CUSHION COVER", "MIRROR"],
    "KITCHEN": ["TEA TOWEL", "CAKE STAND", "MUG", "JAM JAR", "BAKING SET", "STORAGE TIN",
                "APRON", "TEACUP AND SAUCER"],
    "CHRISTMAS": ["CHRISTMAS BAUBLE", "ADVENT CALENDAR", "TREE DECORATION", "CHRISTMAS CRACKER",
                  "STAR GARLAND"],
    "PARTY": ["PAPER BUNTING", "PARTY BAG", "BALLOONS", "PAPER PLATES", "PARTY CANDLES",
              "CAKE CASES"],
    "BAGS": ["JUMBO BAG", "LUNCH BAG", "SHOPPER BAG", "TOTE BAG", "CHARLOTTE BAG"],
    "STATIONERY": ["NOTEBOOK", "WRAPPING PAPER", "GIFT TAGS", "PENCILS", "GREETING CARD",
                   "STICKER SHEET"],
    "CANDLES": ["SCENTED CANDLE", "TEA LIGHTS", "CANDLE POT", "PILLAR CANDLE", "VOTIVE HOLDER"],
    "GARDEN": ["PLANT POT", "BIRD FEEDER", "WATERING CAN", "GARDEN MARKER", "WIND CHIME"],
    "TOYS": ["SPACEBOY BOX", "SKIPPING ROPE", "JIGSAW", "DOLLY GIRL SET", "TOY TIDY"],
    "JEWELLERY": ["BEADED NECKLACE", "HAIR CLIP", "BRACELET", "EARRINGS", "TRINKET BOX"],
    "SIGNS": ["METAL SIGN", "ENAMEL SIGN", "WOODEN SIGN", "DOOR HANGER"],
    "LUNCH BOXES": ["LUNCH BOX", "SNACK BOX", "BOTTLE", "PICNIC SET"],
}  # fmt: skip
GIFT_COLOURS = ["WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "BLACK", "SILVER", "GOLD",
                "CREAM", "PURPLE", "PASTEL"]  # fmt: skip
GIFT_MOTIFS = ["RETROSPOT", "VINTAGE", "REGENCY", "PAISLEY", "POLKADOT", "SPACEBOY", "DOILY",
               "HEART", "BIRD", "FLORAL", "ROSE", "WOODLAND", "SKULL", "STRIPE",
               "GINGHAM"]  # fmt: skip
GIFT_COUNTRIES = ["Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium", "Switzerland",
                  "Portugal", "Australia", "Norway", "Italy", "Channel Islands", "Finland",
                  "Cyprus", "Sweden", "Austria", "Denmark", "Japan", "Poland"]  # fmt: skip
UK = "United Kingdom"
WHOLESALE_TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M"  # 25/03/2011 14:05, London wall clock

LINES_PER_CUSTOMER_YEAR = 125.0  # 500k lines / 4k customers
GUEST_LINE_SHARE = 0.12  # lines without CustomerID (UCI: ~25%; the brief: 5-20%)
CANCEL_LINE_SHARE = 0.02
REPERTOIRE_LINES = 15.0  # expected re-ordered lines per invoice
EXPLORE_LINES = 2.0  # expected new-to-the-customer lines per invoice
# Re-order cycles. A shop re-orders a SKU when it has sold through: every order for a
# bestseller, every third for a slow line. A SKU's cycle is a multiple of the customer's own
# order gap (lognormal per SKU, varied per customer), at least a week; the gaps between
# re-orders are gamma-distributed around it (shape 5: a coefficient of variation of 0.45), and a
# re-order due on a day goes on the customer's next invoice. During the year some SKUs are taken
# up and some given up. So what comes back next depends on how long ago a SKU was last ordered
# against its own cycle, not on the lifetime count alone -- as in real wholesale logs.
CYCLE_ORDERS_MEDIAN = 1.8  # a SKU's median cycle, in the customer's own order gaps
_CYCLE_ORDERS_SPREAD = 0.6  # lognormal sigma of SKU cycles
_CYCLE_PAIR_SPREAD = 0.25  # lognormal sigma of a customer's own cycle for a SKU
_CYCLE_MIN_DAYS = 7.0
_CYCLE_SHAPE = 5.0  # gamma shape of the gaps between re-orders
_ADOPTED_SHARE, _DROPPED_SHARE = 0.2, 0.2  # repertoire SKUs taken up / given up in the span
_REPERTOIRE_WIDTH = 160  # SKUs drawn per customer before the repertoire is cut to size
_REORDERS_LOST = 1.35  # re-orders due twice before the next invoice count once (measured)
_GUEST_DRAWS_PER_LINE = 1.15  # draws per distinct line of a guest order (measured)
FIRST_INVOICE = 536365  # the UCI file's first invoice number
_OPEN_HOUR, _CLOSE_HOUR, _CUTOFF_HOUR = 7, 20, 12  # local wall clock; last day ends at midday
# Share of a day's invoices per local hour 07..19 (UCI peaks at lunchtime).
_HOUR_WEIGHTS = np.array([1, 4, 8, 11, 13, 15, 13, 11, 8, 6, 4, 2, 1], dtype="float64")
_WEEKDAY_FACTOR = np.array([1.0, 1.1, 1.05, 1.25, 0.85, 0.0, 0.6])  # Mon..Sun; closed Saturday
# Per month: a slow spring, then the autumn gift season peaking in November.
_MONTH_FACTOR = np.array([0.7, 0.65, 0.85, 0.75, 0.9, 0.85, 0.85, 0.85, 1.2, 1.35, 1.6, 1.0])


def wholesale_holiday(day: date) -> bool:
    """Is ``day`` inside the wholesaler's Christmas closure (Dec 24 .. Jan 3)?"""
    (m1, d1), (m2, d2) = WHOLESALE_HOLIDAY
    return (day.month, day.day) >= (m1, d1) or (day.month, day.day) <= (m2, d2)


def wholesale_closed(day: date) -> bool:
    """Is the wholesaler closed on ``day`` (local calendar)?"""
    return day.weekday() in WHOLESALE_CLOSED_WEEKDAYS or wholesale_holiday(day)


def _wholesale_items(rng: np.random.Generator, n: int) -> pd.DataFrame:
    names = list(GIFT_GROUPS)
    group = rng.integers(0, len(names), n)
    nouns = np.empty(n, dtype=object)
    for g, name in enumerate(names):
        where = group == g
        nouns[where] = _pick(rng, GIFT_GROUPS[name], int(where.sum()))
    description = _pick(rng, GIFT_COLOURS, n) + " " + _pick(rng, GIFT_MOTIFS, n) + " " + nouns
    # 5-digit codes, some with a variant letter (85123A): unique because the numbers are
    numbers = rng.choice(np.arange(10002, 90000), size=n, replace=False)
    letters = np.where(rng.random(n) < 0.15, _pick(rng, list("ABCDEFGL"), n), "")
    codes = numbers.astype(str).astype(object) + letters
    group_price = rng.lognormal(np.log(2.5), 0.5, len(names))
    price = np.round(np.maximum(group_price[group] * rng.lognormal(0.0, 0.6, n), 0.06), 2)
    pack = rng.choice([1, 2, 3, 4, 6, 12, 24], size=n, p=[0.3, 0.1, 0.05, 0.1, 0.2, 0.2, 0.05])
    return pd.DataFrame(
        {
            "StockCode": codes,
            "Description": description,
            "Category": np.asarray(names, dtype=object)[group],
            "group": group,
            "price": price,
            "pack": pack,
            "popularity": _zipf_weights(rng, n, 1.0),
        }
    )


def _wholesale_days(rng: np.random.Generator, first: date, days: int) -> tuple[
    list[date], np.ndarray
]:  # fmt: skip
    """The span's dates and each day's share of invoices (0 on closed days)."""
    dates = [first + timedelta(days=d) for d in range(days)]
    weekday = np.array([d.weekday() for d in dates])
    month = np.array([d.month for d in dates])
    weight = _WEEKDAY_FACTOR[weekday] * _MONTH_FACTOR[month - 1]
    weight *= rng.lognormal(0.0, 0.15, days)  # busy and quiet days
    weight[np.array([wholesale_closed(d) for d in dates])] = 0.0
    # the export stops at midday: the last day has only its morning
    morning = _HOUR_WEIGHTS[: _CUTOFF_HOUR - _OPEN_HOUR].sum() / _HOUR_WEIGHTS.sum()
    weight[-1] *= morning
    if weight.sum() == 0:
        raise ShopStyleError(f"{first} + {days} days: the wholesaler is closed on every day")
    return dates, weight / weight.sum()


def _invoice_clock(rng: np.random.Generator, n: int, last_day: np.ndarray) -> np.ndarray:
    """Minute of the local day of each invoice; before the cutoff on the export's last day."""
    full = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
    morning = (
        _HOUR_WEIGHTS[: _CUTOFF_HOUR - _OPEN_HOUR]
        / _HOUR_WEIGHTS[: _CUTOFF_HOUR - _OPEN_HOUR].sum()
    )
    hour = rng.choice(len(full), size=n, p=full)
    hour[last_day] = rng.choice(len(morning), size=int(last_day.sum()), p=morning)
    return (_OPEN_HOUR + hour) * 60 + rng.integers(0, 60, n)


def _reorders(
    rng: np.random.Generator,
    owner: np.ndarray,
    invoice_time: np.ndarray,
    invoices: np.ndarray,
    kind: np.ndarray,
    item_cdf: np.ndarray,
    days: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The re-order lines of the customers' invoices: ``(invoice index, item)`` arrays.

    ``owner`` and ``invoice_time`` (days since the start, fractional) list the customer
    invoices sorted by customer, then time; ``invoices`` counts them per customer. Each
    customer's repertoire is drawn from their kind's taste and cut to the size that gives
    about ``REPERTOIRE_LINES`` re-orders per invoice; every (customer, SKU) pair then re-orders
    on its own cycle (see ``CYCLE_ORDERS_MEDIAN``), each due re-order landing on the
    customer's next invoice.
    """
    customers, n_items = len(invoices), item_cdf.shape[1]
    width = _REPERTOIRE_WIDTH
    slots = np.empty((customers, width), dtype=np.int64)
    for k in np.unique(kind):
        members = np.flatnonzero(kind == k)
        draws = rng.random((len(members), width)) * item_cdf[k, -1]
        slots[members] = np.minimum(np.searchsorted(item_cdf[k], draws), n_items - 1)
    # a SKU drawn twice into one repertoire is kept once (its later copies are dropped)
    sorted_slots = np.sort(slots, axis=1)
    first_copy = np.ones_like(sorted_slots, dtype=bool)
    first_copy[:, 1:] = sorted_slots[:, 1:] != sorted_slots[:, :-1]
    slots = sorted_slots
    # cycles: a SKU's multiple of the customer's order gap, varied per customer, >= a week
    item_orders = np.exp(rng.normal(np.log(CYCLE_ORDERS_MEDIAN), _CYCLE_ORDERS_SPREAD, n_items))
    order_gap = days / np.maximum(invoices, 1)
    cycle = (
        order_gap[:, None]
        * item_orders[slots]
        * np.exp(rng.normal(0.0, _CYCLE_PAIR_SPREAD, slots.shape))
    )
    cycle = np.maximum(cycle, _CYCLE_MIN_DAYS)
    # the span each SKU is in the repertoire: the whole period, taken up or given up midway
    fate = rng.random(slots.shape)
    cut = rng.random(slots.shape) * days
    adopted = fate < _ADOPTED_SHARE
    dropped = (fate >= _ADOPTED_SHARE) & (fate < _ADOPTED_SHARE + _DROPPED_SHARE)
    begin = np.where(adopted, cut, 0.0)
    stop = np.where(dropped, cut, float(days))
    # cut each repertoire to size: expected re-orders of a SKU ~ its span's share of the
    # customer's invoices, over its cycle in order gaps (at most one per invoice)
    expected = (
        (stop - begin) / days * invoices[:, None] * np.minimum(1.0, order_gap[:, None] / cycle)
    )
    expected = np.where(first_copy, expected, 0.0)
    wanted = REPERTOIRE_LINES * _REORDERS_LOST * invoices[:, None]
    keep = np.cumsum(expected, axis=1) <= wanted
    keep[:, 0] = True
    keep &= first_copy & (invoices[:, None] > 0)
    pair_customer = np.broadcast_to(np.arange(customers)[:, None], slots.shape)[keep]
    pair_item, pair_cycle = slots[keep], cycle[keep]
    pair_begin, pair_stop = begin[keep], stop[keep]
    # the first re-order: on taking a SKU up, else at a random phase of its cycle
    first_due = np.where(adopted[keep], pair_begin, rng.random(len(pair_cycle)) * pair_cycle)
    steps = np.ceil((pair_stop - first_due) / pair_cycle * 1.6 + 3).astype(np.int64)
    steps = np.maximum(steps, 1)
    pair = np.repeat(np.arange(len(pair_cycle)), steps)
    gaps = rng.gamma(_CYCLE_SHAPE, pair_cycle[pair] / _CYCLE_SHAPE)
    starts = np.concatenate([[0], np.cumsum(steps)[:-1]])
    gaps[starts] = first_due
    due = np.cumsum(gaps)
    due -= np.repeat(due[starts] - first_due, steps)
    alive = due < pair_stop[pair]
    pair, due = pair[alive], due[alive]
    # the customer's first invoice at or after the due time
    span = float(days + 2)
    invoice_key = owner * span + invoice_time
    who = pair_customer[pair]
    position = np.searchsorted(invoice_key, who * span + due, side="left")
    found = position < len(owner)
    found[found] = owner[position[found]] == who[found]
    return [position[found]], [pair_item[pair[found]]]


def _write_gift_wholesale(
    out_dir: Path,
    *,
    customers: int,
    n_items: int,
    days: int,
    first: date,
    rng: np.random.Generator,
    file_format: str,
    seed: int,
) -> ShopExport:
    catalogue = _wholesale_items(rng, n_items)
    n_groups = len(GIFT_GROUPS)
    dates, day_weight = _wholesale_days(rng, first, days)

    # Kinds of customer (gift shops, party shops, garden centres...): each buys mostly from a
    # few product groups. This shared taste is the collaborative signal.
    kinds = int(np.clip(customers // 40, 3, 12))
    affinity = rng.dirichlet(np.full(n_groups, 0.25), size=kinds)  # kinds x groups
    group = catalogue["group"].to_numpy()
    pop = catalogue["popularity"].to_numpy()
    pop_in_group = pop / np.bincount(group, weights=pop, minlength=n_groups)[group]
    item_dist = 0.9 * affinity[:, group] * pop_in_group + 0.1 * pop  # kinds x items
    item_cdf = np.cumsum(item_dist, axis=1)

    # Customers: a kind, a heavy-tailed order rate (a few big accounts, many small shops).
    kind = rng.integers(0, kinds, customers)
    rate = rng.lognormal(0.0, 1.0, customers)
    ids = 12346 + np.sort(rng.choice(max(6000, 2 * customers), size=customers, replace=False))
    country = np.where(rng.random(customers) < 0.9, UK, _pick(rng, GIFT_COUNTRIES, customers))

    target = LINES_PER_CUSTOMER_YEAR * customers * days / 365.0
    customer_lines = target * (1 - GUEST_LINE_SHARE - CANCEL_LINE_SHARE)
    per_invoice = REPERTOIRE_LINES + EXPLORE_LINES
    expected = rate / rate.sum() * customer_lines / per_invoice  # invoices per customer
    invoices = rng.poisson(expected)
    owner = np.repeat(np.arange(customers), invoices)  # one entry per customer invoice
    # each customer's invoices on open days, in time order
    owner_day = rng.choice(days, size=len(owner), p=day_weight)
    owner_clock = _invoice_clock(rng, len(owner), owner_day == days - 1)
    order = np.lexsort((owner_clock, owner_day, owner))
    owner_day, owner_clock = owner_day[order], owner_clock[order]
    line_invoice, line_item = _reorders(
        rng, owner, owner_day + owner_clock / 1440.0, invoices, kind, item_cdf, days
    )
    explore = rng.poisson(EXPLORE_LINES, len(owner))
    explore_invoice = np.repeat(np.arange(len(owner)), explore)
    line_invoice.append(explore_invoice)
    line_item.append(_sample_rows(rng, item_cdf, kind[owner[explore_invoice]]))
    inv_of_line = np.concatenate(line_invoice)
    item_of_line = np.concatenate(line_item)

    # Guests (no CustomerID): orders of a random kind, all items new to them.
    guest_invoices = int(rng.poisson(target * GUEST_LINE_SHARE / per_invoice))
    guest_kind = rng.integers(0, kinds, guest_invoices)
    # drawn a little larger: a popular SKU drawn twice into one order is kept once
    guest_size = 1 + rng.poisson(per_invoice * _GUEST_DRAWS_PER_LINE - 1, guest_invoices)
    guest_invoice_of_line = np.repeat(np.arange(guest_invoices), guest_size)
    guest_items = _sample_rows(rng, item_cdf, guest_kind[guest_invoice_of_line])

    n_customer_invoices = len(owner)
    n_invoices = n_customer_invoices + guest_invoices
    invoice_owner = np.concatenate([owner, np.full(guest_invoices, -1)])
    guest_day = rng.choice(days, size=guest_invoices, p=day_weight)
    guest_clock = _invoice_clock(rng, guest_invoices, guest_day == days - 1)
    invoice_day = np.concatenate([owner_day, guest_day])
    invoice_clock = np.concatenate([owner_clock, guest_clock])

    lines = pd.DataFrame(
        {
            "invoice": np.concatenate([inv_of_line, n_customer_invoices + guest_invoice_of_line]),
            "item": np.concatenate([item_of_line, guest_items]),
        }
    )
    # a SKU appears once per invoice (the Bernoulli repertoire and the new items may collide)
    lines = lines.drop_duplicates(["invoice", "item"], keep="first").reset_index(drop=True)
    invoice_of = lines["invoice"].to_numpy()
    item_of = lines["item"].to_numpy()
    pack = catalogue["pack"].to_numpy()[item_of]
    quantity = pack * (1 + rng.geometric(0.55, len(lines)) - 1)

    # Cancellations: some customer orders have a few lines taken back, as one C-invoice later
    # the same day or on a later open day, with the quantities negated.
    is_customer_line = invoice_owner[invoice_of] >= 0
    cancel_p = CANCEL_LINE_SHARE / (1 - GUEST_LINE_SHARE)  # of all lines, from customer lines
    cancel_lines = np.flatnonzero(is_customer_line & (rng.random(len(lines)) < cancel_p))
    cancelled_invoice, cancel_invoice_index = np.unique(
        invoice_of[cancel_lines], return_inverse=True
    )
    open_days = np.flatnonzero(day_weight > 0)
    position = np.searchsorted(open_days, invoice_day[cancelled_invoice])
    later = np.where(
        rng.random(len(cancelled_invoice)) < 0.5, 0, rng.geometric(0.3, len(cancelled_invoice))
    )
    cancel_day = open_days[np.minimum(position + later, len(open_days) - 1)]
    cancel_clock = _invoice_clock(rng, len(cancelled_invoice), cancel_day == days - 1)
    same_day = cancel_day == invoice_day[cancelled_invoice]
    close = np.where(cancel_day == days - 1, _CUTOFF_HOUR * 60 - 1, _CLOSE_HOUR * 60 - 1)
    soon = invoice_clock[cancelled_invoice] + rng.integers(10, 180, len(cancelled_invoice))
    cancel_clock = np.where(same_day, np.minimum(soon, close), cancel_clock)

    all_day = np.concatenate([invoice_day, cancel_day])
    all_clock = np.concatenate([invoice_clock, cancel_clock])
    is_cancel = np.concatenate([np.zeros(n_invoices, bool), np.ones(len(cancelled_invoice), bool)])
    # invoice numbers run in time order through orders and cancellations alike, as in UCI
    order = np.lexsort((rng.random(len(all_day)), all_clock, all_day))
    number = np.empty(len(order), dtype=np.int64)
    number[order] = FIRST_INVOICE + np.arange(len(order))
    invoice_no = number.astype(str).astype(object)
    invoice_no[is_cancel] = "C" + invoice_no[is_cancel]

    line_invoice_all = np.concatenate([invoice_of, n_invoices + cancel_invoice_index])
    line_item_all = np.concatenate([item_of, item_of[cancel_lines]])
    line_quantity = np.concatenate([quantity, -quantity[cancel_lines]])
    line_owner_all = np.concatenate(
        [invoice_owner[invoice_of], invoice_owner[invoice_of[cancel_lines]]]
    )
    # lines sorted like the export: by invoice time, then invoice, then line order
    sort = np.lexsort((np.arange(len(line_invoice_all)), number[line_invoice_all]))
    inv = line_invoice_all[sort]
    item = line_item_all[sort]
    who = line_owner_all[sort]
    guest = who < 0

    customer_id = np.where(guest, "", (ids[np.maximum(who, 0)]).astype(str).astype(object) + ".0")
    frame = pd.DataFrame(
        {
            "InvoiceNo": invoice_no[inv],
            "StockCode": catalogue["StockCode"].to_numpy()[item],
            "Description": catalogue["Description"].to_numpy()[item],
            "Quantity": line_quantity[sort].astype(np.int64),
            "InvoiceDate": None,
            "UnitPrice": catalogue["price"].to_numpy()[item],
            "CustomerID": customer_id,
            "Country": np.where(guest, UK, country[np.maximum(who, 0)]),
        }
    )
    day_of_line, clock_of_line = all_day[inv], all_clock[inv]
    timezone: str | None = WHOLESALE_TIMEZONE
    if file_format == "csv":
        day_text = np.array([d.strftime(WHOLESALE_TIMESTAMP_FORMAT[:9]) for d in dates])
        clock_text = np.array([f"{m // 60:02d}:{m % 60:02d}" for m in range(24 * 60)])
        frame["InvoiceDate"] = _stamp_strings(day_text, day_of_line, clock_of_line, clock_text)
    else:
        # parquet: absolute instants (epoch ms); London wall clock -> UTC, so no zone is needed
        wall = pd.Timestamp(first) + pd.to_timedelta(day_of_line * 1440 + clock_of_line, unit="m")
        local = pd.DatetimeIndex(wall).tz_localize(
            WHOLESALE_TIMEZONE, nonexistent="shift_forward", ambiguous=np.zeros(len(wall), bool)
        )
        frame["InvoiceDate"] = local.as_unit("ms").asi8
        frame["CustomerID"] = np.where(guest, np.nan, ids[np.maximum(who, 0)].astype("float64"))
        timezone = None

    suffix = "csv" if file_format == "csv" else "parquet"
    events_path = out_dir / f"gift-wholesale.{suffix}"
    items_path = out_dir / "gift-wholesale-items.csv"
    _write_frame(frame, events_path, file_format)
    catalogue[["StockCode", "Description", "Category"]].to_csv(
        items_path, index=False, lineterminator="\n"
    )

    last = dates[-1]
    closed_dates = tuple(d for d in dates if wholesale_holiday(d))
    n_guest = int(guest.sum())
    n_cancel = int((line_quantity[sort] < 0)[~guest].sum())
    return ShopExport(
        style="gift-wholesale",
        events=events_path,
        mapping={
            "user_id": "CustomerID",
            "item_id": "StockCode",
            "event_ts": "InvoiceDate",
            "session_id": "InvoiceNo",
            "price": "UnitPrice",
            "quantity": "Quantity",
        },
        event_type="purchase",
        timezone=timezone,
        items=items_path,
        items_mapping={"item_id": "StockCode", "category": "Category"},
        closed_weekdays=WHOLESALE_CLOSED_WEEKDAYS,
        closed_dates=closed_dates,
        first_day=first,
        last_day=last,
        rows=len(frame),
        file_format=file_format,
        seed=seed,
        customers=customers,
        item_count=n_items,
        planted={
            "missing user_id": n_guest,
            "negative quantity (cancellation/return)": n_cancel,
        },
        timestamp_format=WHOLESALE_TIMESTAMP_FORMAT if file_format == "csv" else None,
    )


# ---- fashion-clicks ---------------------------------------------------------------------------

FASHION_CATEGORIES: tuple[str, ...] = (
    "apparel.shoes", "apparel.shoes.sneakers", "apparel.shoes.boots", "apparel.shirt",
    "apparel.tshirt", "apparel.trousers", "apparel.jeans", "apparel.dress", "apparel.skirt",
    "apparel.jacket", "apparel.sweater", "apparel.underwear", "accessories.bag",
    "accessories.wallet", "accessories.belt", "accessories.umbrella",
)  # fmt: skip
FASHION_BRANDS: tuple[str, ...] = (
    "nordwind", "lumea", "kessler", "vantor", "brisa", "milora", "quadro", "okoro", "tessa",
    "raven", "alba", "fjell", "sorella", "marlo", "zenit", "pavo", "corvo", "linnea",
)  # fmt: skip
# REES46 (electronics, Oct 2019): ~2.3% of views become carts, ~1.8% purchases.
CART_RATE = 0.05  # per view
PURCHASE_RATE = 0.5  # per cart
REMOVE_RATE = 0.3  # per cart not bought: the planted unknown event type
CLICKS_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
ONE_VISIT_SHARE = 0.72  # users seen in one session only
_CLICK_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 7, 7, 7, 7, 8, 9, 10, 11, 11, 9, 6, 4], dtype="float64"
)


def _write_fashion_clicks(
    out_dir: Path,
    *,
    customers: int,
    n_items: int,
    days: int,
    first: date,
    rng: np.random.Generator,
    file_format: str,
    seed: int,
) -> ShopExport:
    n_cat = len(FASHION_CATEGORIES)
    item_cat = rng.integers(0, n_cat, n_items)
    pop = _zipf_weights(rng, n_items, 1.1)
    cat_price = rng.lognormal(np.log(40.0), 0.5, n_cat)
    item_price = np.round(cat_price[item_cat] * rng.lognormal(0.0, 0.5, n_items), 2)
    product_id = 1_000_000 + np.sort(rng.choice(9_000_000, size=n_items, replace=False))
    category_id = 2_053_013_552_000_000_000 + rng.choice(10**9, size=n_cat, replace=False)
    cat_code = np.asarray(FASHION_CATEGORIES, dtype=object)[item_cat]
    cat_code[rng.random(n_items) < 0.08] = None  # REES46 leaves category_code blank often
    brand = _pick(rng, list(FASHION_BRANDS), n_items)
    brand[rng.random(n_items) < 0.1] = None
    # per category, popularity-weighted; a user browses mostly their favourite category
    in_cat = np.where(item_cat[None, :] == np.arange(n_cat)[:, None], pop[None, :], 0.0)
    cat_cdf = np.cumsum(np.vstack([in_cat, pop[None, :]]), axis=1)  # last row: everything

    user_ids = 500_000_000 + np.sort(rng.choice(100_000_000, size=customers, replace=False))
    favourite = rng.choice(n_cat, size=customers, p=rng.dirichlet(np.full(n_cat, 2.0)))
    sessions = np.where(
        rng.random(customers) < ONE_VISIT_SHARE, 1, 1 + rng.geometric(0.35, customers)
    )
    s_user = np.repeat(np.arange(customers), sessions)
    n_sessions = len(s_user)
    hour = rng.choice(24, size=n_sessions, p=_CLICK_HOUR_WEIGHTS / _CLICK_HOUR_WEIGHTS.sum())
    start_s = (rng.integers(0, days, n_sessions) * 86400 + hour * 3600
               + rng.integers(0, 3600, n_sessions))  # fmt: skip
    views = rng.geometric(0.22, n_sessions)  # ~4.5 views a session
    v_session = np.repeat(np.arange(n_sessions), views)
    n_views = len(v_session)
    browse = np.where(rng.random(n_views) < 0.75, favourite[s_user[v_session]], n_cat)
    v_item = _sample_rows(rng, cat_cdf, browse)
    first_of_session = np.r_[0, np.cumsum(views)[:-1]]
    gaps = rng.exponential(45.0, n_views)
    gaps[first_of_session] = 0.0
    cumulative = np.cumsum(gaps)
    v_time = start_s[v_session] + (cumulative - cumulative[first_of_session][v_session])

    carted = np.flatnonzero(rng.random(n_views) < CART_RATE)
    c_time = v_time[carted] + rng.exponential(20.0, len(carted)) + 1
    bought = rng.random(len(carted)) < PURCHASE_RATE
    removed = ~bought & (rng.random(len(carted)) < REMOVE_RATE)
    p_time = c_time[bought] + rng.exponential(180.0, int(bought.sum())) + 1
    r_time = c_time[removed] + rng.exponential(60.0, int(removed.sum())) + 1

    names = np.array(["view", "cart", "purchase", "remove_from_cart"], dtype=object)
    source = np.concatenate([np.arange(n_views), carted, carted[bought], carted[removed]])
    kind = np.concatenate(
        [
            np.zeros(n_views, int),
            np.ones(len(carted), int),
            np.full(int(bought.sum()), 2),
            np.full(int(removed.sum()), 3),
        ]
    )
    seconds = np.floor(np.concatenate([v_time, c_time, p_time, r_time])).astype(np.int64)
    keep = seconds < days * 86400  # a session running past the end of the export is cut
    source, kind, seconds = source[keep], kind[keep], seconds[keep]
    order = np.lexsort((kind, source, seconds))
    source, kind, seconds = source[order], kind[order], seconds[order]
    session = v_session[source]
    item = v_item[source]

    # session ids are UUIDs (random, but drawn from the seeded generator)
    raw = rng.integers(0, 256, size=(n_sessions, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexes = pd.Series(np.array([raw.tobytes().hex()]).view("<U32"))
    uuids = (hexes.str[0:8] + "-" + hexes.str[8:12] + "-" + hexes.str[12:16] + "-"
             + hexes.str[16:20] + "-" + hexes.str[20:32]).to_numpy(dtype=object)  # fmt: skip

    frame = pd.DataFrame(
        {
            "event_time": None,
            "event_type": names[kind],
            "product_id": product_id[item],
            "category_id": category_id[item_cat[item]],
            "category_code": cat_code[item],
            "brand": brand[item],
            "price": item_price[item],
            "user_id": user_ids[s_user[session]],
            "user_session": uuids[session],
        }
    )
    if file_format == "csv":
        dates = [first + timedelta(days=d) for d in range(days)]
        day_text = np.array([d.strftime("%Y-%m-%d ") for d in dates])
        clock = np.arange(86400)
        clock_text = np.char.add(
            np.char.add(np.char.zfill((clock // 3600).astype(str), 2), ":"),
            np.char.add(
                np.char.add(np.char.zfill((clock // 60 % 60).astype(str), 2), ":"),
                np.char.zfill((clock % 60).astype(str), 2),
            ),
        )
        clock_text = np.char.add(clock_text, " UTC")
        frame["event_time"] = _stamp_strings(
            day_text, seconds // 86400, seconds % 86400, clock_text
        )
    else:
        epoch = int(pd.Timestamp(first, tz="UTC").timestamp())
        frame["event_time"] = (epoch + seconds) * 1000  # epoch milliseconds, int64

    suffix = "csv" if file_format == "csv" else "parquet"
    events_path = out_dir / f"fashion-clicks.{suffix}"
    _write_frame(frame, events_path, file_format)
    return ShopExport(
        style="fashion-clicks",
        events=events_path,
        mapping={
            "user_id": "user_id",
            "item_id": "product_id",
            "event_type": "event_type",
            "event_ts": "event_time",
            "session_id": "user_session",
            "price": "price",
        },
        event_type=None,
        timezone=None,  # every timestamp says UTC (or is epoch)
        items=None,
        items_mapping={"category": "category_code", "brand": "brand"},
        closed_weekdays=(),
        closed_dates=(),
        first_day=first,
        last_day=first + timedelta(days=days - 1),
        rows=len(frame),
        file_format=file_format,
        seed=seed,
        customers=customers,
        item_count=n_items,
        planted={"unknown event_type": int((kind == 3).sum())},
        timestamp_format=CLICKS_TIMESTAMP_FORMAT if file_format == "csv" else None,
    )
