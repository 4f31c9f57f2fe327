"""A synthetic shop with a known truth, so models can be scored against the best achievable.

Users carry latent category interests, an activity rate, a buying intent (buyers, regulars and
browsers) and a price sensitivity. Each day every signed-up user opens a Poisson number of sessions
(more at weekends); a session views items of the categories the user likes, and each view may go on
to add_to_cart and then purchase, with probabilities that fall with price. Because the process is
known, the true chance that a user purchases within the next 7 days is computed exactly and written
under ``<home>/truth/`` beside each user's true interest distribution.

Changes can be planted from a day on (``--drift KIND@DAY``) and a day's events batch can be written
broken on purpose (``--bad KIND@DAY``). The same arguments always give byte-identical files: every
random stream is seeded from ``(seed, day, purpose)``, so planting a change on one day never moves
the random numbers of another day.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.data import contract
from pipelines.data.partitions import PartitionWriter, partition_dir, write_table

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.config import Settings

DRIFT_KINDS: tuple[str, ...] = ("covariate", "concept", "new-items", "promo")
BAD_KINDS: tuple[str, ...] = (
    "missing-column",
    "wrong-dtype",
    "null-keys",
    "negative-price",
    "unknown-event-type",
    "duplicate-event-id",
    "out-of-day-ts",
    "empty-file",
    "corrupt-file",
)

CATEGORIES: tuple[str, ...] = (
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "toys",
    "books",
    "grocery",
    "garden",
    "pets",
    "automotive",
    "jewelry",
)
CATEGORY_BASE_PRICE = np.array([150, 40, 60, 25, 50, 30, 15, 8, 45, 20, 70, 120], dtype=float)
BRANDS_PER_CATEGORY = 6
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "PL", "SE", "CA")
COUNTRY_WEIGHTS = np.array([30, 14, 14, 10, 6, 7, 7, 5, 3, 4], dtype=float)
AGE_BAND_WEIGHTS = np.array([14, 28, 24, 17, 11, 6], dtype=float)
USER_TYPES = ("buyer", "regular", "browser")
USER_TYPE_WEIGHTS = np.array([0.25, 0.35, 0.40])
# sessions/day, cart logit offset, purchase logit offset per user type
TYPE_ACTIVITY = np.array([0.22, 0.15, 0.30])
TYPE_CART_OFFSET = np.array([0.8, 0.0, -0.9])
TYPE_BUY_OFFSET = np.array([0.9, -0.2, -1.3])
# Monday .. Sunday: people shop more at the weekend
WEEKDAY_FACTOR = np.array([0.92, 0.88, 0.9, 0.95, 1.05, 1.3, 1.25])
# session start hour profile (UTC), evening peak
HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 5, 5, 5, 6, 7, 9, 10, 9, 6, 3], dtype=float
)
DEVICE_PREFERENCE = np.array([0.5, 0.28, 0.22])  # web, ios, android
MOBILE_DEVICE_PREFERENCE = np.array([0.15, 0.45, 0.40])
EXTRA_VIEWS_MEAN = 2.5  # views per session = 1 + Poisson(EXTRA_VIEWS_MEAN)
EXPLORATION = 0.1  # share of views outside the user's own interests
CART_BASE_LOGIT = -2.3
BUY_BASE_LOGIT = -0.3
POPULARITY_WEIGHT = 0.3
PROMO_DAYS = 7
PROMO_DISCOUNT = 0.7
PROMO_ACTIVITY = 1.3
PROMO_BUY_BOOST = 1.0
PROMO_SENSITIVITY = 0.4
COVARIATE_PRICE_LEVEL = 1.2
LABEL_HORIZON_DAYS = 7
NULL_VIEW_PRICE_SHARE = 0.05
NULL_DEVICE_SHARE = 0.02
PREEXISTING_USER_SHARE = 0.85
PREEXISTING_ITEM_SHARE = 0.9
NEW_ITEMS_SHARE = 0.2
MICROS_PER_DAY = 86_400_000_000

_STREAM = {"shop": 1, "day": 2, "bad": 3, "concept": 4, "new-items": 5}


class GeneratorError(ValueError):
    """A generation request that cannot be carried out, with what to change."""


@dataclass(frozen=True)
class PlantedChange:
    kind: str
    day: date

    def __str__(self) -> str:
        return f"{self.kind}@{self.day.isoformat()}"


def parse_planted(text: str, allowed: tuple[str, ...], option: str) -> PlantedChange:
    """``"promo@2026-03-01"`` -> PlantedChange; errors say which kinds exist."""
    kind, sep, day_text = text.partition("@")
    if not sep or kind not in allowed:
        raise GeneratorError(
            f"{option} {text!r}: expected KIND@YYYY-MM-DD with KIND one of {', '.join(allowed)}"
        )
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise GeneratorError(f"{option} {text!r}: {day_text!r} is not a date YYYY-MM-DD") from None
    return PlantedChange(kind, day)


@dataclass(frozen=True)
class ShopSpec:
    users: int = 2000
    items: int = 500
    days: int = 30
    seed: int = 42
    start: date = date(2026, 1, 1)
    drifts: tuple[PlantedChange, ...] = ()
    bad: tuple[PlantedChange, ...] = ()

    def __post_init__(self) -> None:
        for name in ("users", "items", "days"):
            if getattr(self, name) < 1:
                raise GeneratorError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.items < len(CATEGORIES):
            raise GeneratorError(f"--items must be at least {len(CATEGORIES)} (one per category)")
        for change in (*self.drifts, *self.bad):
            if not self.start <= change.day <= self.end:
                raise GeneratorError(
                    f"{change} is outside the generated days {self.start} .. {self.end}"
                )
        bad_days = [c.day for c in self.bad]
        if len(bad_days) != len(set(bad_days)):
            raise GeneratorError("only one --bad kind per day")

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    def day_index(self, day: date) -> int:
        return (day - self.start).days

    def to_dict(self) -> dict[str, object]:
        return {
            "users": self.users,
            "items": self.items,
            "days": self.days,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "drifts": [str(c) for c in self.drifts],
            "bad": [str(c) for c in self.bad],
        }


def _rng(spec: ShopSpec, stream: str, *more: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, _STREAM[stream], *more])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Regime:
    """What holds on one day: the planted changes in force there."""

    promo: bool
    covariate_level: int
    concept_level: int
    launched: np.ndarray  # bool mask over items

    @property
    def key(self) -> tuple[object, ...]:
        return (self.promo, self.covariate_level, self.concept_level, int(self.launched.sum()))

    @property
    def price_factor(self) -> float:
        return COVARIATE_PRICE_LEVEL**self.covariate_level * (PROMO_DISCOUNT if self.promo else 1.0)


@dataclass
class Shop:
    """The latent state of the simulated shop, derived from the spec deterministically."""

    spec: ShopSpec

    def __post_init__(self) -> None:
        spec, rng = self.spec, _rng(self.spec, "shop")
        n_users, n_cat = spec.users, len(CATEGORIES)
        start_us = _day_start_us(spec.start)

        # ---- users
        preexisting = rng.random(n_users) < PREEXISTING_USER_SHARE
        preexisting[0] = True
        signup_offset_us = rng.integers(MICROS_PER_DAY, 730 * MICROS_PER_DAY, n_users)
        in_window_day = rng.integers(0, spec.days, n_users)
        in_window_time = rng.integers(0, MICROS_PER_DAY, n_users)
        self.user_signup_us = np.where(
            preexisting,
            start_us - signup_offset_us,
            start_us + in_window_day * MICROS_PER_DAY + in_window_time,
        )
        self.user_signup_day = np.where(preexisting, -1, in_window_day)
        self.user_country = rng.choice(len(COUNTRIES), n_users, p=_norm(COUNTRY_WEIGHTS))
        self.user_age_band = rng.choice(len(contract.AGE_BANDS), n_users, p=_norm(AGE_BAND_WEIGHTS))
        self.user_consent = rng.random(n_users) < 0.92
        self.user_type = rng.choice(len(USER_TYPES), n_users, p=USER_TYPE_WEIGHTS)
        self.user_activity = TYPE_ACTIVITY[self.user_type] * rng.lognormal(-0.18, 0.6, n_users)
        self.user_price_sensitivity = rng.lognormal(0.0, 0.35, n_users)
        self.user_device_pref = rng.dirichlet(DEVICE_PREFERENCE * 6, n_users)
        self._interest = [self._draw_interest(rng, n_users, n_cat)]
        self._cart_offset = [TYPE_CART_OFFSET[self.user_type] + rng.normal(0, 0.4, n_users)]
        self._buy_offset = [TYPE_BUY_OFFSET[self.user_type] + rng.normal(0, 0.4, n_users)]
        self._session_purchase_cache: dict[tuple[object, ...], np.ndarray] = {}

        # ---- items: the catalogue, plus the launches planted by new-items drifts
        n_items = spec.items
        category = np.concatenate(
            [np.arange(n_cat), rng.choice(n_cat, n_items - n_cat, p=_norm(np.full(n_cat, 1.0)))]
        )
        launch_day = np.where(
            rng.random(n_items) < PREEXISTING_ITEM_SHARE,
            -1,
            # new arrivals land on Mondays
            _next_weekday(spec, rng.integers(0, spec.days, n_items), weekday=0),
        )
        launch_day[:n_cat] = -1
        popularity = rng.lognormal(0.0, 1.0, n_items)
        for number, drift in enumerate(c for c in spec.drifts if c.kind == "new-items"):
            extra_rng = _rng(spec, "new-items", number)
            n_new = max(1, round(spec.items * NEW_ITEMS_SHARE))
            category = np.concatenate([category, extra_rng.choice(n_cat, n_new)])
            launch_day = np.concatenate([launch_day, np.full(n_new, spec.day_index(drift.day))])
            # a launch campaign: new items are shown more than the old catalogue
            popularity = np.concatenate([popularity, 4.0 * extra_rng.lognormal(0.0, 1.0, n_new)])
        item_rng = _rng(spec, "shop", 1)
        n_all = category.size
        self.item_category = category
        self.item_launch_day = launch_day
        self.item_popularity = popularity
        self.item_brand = item_rng.integers(0, BRANDS_PER_CATEGORY, n_all)
        self.item_price = np.round(
            CATEGORY_BASE_PRICE[category] * item_rng.lognormal(0.0, 0.5, n_all), 2
        ).clip(0.99)
        self.item_log_relative_price = np.log(self.item_price / CATEGORY_BASE_PRICE[category])
        self.item_launch_us = np.where(
            launch_day < 0,
            start_us - item_rng.integers(MICROS_PER_DAY, 1095 * MICROS_PER_DAY, n_all),
            start_us + launch_day * MICROS_PER_DAY,
        )

    @staticmethod
    def _draw_interest(rng: np.random.Generator, n_users: int, n_cat: int) -> np.ndarray:
        core = rng.dirichlet(np.full(n_cat, 0.35), n_users)
        return (1 - EXPLORATION) * core + EXPLORATION / n_cat

    def _ensure_concept_level(self, level: int) -> None:
        while len(self._interest) <= level:
            k = len(self._interest)
            rng = _rng(self.spec, "concept", k)
            n_users, n_cat = self.spec.users, len(CATEGORIES)
            # tastes move to other categories and half the users change how they buy
            self._interest.append(self._interest[-1][:, rng.permutation(n_cat)])
            new_type = rng.choice(len(USER_TYPES), n_users, p=USER_TYPE_WEIGHTS)
            switch = rng.random(n_users) < 0.5
            self._cart_offset.append(
                np.where(
                    switch,
                    TYPE_CART_OFFSET[new_type] + rng.normal(0, 0.4, n_users),
                    self._cart_offset[-1],
                )
            )
            self._buy_offset.append(
                np.where(
                    switch,
                    TYPE_BUY_OFFSET[new_type] + rng.normal(0, 0.4, n_users),
                    self._buy_offset[-1],
                )
            )

    def interest(self, level: int) -> np.ndarray:
        self._ensure_concept_level(level)
        return self._interest[level]

    def regime(self, day_index: int) -> Regime:
        spec = self.spec
        day = spec.start + timedelta(days=day_index)
        promo = any(c.kind == "promo" and 0 <= (day - c.day).days < PROMO_DAYS for c in spec.drifts)
        covariate = sum(1 for c in spec.drifts if c.kind == "covariate" and c.day <= day)
        concept = sum(1 for c in spec.drifts if c.kind == "concept" and c.day <= day)
        return Regime(promo, covariate, concept, self.item_launch_day <= day_index)

    def activity(self, day_index: int, regime: Regime) -> np.ndarray:
        """Expected sessions of every user on that day (zero before sign-up)."""
        day = self.spec.start + timedelta(days=day_index)
        factor = WEEKDAY_FACTOR[day.weekday()] * (PROMO_ACTIVITY if regime.promo else 1.0)
        return np.where(self.user_signup_day <= day_index, self.user_activity * factor, 0.0)

    def conversion_logits(
        self, users: np.ndarray, items: np.ndarray, regime: Regime
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cart and purchase logits for (user, item) pairs; arrays broadcast."""
        self._ensure_concept_level(regime.concept_level)
        sensitivity = self.user_price_sensitivity[users] * (
            PROMO_SENSITIVITY if regime.promo else 1.0
        )
        relative_price = self.item_log_relative_price[items] + np.log(regime.price_factor)
        cart = (
            CART_BASE_LOGIT
            + self._cart_offset[regime.concept_level][users]
            + POPULARITY_WEIGHT * np.log(self.item_popularity[items])
            - sensitivity * relative_price
        )
        buy = (
            BUY_BASE_LOGIT
            + self._buy_offset[regime.concept_level][users]
            + (PROMO_BUY_BOOST if regime.promo else 0.0)
            - 0.5 * sensitivity * relative_price
        )
        return cart, buy

    def device_preference(self, regime: Regime) -> np.ndarray:
        shift = 1 - 0.4**regime.covariate_level  # 0 before any covariate drift, 0.6 after one
        return (1 - shift) * self.user_device_pref + shift * MOBILE_DEVICE_PREFERENCE

    def session_purchase_probability(self, regime: Regime) -> np.ndarray:
        """P(a session of each user ends with at least one purchase) under ``regime``, exactly.

        A view lands in category c with the user's interest share and on item i with its
        popularity share among launched items of c; it converts with p_cart * p_buy. With
        V = 1 + Poisson(m) independent views, P(no purchase) = (1 - r) * exp(-m r).
        """
        cached = self._session_purchase_cache.get(regime.key)
        if cached is not None:
            return cached
        items = np.flatnonzero(regime.launched)
        weights = self.item_popularity[items]
        category = self.item_category[items]
        category_total = np.bincount(category, weights=weights, minlength=len(CATEGORIES))
        share_in_category = weights / category_total[category]
        interest = self.interest(regime.concept_level)
        per_view = np.empty(self.spec.users)
        for lo in range(0, self.spec.users, 4096):
            users = np.arange(lo, min(lo + 4096, self.spec.users))
            cart, buy = self.conversion_logits(users[:, None], items[None, :], regime)
            convert = _sigmoid(cart) * _sigmoid(buy)
            view_share = interest[users][:, category] * share_in_category[None, :]
            per_view[users] = (convert * view_share).sum(axis=1)
        result = 1.0 - (1.0 - per_view) * np.exp(-EXTRA_VIEWS_MEAN * per_view)
        self._session_purchase_cache[regime.key] = result
        return result

    def purchase_probability_7d(self, day_index: int) -> np.ndarray:
        """P(purchase in the 7 days after the end of ``day_index``) for every user."""
        rate = np.zeros(self.spec.users)
        for ahead in range(day_index + 1, day_index + 1 + LABEL_HORIZON_DAYS):
            regime = self.regime(ahead)
            rate += self.activity(ahead, regime) * self.session_purchase_probability(regime)
        return 1.0 - np.exp(-rate)


def _norm(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def _next_weekday(spec: ShopSpec, day_index: np.ndarray, weekday: int) -> np.ndarray:
    start_weekday = spec.start.weekday()
    shift = (weekday - (start_weekday + day_index)) % 7
    return np.minimum(day_index + shift, spec.days - 1)


def _string_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def user_ids(numbers: np.ndarray) -> pa.Array:
    return _string_ids("u", numbers, 6)


def item_ids(numbers: np.ndarray) -> pa.Array:
    return _string_ids("i", numbers, 5)


def simulate_events(shop: Shop, day_index: int) -> pa.Table:
    """One day of events for every signed-up user, in time order, as a contract-typed table."""
    import pyarrow as pa

    spec = shop.spec
    rng = _rng(spec, "day", day_index)
    regime = shop.regime(day_index)
    day = spec.start + timedelta(days=day_index)
    day_start = _day_start_us(day)

    # sessions
    sessions_per_user = rng.poisson(shop.activity(day_index, regime))
    session_user = np.repeat(np.arange(spec.users), sessions_per_user)
    n_sessions = session_user.size
    hour = rng.choice(24, n_sessions, p=_norm(HOUR_WEIGHTS))
    session_start = day_start + hour * 3_600_000_000 + rng.integers(0, 3_600_000_000, n_sessions)
    signup = shop.user_signup_us[session_user]
    late = signup > session_start  # sessions on the sign-up day start after signing up
    session_start[late] = signup[late] + rng.integers(1, 600_000_000, late.sum())
    device_cdf = np.cumsum(shop.device_preference(regime)[session_user], axis=1)
    session_device = (rng.random(n_sessions)[:, None] > device_cdf[:, :-1]).sum(axis=1)
    session_device = np.where(rng.random(n_sessions) < NULL_DEVICE_SHARE, -1, session_device)

    # views: category by interest, item by popularity among launched items of that category
    views_per_session = 1 + rng.poisson(EXTRA_VIEWS_MEAN, n_sessions)
    view_session = np.repeat(np.arange(n_sessions), views_per_session)
    view_user = session_user[view_session]
    n_views = view_session.size
    interest_cdf = np.cumsum(shop.interest(regime.concept_level), axis=1)
    view_category = (rng.random(n_views)[:, None] > interest_cdf[view_user, :-1]).sum(axis=1)
    view_item = np.empty(n_views, dtype=np.int64)
    pick = rng.random(n_views)
    for category in range(len(CATEGORIES)):
        in_category = view_category == category
        candidates = np.flatnonzero(regime.launched & (shop.item_category == category))
        cdf = np.cumsum(shop.item_popularity[candidates])
        position = np.searchsorted(cdf, pick[in_category] * cdf[-1], side="right")
        view_item[in_category] = candidates[np.minimum(position, candidates.size - 1)]

    gaps = rng.exponential(45_000_000, n_views).astype(np.int64) + 1_000_000
    first_of_session = np.r_[0, np.cumsum(views_per_session)[:-1]]
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first_of_session] - gaps[first_of_session], views_per_session)
    view_ts = session_start[view_session] + elapsed

    # funnel
    cart_logit, buy_logit = shop.conversion_logits(view_user, view_item, regime)
    carted = rng.random(n_views) < _sigmoid(cart_logit)
    bought = carted & (rng.random(n_views) < _sigmoid(buy_logit))
    quantity = 1 + rng.poisson(0.2, n_views)
    cart_ts = view_ts + rng.exponential(30_000_000, n_views).astype(np.int64) + 1_000_000
    buy_ts = cart_ts + rng.exponential(120_000_000, n_views).astype(np.int64) + 1_000_000
    unit_price = np.round(shop.item_price[view_item] * regime.price_factor, 2)
    view_price_missing = rng.random(n_views) < NULL_VIEW_PRICE_SHARE

    cart_idx, buy_idx = np.flatnonzero(carted), np.flatnonzero(bought)
    source = np.concatenate([np.arange(n_views), cart_idx, buy_idx])
    event_type = np.concatenate(
        [np.zeros(n_views, np.int8), np.ones(cart_idx.size, np.int8), np.full(buy_idx.size, 2)]
    ).astype(np.int8)
    ts = np.concatenate([view_ts, cart_ts[cart_idx], buy_ts[buy_idx]])
    ts = np.minimum(ts, day_start + MICROS_PER_DAY - 1)
    price = unit_price[source]
    price_missing = np.concatenate(
        [view_price_missing, np.zeros(cart_idx.size + buy_idx.size, bool)]
    )
    qty = np.where(event_type == 0, 1, quantity[source])
    order = np.lexsort((event_type, source, ts))
    source, event_type, ts = source[order], event_type[order], ts[order]
    price, price_missing, qty = price[order], price_missing[order], qty[order]
    session = view_session[source]
    device = session_device[session]

    n_events = source.size
    day_tag = day.strftime("%Y%m%d")
    global_session = first_session_number(shop, day_index) + session
    schema = contract.EVENTS.arrow_schema()
    columns = {
        "event_id": _string_ids(f"e{day_tag}-", np.arange(n_events), 7),
        "user_id": user_ids(view_user[source]),
        "item_id": item_ids(view_item[source]),
        "event_type": pa.DictionaryArray.from_arrays(
            pa.array(event_type), pa.array(contract.EVENT_TYPES)
        ).cast(pa.string()),
        "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "session_id": _string_ids("s", global_session, 9),
        "price": pa.array(price, pa.float64(), mask=price_missing),
        "quantity": pa.array(qty, pa.int64()),
        "device": pa.DictionaryArray.from_arrays(
            pa.array(device, pa.int8(), mask=device < 0), pa.array(contract.DEVICES)
        ).cast(pa.string()),
    }
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def first_session_number(shop: Shop, day_index: int) -> int:
    """Session ids are unique across days: day d numbers its sessions from d * 10^7 on."""
    return day_index * 10_000_000


def users_batch(shop: Shop, day_index: int) -> pa.Table:
    """Users who sign up that day; the first day also carries everyone who already exists."""
    import pyarrow as pa

    chosen = (
        np.flatnonzero(shop.user_signup_day <= 0)
        if day_index == 0
        else np.flatnonzero(shop.user_signup_day == day_index)
    )
    chosen = chosen[np.argsort(shop.user_signup_us[chosen], kind="stable")]
    schema = contract.USERS.arrow_schema()
    return pa.Table.from_arrays(
        [
            user_ids(chosen),
            pa.array(shop.user_signup_us[chosen], pa.timestamp("us", tz="UTC")),
            pa.array(np.array(COUNTRIES)[shop.user_country[chosen]], pa.string()),
            pa.array(np.array(contract.AGE_BANDS)[shop.user_age_band[chosen]], pa.string()),
            pa.array(shop.user_consent[chosen], pa.bool_()),
        ],
        schema=schema,
    )


def items_batch(shop: Shop, day_index: int) -> pa.Table:
    """Items launched that day; the first day also carries the existing catalogue."""
    import pyarrow as pa

    chosen = (
        np.flatnonzero(shop.item_launch_day <= 0)
        if day_index == 0
        else np.flatnonzero(shop.item_launch_day == day_index)
    )
    category = np.array(CATEGORIES)[shop.item_category[chosen]]
    brand = np.char.add(np.char.add(category, "-brand-"), shop.item_brand[chosen].astype(str))
    schema = contract.ITEMS.arrow_schema()
    return pa.Table.from_arrays(
        [
            item_ids(chosen),
            pa.array(category, pa.string()),
            pa.array(brand, pa.string()),
            pa.array(shop.item_price[chosen], pa.float64()),
            pa.array(shop.item_launch_us[chosen], pa.timestamp("us", tz="UTC")),
        ],
        schema=schema,
    )


# ---- planted defects -------------------------------------------------------------------------


def break_events(events: pa.Table, kind: str, rng: np.random.Generator) -> pa.Table | bytes:
    """``events`` with exactly the defect named by ``kind`` (bytes for a corrupt file)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = events.num_rows

    def some_rows(share: float, among: np.ndarray | None = None) -> np.ndarray:
        pool = np.arange(n) if among is None else among
        count = max(1, round(share * pool.size))
        return np.sort(rng.choice(pool, size=min(count, pool.size), replace=False))

    def replace(name: str, values: pa.Array) -> pa.Table:
        position = events.schema.get_field_index(name)
        return events.set_column(position, pa.field(name, values.type), values)

    def mask_of(rows: np.ndarray) -> pa.Array:
        mask = np.zeros(n, bool)
        mask[rows] = True
        return pa.array(mask)

    if kind == "missing-column":
        return events.drop_columns(["item_id"])
    if kind == "wrong-dtype":
        # prices exported as text, e.g. by a spreadsheet
        return replace("price", pc.cast(events["price"], pa.string()).combine_chunks())
    if kind == "null-keys":
        rows = some_rows(0.03)
        nulls = pa.nulls(n, pa.string())
        return replace("user_id", pc.if_else(mask_of(rows), nulls, events["user_id"]))
    if kind == "negative-price":
        priced = np.flatnonzero(events["price"].is_valid().to_numpy(zero_copy_only=False))
        rows = some_rows(0.03, priced)
        price = pc.if_else(mask_of(rows), pc.negate(events["price"]), events["price"])
        return replace("price", price.combine_chunks())
    if kind == "unknown-event-type":
        rows = some_rows(0.03)
        click = pa.array(["click"] * n, pa.string())
        return replace("event_type", pc.if_else(mask_of(rows), click, events["event_type"]))
    if kind == "duplicate-event-id":
        rows = some_rows(0.02, np.arange(1, n))
        ids = events["event_id"].to_numpy(zero_copy_only=False).copy()
        ids[rows] = ids[rows - 1]  # each picked row repeats its predecessor's id
        return replace("event_id", pa.array(ids, pa.string()))
    if kind == "out-of-day-ts":
        rows = some_rows(0.03)
        shift = np.zeros(n, np.int64)
        shift[rows] = np.where(rng.random(rows.size) < 0.5, 1, -2) * MICROS_PER_DAY
        micros = events["event_ts"].combine_chunks().cast(pa.int64()).to_numpy() + shift
        return replace("event_ts", pa.array(micros, pa.timestamp("us", tz="UTC")))
    if kind == "empty-file":
        return events.slice(0, 0)
    if kind == "corrupt-file":
        import io

        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(events, buffer, compression="zstd")
        whole = buffer.getvalue()
        return whole[: len(whole) // 2]  # truncated mid-file: no footer, unreadable
    raise GeneratorError(f"unknown --bad kind {kind!r}; expected one of {', '.join(BAD_KINDS)}")


# ---- the whole run ---------------------------------------------------------------------------


@dataclass
class DayWritten:
    day: date
    events: int
    users: int
    items: int
    by_type: dict[str, int]
    bad: str | None = None
    drifts: list[str] = field(default_factory=list)


@dataclass
class GenerationReport:
    spec: ShopSpec
    landing: Path
    truth: Path
    days: list[DayWritten]

    @property
    def events(self) -> int:
        return sum(d.events for d in self.days)

    @property
    def users(self) -> int:
        return sum(d.users for d in self.days)

    @property
    def items(self) -> int:
        return sum(d.items for d in self.days)

    def by_type(self) -> dict[str, int]:
        totals = dict.fromkeys(contract.EVENT_TYPES, 0)
        for d in self.days:
            for key, value in d.by_type.items():
                totals[key] += value
        return totals

    def to_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec.to_dict(),
            "landing": str(self.landing),
            "truth": str(self.truth),
            "events": self.events,
            "users": self.users,
            "items": self.items,
            "events_by_type": self.by_type(),
            "days": [{**asdict(d), "day": d.day.isoformat()} for d in self.days],
        }


def _write_landing(landing: Path, table: str, day: date, data: pa.Table | bytes) -> None:
    target = partition_dir(landing, table, day)
    with PartitionWriter(target) as staged:
        if isinstance(data, bytes):
            (staged / "part-0.parquet").write_bytes(data)
        else:
            write_table(data, staged / "part-0.parquet")


def generate(
    spec: ShopSpec,
    settings: Settings,
    progress: Callable[[DayWritten], None] | None = None,
) -> GenerationReport:
    """Write ``spec.days`` daily landing batches and the ground truth under the state dir."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shop = Shop(spec)
    landing, truth_dir = settings.landing_dir, settings.truth_dir
    bad_by_day = {c.day: c.kind for c in spec.bad}
    written: list[DayWritten] = []
    probabilities: list[pa.Table] = []
    for day_index in range(spec.days):
        day = spec.start + timedelta(days=day_index)
        events = simulate_events(shop, day_index)
        counts = pc.value_counts(events["event_type"]).to_pylist()
        by_type = {c["values"]: c["counts"] for c in counts}
        users, items = users_batch(shop, day_index), items_batch(shop, day_index)
        landed: pa.Table | bytes = events
        if day in bad_by_day:
            landed = break_events(events, bad_by_day[day], _rng(spec, "bad", day_index))
        _write_landing(landing, "events", day, landed)
        _write_landing(landing, "users", day, users)
        _write_landing(landing, "items", day, items)
        probabilities.append(_purchase_truth(shop, day_index))
        report_day = DayWritten(
            day=day,
            events=events.num_rows,
            users=users.num_rows,
            items=items.num_rows,
            by_type={t: by_type.get(t, 0) for t in contract.EVENT_TYPES},
            bad=bad_by_day.get(day),
            drifts=[c.kind for c in spec.drifts if c.day == day],
        )
        written.append(report_day)
        if progress is not None:
            progress(report_day)
    _write_truth(shop, truth_dir, pa.concat_tables(probabilities))
    return GenerationReport(spec=spec, landing=landing, truth=truth_dir, days=written)


def _purchase_truth(shop: Shop, day_index: int) -> pa.Table:
    import pyarrow as pa

    spec = shop.spec
    signed_up = np.flatnonzero(shop.user_signup_day <= day_index)
    snapshot = _day_start_us(spec.start) + (day_index + 1) * MICROS_PER_DAY
    probability = shop.purchase_probability_7d(day_index)[signed_up]
    return pa.table(
        {
            "user_id": user_ids(signed_up),
            "snapshot_ts": pa.array(np.full(signed_up.size, snapshot), pa.timestamp("us", "UTC")),
            "p_purchase_7d": pa.array(probability, pa.float64()),
        }
    )


def _write_truth(shop: Shop, truth_dir: Path, probabilities: pa.Table) -> None:
    """Ground truth beside the data, never inside landing/: what a perfect model would know."""
    import pyarrow as pa

    spec = shop.spec
    target = truth_dir
    with PartitionWriter(target) as staged:
        write_table(probabilities, staged / "purchase_probability_7d.parquet")
        levels = sorted({shop.regime(d).concept_level for d in range(spec.days)})
        interest_parts = []
        for level in levels:
            first_day = next(d for d in range(spec.days) if shop.regime(d).concept_level == level)
            interest = shop.interest(level)
            n_users, n_cat = interest.shape
            interest_parts.append(
                pa.table(
                    {
                        "user_id": user_ids(np.repeat(np.arange(n_users), n_cat)),
                        "category": pa.array(np.tile(np.array(CATEGORIES), n_users)),
                        "share": pa.array(interest.ravel(), pa.float64()),
                        "valid_from": pa.array(
                            [spec.start + timedelta(days=first_day)] * (n_users * n_cat),
                            pa.date32(),
                        ),
                    }
                )
            )
        write_table(pa.concat_tables(interest_parts), staged / "user_interest.parquet")
        write_table(
            pa.table(
                {
                    "user_id": user_ids(np.arange(spec.users)),
                    "user_type": pa.array(np.array(USER_TYPES)[shop.user_type]),
                    "sessions_per_day": pa.array(shop.user_activity),
                    "price_sensitivity": pa.array(shop.user_price_sensitivity),
                }
            ),
            staged / "users.parquet",
        )
        scenario = {
            **spec.to_dict(),
            "label_horizon_days": LABEL_HORIZON_DAYS,
            "promo_days": PROMO_DAYS,
            "categories": list(CATEGORIES),
        }
        (staged / "scenario.json").write_text(json.dumps(scenario, indent=2) + "\n")
