"""What the read endpoints answer: recommendations, propensity and segment of one user.

Everything a request needs from a model is precomputed when the model is loaded
(:func:`prepare`), and the catalogue of live items is reloaded by the polling thread
(:class:`Catalogue`); a request reads the online store and computes, nothing else.

Recommendations, in order:

1. **precomputed** — the champion's top-k written by ``publish_recommendations``
   (``recommendations_v1``), used when it was made by the version now served and still has
   ``k`` items after the filters;
2. **model** — the loaded recommender's scores for a known user: its best items scored ahead
   when the model was loaded (:func:`scored_ahead`), or ``score_items`` now when filters leave
   fewer than ``k`` of those;
3. **segment** — a user the recommender never saw, with a published segment it has a
   popularity for: that segment's bestsellers;
4. **popular** — the shop's bestsellers (the recommender's popularity, or the live catalogue's
   when no recommender is loaded or it failed to score).

Whatever the path, only items of the live catalogue are returned (the latest
``item_popularity`` partition: items still known to the shop), filtered by ``category`` and
``exclude``; the response names the strategy and, for the last two, the fallback's reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.features.schema import FEATURE_TABLES, USER_REALTIME

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Settings
    from pipelines.serving.models import LoadedModel

log = logging.getLogger(__name__)

RECOMMENDER, PROPENSITY, SEGMENTATION = "recommender", "propensity", "segmentation"
PROPENSITY_SERVICE = "propensity_v1"
RECOMMENDATIONS_SERVICE = "recommendations_v1"
REALTIME_COLUMNS = tuple(c.name for c in USER_REALTIME)
PROPENSITY_CACHE_SIZE = 100_000
_DTYPES = {c.name: c.dtype for table in FEATURE_TABLES.values() for c in table.columns} | {
    c.name: c.dtype for c in USER_REALTIME
}

FeatureReader = Callable[[str, str], dict[str, Any]]
"""``(user_id, service) -> {feature: value}``: one user's online features of a service."""
BatchReader = Callable[[Sequence[str], str], dict[str, list[Any]]]
"""``(user_ids, service) -> {"user_id": [...], feature: [...]}``: many users' online features."""
WARM_BATCH_USERS = 5_000
AHEAD_USERS = 100_000
"""Known users whose best items a freshly loaded recommender scores before it is swapped in."""
AHEAD_ITEMS = 300
"""Best items kept per user scored ahead: k (at most 100) plus as many exclusions (200)."""
AHEAD_CELLS = 100_000_000
"""At most this many scores (users x items) per load: ~1 s here; a large catalogue scores fewer
users ahead (100,000 items: 1,000 users), the others are scored per request."""
AHEAD_BATCH_CELLS = 5_000_000
"""Scores (users x items) computed per batch while scoring ahead."""


class OnlineFeatures:
    """The online features serving reads: one prepared
    :class:`~pipelines.features.online.OnlineServiceReader` per feature service.

    ``features(user_id, service)`` is the :data:`FeatureReader`, :meth:`many` the
    :data:`BatchReader`; :meth:`refresh` (the polling thread) re-resolves services whose
    registry definition changed. :attr:`direct` says whether reads are local file reads (the
    local profile's SQLite store), cheap enough to run on the event loop.
    """

    def __init__(
        self,
        settings: Settings,
        services: Sequence[str] = (PROPENSITY_SERVICE, RECOMMENDATIONS_SERVICE),
    ) -> None:
        self.settings = settings
        self.services = tuple(services)
        self._readers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.direct = settings.feast_online_store["type"] != "redis"

    def reader(self, service: str) -> Any:
        found = self._readers.get(service)
        if found is None:
            from pipelines.features.online import OnlineServiceReader

            with self._lock:
                found = self._readers.get(service)
                if found is None:
                    found = OnlineServiceReader(self.settings, service)
                    self._readers[service] = found
        return found

    def __call__(self, user_id: str, service: str) -> dict[str, Any]:
        return self.reader(service).read(user_id)

    def many(self, user_ids: Sequence[str], service: str) -> dict[str, list[Any]]:
        return self.reader(service).read_many(user_ids)

    def refresh(self, *_: object) -> None:
        """Prepare the readers of :attr:`services` (at start, outside any request) and
        re-resolve any whose service definition changed in the registry."""
        for service in self.services:
            self.reader(service).refresh()
        for reader in list(self._readers.values()):
            reader.refresh()


# ---- the live catalogue ------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueState:
    day: str | None
    category: Mapping[str, str | None]  # item -> category, every live item
    popularity: Mapping[str, float]  # item -> bestseller score (purchases > carts > views)
    segment_members: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # published
    # user -> (recommender version, item ids, scores): the latest published top-k
    # (``user_recommendations``), what ``recommendations_v1`` serves online, held in memory
    recommendations: Mapping[str, tuple[int, tuple[str, ...], tuple[float, ...]]] = field(
        default_factory=dict
    )
    known_users: tuple[str, ...] = ()  # users of the latest ``user_activity`` partition


class Catalogue:
    """The items the shop still lists: the latest ``item_popularity`` offline partition.

    Reloaded by :meth:`refresh` (the polling thread) when a newer day appears; requests read
    :attr:`state`, swapped whole. Empty until features have been computed once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = CatalogueState(None, {}, {})
        self.token = 0  # bumped on every reload: keys the per-model masks
        self._stamp: tuple[Any, Any] = (None, None)

    def _segment_members(self) -> dict[int, tuple[str, ...]]:
        """Published segment -> its users (the latest ``user_segment`` partition)."""
        from pipelines.data.partitions import partition_days
        from pipelines.features.offline import read_offline_partition

        days = partition_days(self.settings.feast_offline_dir, "user_segment")
        if not days:
            return {}
        frame = read_offline_partition(
            self.settings.feast_offline_dir, "user_segment", days[-1], ["user_id", "segment_id"]
        )
        if frame is None or frame.empty:
            return {}
        groups = frame.groupby("segment_id")["user_id"]
        return {int(label): tuple(users.astype(str)) for label, users in groups}

    def _latest(self, table: str) -> tuple[Any, int] | None:
        """(latest day, its files' newest mtime) of an offline table: changes on a rewrite."""
        from pipelines.data.partitions import partition_days, partition_dir

        offline = self.settings.feast_offline_dir
        days = partition_days(offline, table)
        if not days:
            return None
        files = list(partition_dir(offline, table, days[-1]).glob("*.parquet"))
        return days[-1], max((f.stat().st_mtime_ns for f in files), default=0)

    def _recommendations(
        self, latest: tuple[Any, int] | None
    ) -> dict[str, tuple[int, tuple[str, ...], tuple[float, ...]]]:
        from pipelines.features.offline import read_offline_partition

        if latest is None:
            return {}
        frame = read_offline_partition(
            self.settings.feast_offline_dir, "user_recommendations", latest[0]
        )
        if frame is None or frame.empty:
            return {}
        out = {}
        for user, ids, scores, version in zip(
            frame["user_id"].astype(str),
            frame["recommended_item_ids"],
            frame["recommended_scores"],
            frame["recommender_version"],
            strict=True,
        ):
            if not ids or version is None or version != version:  # none, or NaN
                continue
            out[user] = (
                int(version),
                tuple(ids.split(",")),
                tuple(float(v) for v in (scores or "").split(",") if v),
            )
        return out

    def _known_users(self, latest: tuple[Any, int] | None) -> tuple[str, ...]:
        from pipelines.features.offline import read_offline_partition

        if latest is None:
            return ()
        frame = read_offline_partition(
            self.settings.feast_offline_dir, "user_activity", latest[0], ["user_id"]
        )
        return () if frame is None else tuple(sorted(set(frame["user_id"].astype(str))))

    def refresh(self, *_: object) -> bool:
        from pipelines.data.partitions import partition_days
        from pipelines.features.offline import read_offline_partition

        days = partition_days(self.settings.feast_offline_dir, "item_popularity")
        segment_days = partition_days(self.settings.feast_offline_dir, "user_segment")
        published = self._latest("user_recommendations")
        activity = self._latest("user_activity")
        stamp = (
            days[-1].isoformat() if days else None,
            segment_days[-1] if segment_days else None,
            published,
            activity,
        )
        if not days or stamp == self._stamp:
            return False
        self._stamp = stamp
        frame = read_offline_partition(self.settings.feast_offline_dir, "item_popularity", days[-1])
        if frame is None or frame.empty:
            return False
        items = frame["item_id"].astype(str).to_numpy()
        categories = frame["item_category"].where(frame["item_category"].notna(), None)
        score = (
            5.0 * frame["item_purchases_30d"].fillna(0)
            + 3.0 * frame["item_carts_30d"].fillna(0)
            + frame["item_views_30d"].fillna(0)
        ).to_numpy(dtype="float64")
        self.state = CatalogueState(
            days[-1].isoformat(),
            dict(zip(items, categories.tolist(), strict=True)),
            dict(zip(items, score.tolist(), strict=True)),
            self._segment_members(),
            self._recommendations(published),
            self._known_users(activity),
        )
        self.token += 1
        return True


# ---- what is precomputed per recommender ---------------------------------------------------------


@dataclass
class PreparedRecommender:
    """Indexes of one loaded recommender, built once at load time."""

    model: Any
    items: np.ndarray  # catalogue_ of the model, as str
    user_rows: dict[str, int]
    popularity: np.ndarray  # over items
    segment_popularity: dict[Any, np.ndarray]
    strategy: str  # what a known user's list is: personalized or buy-again
    exclude_seen: bool
    # user -> (item positions best first, their scores): the model's best ``AHEAD_ITEMS``
    # unseen items with finite scores, computed at load time (see ``scored_ahead``)
    ahead: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _masks: dict[tuple[int, str | None], np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def live_mask(self, catalogue: Catalogue, category: str | None) -> np.ndarray:
        """Items of the model that the catalogue lists (in ``category``), cached per reload."""
        key = (catalogue.token, category)
        mask = self._masks.get(key)
        if mask is None:
            state = catalogue.state
            if not state.category:  # no catalogue yet: the model's own items stand
                mask = np.ones(self.items.size, bool) if category is None else None
                if mask is None:
                    mask = np.zeros(self.items.size, bool)
            elif category is None:
                mask = np.fromiter((i in state.category for i in self.items), bool, self.items.size)
            else:
                mask = np.fromiter(
                    (state.category.get(i, "\0") == category for i in self.items),
                    bool,
                    self.items.size,
                )
            with self._lock:
                if len(self._masks) > 256:
                    self._masks.clear()
                self._masks[key] = mask
        return mask

    def segment_scores(self, segment: Any, catalogue: Catalogue) -> np.ndarray | None:
        """Bestsellers of a segment: the model's own segment popularity when it was fitted with
        segments, else the interactions of the segment's published members the model knows
        (at least ``MIN_SEGMENT_USERS``); None when the segment is too small or unknown."""
        label = _segment_key(segment)
        if label in self.segment_popularity:
            return self.segment_popularity[label]
        key = (catalogue.token, f"segment:{label}")
        if key in self._masks:
            found = self._masks[key]
            return None if found.size == 0 else found
        from pipelines.models.recommender import MIN_SEGMENT_USERS

        members = catalogue.state.segment_members.get(label, ())
        rows = [self.user_rows[u] for u in members if u in self.user_rows]
        vector = np.zeros(0)
        if len(rows) >= MIN_SEGMENT_USERS:
            X = self.model.X_
            vector = np.zeros(self.items.size)
            vector[: X.shape[1]] = np.asarray(X[rows].sum(axis=0)).ravel()
        with self._lock:
            self._masks[key] = vector
        return None if vector.size == 0 else vector

    def seen(self, row: int) -> np.ndarray:
        X = self.model.X_
        return X.indices[X.indptr[row] : X.indptr[row + 1]]


def prepare(name: str, model: Any) -> Any:
    """What requests need from a freshly loaded model (recommender: its indexes)."""
    if name != RECOMMENDER:
        return None
    from pipelines.models.recommender import BuyAgainRecommender

    items = np.asarray([str(i) for i in model.catalogue_], dtype=object)
    popularity = np.zeros(items.size)
    popularity[: model.popularity_.size] = model.popularity_
    segments = {}
    for label, vector in getattr(model, "segment_popularity_", {}).items():
        full = np.zeros(items.size)
        full[: vector.size] = vector
        segments[_segment_key(label)] = full
    prepared = PreparedRecommender(
        model=model,
        items=items,
        user_rows={str(u): i for i, u in enumerate(model.user_ids_)},
        popularity=popularity,
        segment_popularity=segments,
        strategy="buy-again" if isinstance(model, BuyAgainRecommender) else "personalized",
        exclude_seen=bool(getattr(model, "exclude_seen", True)),
    )
    try:
        prepared.ahead = scored_ahead(prepared)
    except Exception as error:  # requests score it then, and fall back if it still fails
        log.warning("serving: recommender cannot score ahead: %s", type(error).__name__)
    return prepared


def scored_ahead(prep: PreparedRecommender) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each known user's best ``AHEAD_ITEMS`` items (seen ones left out when the model excludes
    them), scored in batches at load time: a request of a version without published lists
    then filters a short list instead of scoring the whole catalogue for one user (~30x
    the cost here). Ties keep the catalogue's order."""
    width = max(1, prep.items.size)
    users = list(prep.user_rows)[: min(AHEAD_USERS, AHEAD_CELLS // width)]
    batch = max(1, AHEAD_BATCH_CELLS // width)
    ahead: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        scores = np.asarray(prep.model.score_items(chunk), dtype="float64")
        for user, row in zip(chunk, scores, strict=True):
            valid = np.isfinite(row)
            if prep.exclude_seen:
                valid[prep.seen(prep.user_rows[user])] = False
            candidates = np.flatnonzero(valid)
            if candidates.size > AHEAD_ITEMS:
                cut = -np.partition(-row[candidates], AHEAD_ITEMS - 1)[AHEAD_ITEMS - 1]
                candidates = candidates[row[candidates] >= cut]  # ties at the cut all stay
            order = candidates[np.argsort(-row[candidates], kind="stable")]
            ahead[user] = (order, row[order])
        time.sleep(0)  # the polling thread: let requests have the GIL between batches
    return ahead


def _segment_key(label: Any) -> Any:
    try:
        return int(label)
    except (TypeError, ValueError):
        return label


# ---- recommendations -----------------------------------------------------------------------------


@dataclass
class Answer:
    body: dict[str, Any]
    fallback: str | None = None  # reason, when the answer is a fallback


def recommend(
    models: Mapping[str, LoadedModel],
    catalogue: Catalogue,
    read: FeatureReader,
    user_id: str,
    k: int,
    category: str | None = None,
    exclude: Sequence[str] = (),
) -> Answer:
    loaded = models.get(RECOMMENDER)
    excluded = set(exclude)
    body: dict[str, Any] = {
        "user_id": user_id,
        "k": k,
        "category": category,
        "model": RECOMMENDER,
        "version": loaded.version if loaded else None,
    }
    if loaded is None or loaded.prepared is None:
        items = _catalogue_top(catalogue, k, category, excluded)
        return Answer(
            {
                **body,
                "strategy": "popular",
                "source": "catalogue",
                "items": items,
                "fallback": "no_model",
            },
            "no_model",
        )
    prep: PreparedRecommender = loaded.prepared
    row = prep.user_rows.get(user_id)
    try:
        if row is not None:
            precomputed = _precomputed(read, user_id, loaded.version, catalogue, category, excluded)
            if precomputed is not None and len(precomputed) >= k:
                return Answer(
                    {
                        **body,
                        "strategy": prep.strategy,
                        "source": "precomputed",
                        "items": precomputed[:k],
                        "fallback": None,
                    }
                )
            ahead = prep.ahead.get(user_id)
            if ahead is not None:
                found = _top_ahead(prep, ahead, prep.live_mask(catalogue, category), k, excluded)
                if found is not None:
                    return Answer(
                        {
                            **body,
                            "strategy": prep.strategy,
                            "source": "model",
                            "items": found,
                            "fallback": None,
                        }
                    )
            scores = np.asarray(prep.model.score_items([user_id]), dtype="float64")[0]
            mask = prep.live_mask(catalogue, category).copy()
            if prep.exclude_seen:
                mask[prep.seen(row)] = False
            items = _top(prep.items, scores, mask, k, excluded)
            return Answer(
                {
                    **body,
                    "strategy": prep.strategy,
                    "source": "model",
                    "items": items,
                    "fallback": None,
                }
            )
        segment = read(user_id, PROPENSITY_SERVICE).get("segment_id")
        vector = prep.segment_scores(segment, catalogue) if segment is not None else None
        strategy = "segment" if vector is not None else "popular"
        scores = vector if vector is not None else prep.popularity
        items = _top(prep.items, scores, prep.live_mask(catalogue, category), k, excluded)
        return Answer(
            {
                **body,
                "strategy": strategy,
                "source": "model",
                "items": items,
                "segment_id": segment,
                "fallback": "unknown_user",
            },
            "unknown_user",
        )
    except Exception as error:  # a model that cannot score: bestsellers, counted, never a 500
        log.warning("serving: recommender v%s failed to score: %s", loaded.version, type(error))
        items = _catalogue_top(catalogue, k, category, excluded)
        return Answer(
            {
                **body,
                "strategy": "popular",
                "source": "catalogue",
                "items": items,
                "fallback": "model_error",
            },
            "model_error",
        )


def _precomputed(
    read: FeatureReader,
    user_id: str,
    version: int,
    catalogue: Catalogue,
    category: str | None,
    excluded: set[str],
) -> list[dict[str, Any]] | None:
    state = catalogue.state
    held = state.recommendations.get(user_id)
    if held is not None and held[0] == version:  # in memory: no read of the online store
        pairs = zip(held[1], held[2], strict=False)
    else:
        values = read(user_id, RECOMMENDATIONS_SERVICE)
        ids, scores = values.get("recommended_item_ids"), values.get("recommended_scores")
        if not ids or values.get("recommender_version") != version:
            return None  # none, or made by another version than the one served: not fresh
        pairs = zip(ids.split(","), (scores or "").split(","), strict=False)
    out = []
    for item, score in pairs:
        if item in excluded:
            continue
        if state.category and item not in state.category:
            continue  # no longer listed
        if category is not None and state.category.get(item, "\0") != category:
            continue
        out.append({"item_id": item, "score": float(score), "rank": len(out) + 1})
    return out


def _top(
    items: np.ndarray, scores: np.ndarray, mask: np.ndarray, k: int, excluded: set[str]
) -> list[dict[str, Any]]:
    valid = mask & np.isfinite(scores)
    if excluded:
        valid &= ~np.isin(items, list(excluded))
    candidates = np.flatnonzero(valid)
    if candidates.size > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [
        {"item_id": str(items[i]), "score": round(float(scores[i]), 6), "rank": rank}
        for rank, i in enumerate(order, start=1)
    ]


def _top_ahead(
    prep: PreparedRecommender,
    ahead: tuple[np.ndarray, np.ndarray],
    mask: np.ndarray,
    k: int,
    excluded: set[str],
) -> list[dict[str, Any]] | None:
    """The first ``k`` of a user's scored-ahead items that ``mask`` keeps and ``excluded`` does
    not name; None when the short list runs out before ``k`` while the model had more items
    (then the whole catalogue is scored)."""
    order, scores = ahead
    out: list[dict[str, Any]] = []
    for position, score in zip(order.tolist(), scores.tolist(), strict=True):
        if not mask[position]:
            continue
        item = str(prep.items[position])
        if item in excluded:
            continue
        out.append({"item_id": item, "score": round(score, 6), "rank": len(out) + 1})
        if len(out) == k:
            return out
    return out if order.size < AHEAD_ITEMS else None


def _catalogue_top(
    catalogue: Catalogue, k: int, category: str | None, excluded: set[str]
) -> list[dict[str, Any]]:
    state = catalogue.state
    ranked = sorted(
        (
            (score, item)
            for item, score in state.popularity.items()
            if item not in excluded and (category is None or state.category.get(item) == category)
        ),
        key=lambda pair: (-pair[0], pair[1]),
    )[:k]
    return [
        {"item_id": item, "score": round(score, 6), "rank": rank}
        for rank, (score, item) in enumerate(ranked, start=1)
    ]


# ---- propensity ---------------------------------------------------------------------------------


class PropensityScorer:
    """The champion's calibrated probability for one user's online features.

    Scores are cached by (version, feature values): the same features give the same probability,
    and a push or a new day changes the values, so the cache never serves a stale score. A model
    that fails falls back to the mean of what this version served so far (``population_mean``).
    """

    def __init__(self, horizon_days: int, cache_size: int = PROPENSITY_CACHE_SIZE) -> None:
        self.horizon_days = horizon_days
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, float] = OrderedDict()
        self._lock = threading.Lock()
        self._served: dict[int, tuple[float, int]] = {}  # version -> (sum, count)
        self._warmed: tuple[int, int] | None = None  # (version, catalogue token) warmed for

    def warm(self, loaded: LoadedModel | None, catalogue: Catalogue, read_many: BatchReader) -> int:
        """Score every known user's online features in batches when the champion or the day
        changes (the polling thread), so a request whose features did not move since is a cache
        hit; scores put in the cache. A request still reads its user's features: real-time
        counters that moved make another key, scored then."""
        if loaded is None:
            return 0
        key = (loaded.version, catalogue.token)
        if key == self._warmed:
            return 0
        users = catalogue.state.known_users[: self.cache_size]
        warmed = 0
        for start in range(0, len(users), WARM_BATCH_USERS):
            chunk = users[start : start + WARM_BATCH_USERS]
            columns = read_many(chunk, PROPENSITY_SERVICE)
            names = [n for n in columns if n != "user_id"]
            frame = feature_frame(columns["user_id"], {n: columns[n] for n in names}, rows=True)
            scores = loaded.model.predict_proba(frame)[:, 1]
            rows = zip(*(columns[n] for n in names), strict=True)
            with self._lock:
                for values, score in zip(rows, scores.tolist(), strict=True):
                    self._cache[(loaded.version, values)] = float(score)
                    self._cache.move_to_end((loaded.version, values))
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            warmed += len(chunk)
        self._warmed = key
        log.info("serving: propensity v%s scored %d known users ahead", loaded.version, warmed)
        return warmed

    def score(self, models: Mapping[str, LoadedModel], read: FeatureReader, user_id: str) -> Answer:
        loaded = models.get(PROPENSITY)
        values = read(user_id, PROPENSITY_SERVICE)
        features = {k: v for k, v in values.items() if k != "user_id"}
        known = any(v is not None for k, v in features.items() if k not in REALTIME_COLUMNS)
        body: dict[str, Any] = {
            "user_id": user_id,
            "model": PROPENSITY,
            "version": loaded.version if loaded else None,
            "horizon_days": self.horizon_days,
            "strategy": "personalized" if known else "cold-start",
            "realtime": {c: features.get(c) for c in REALTIME_COLUMNS},
        }
        if loaded is None:
            return Answer({**body, "probability": None, "fallback": "no_model"}, "no_model")
        key = (loaded.version, tuple(features.values()))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is None:
            try:
                cached = float(loaded.model.predict_proba(feature_frame(user_id, features))[0, 1])
            except Exception as error:
                log.warning(
                    "serving: propensity v%s failed to score: %s", loaded.version, type(error)
                )
                total, count = self._served.get(loaded.version, (0.0, 0))
                mean = total / count if count else None
                return Answer(
                    {
                        **body,
                        "probability": mean,
                        "strategy": "population_mean",
                        "fallback": "model_error",
                    },
                    "model_error",
                )
            with self._lock:
                self._cache[key] = cached
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                total, count = self._served.get(loaded.version, (0.0, 0))
                self._served[loaded.version] = (total + cached, count + 1)
        answer = Answer({**body, "probability": round(cached, 6), "fallback": None})
        if not known:
            answer.fallback = "cold_start"
        return answer


def feature_frame(user_id: Any, features: Mapping[str, Any], *, rows: bool = False) -> pd.DataFrame:
    """One row of online features with the offline dtypes (numbers as float, nulls as NaN); with
    ``rows=True``, ``user_id`` and each feature are lists, one value per row."""
    import pandas as pd

    if not rows:
        user_id, features = [user_id], {name: [value] for name, value in features.items()}
    columns: dict[str, Any] = {"user_id": list(user_id)}
    for name, values in features.items():
        if _DTYPES.get(name) == "string":
            columns[name] = pd.array(list(values), dtype=object)
        else:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
    return pd.DataFrame(columns)


# ---- segment ------------------------------------------------------------------------------------


def segment(models: Mapping[str, LoadedModel], read: FeatureReader, user_id: str) -> Answer:
    """The published segment (``user_segment``), else the champion's label of the user's online
    activity (a user new since the last publication: ``computed``)."""
    loaded = models.get(SEGMENTATION)
    values = read(user_id, PROPENSITY_SERVICE)
    body: dict[str, Any] = {
        "user_id": user_id,
        "model": SEGMENTATION,
        "version": loaded.version if loaded else None,
    }
    if values.get("segment_id") is not None:
        return Answer(
            {
                **body,
                "segment_id": int(values["segment_id"]),
                "segment_name": values.get("segment_name"),
                "source": "published",
                "fallback": None,
            }
        )
    if loaded is None:
        return Answer(
            {
                **body,
                "segment_id": None,
                "segment_name": None,
                "source": "unknown",
                "fallback": "no_model",
            },
            "no_model",
        )
    features = {k: v for k, v in values.items() if k != "user_id"}
    known = any(v is not None for k, v in features.items() if k not in REALTIME_COLUMNS)
    if not known:
        # no activity online: a customer who never acted (recency "never", no counts), as the
        # features DAG would describe them once they are known
        from pipelines.models.segmentation import INPUT_COLUMNS, RECENCY_FEATURES

        features |= {c: 0 for c in INPUT_COLUMNS if c not in RECENCY_FEATURES}
    try:
        label = int(loaded.model.predict(feature_frame(user_id, features))[0])
        name = loaded.model.segment_names_[label]
    except Exception as error:
        log.warning("serving: segmentation v%s failed: %s", loaded.version, type(error))
        return Answer(
            {
                **body,
                "segment_id": None,
                "segment_name": None,
                "source": "unknown",
                "fallback": "model_error",
            },
            "model_error",
        )
    return Answer(
        {
            **body,
            "segment_id": label,
            "segment_name": name,
            "source": "computed",
            "fallback": None if known else "cold_start",
        },
        None if known else "cold_start",
    )
