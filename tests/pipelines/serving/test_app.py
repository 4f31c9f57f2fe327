"""The serving API on real champions and the real online store of a small generated shop.

Known, cold-start and unknown users get answers that say how they were made; an event pushed
changes the next answer's real-time features and lands in the day's log; bad, oversized and
unauthenticated writes are refused with the reason; an alias moved under load drops no request;
a registry outage keeps the last models serving. The models, MLflow and Feast are real; the one
stand-in is a recommender that raises, to prove a failing model falls back.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.event_log import read_event_log
from pipelines.features.offline import read_offline_partition, write_offline_partition
from pipelines.registry import CHAMPION, load_version, mlflow_client, promote
from pipelines.serving import models as serving_models
from pipelines.serving.app import create_app
from pipelines.serving.models import LoadedModel, ModelHolder
from pipelines.serving.scoring import feature_frame, prepare
from pipelines.serving.testing import running_server

from .conftest import TOKEN, Shop

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(shop: Shop) -> Iterator[TestClient]:
    with TestClient(create_app(shop.settings, poll=False)) as test_client:
        yield test_client


def _event(**changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"e-{time.monotonic_ns()}",
        "user_id": "u000001",
        "item_id": "i00002",
        "event_type": "view",
        "event_ts": datetime.now(UTC).isoformat(),
        "quantity": 1,
        "device": "web",
    }
    return {**event, **changes}


def _holder(client: TestClient):
    return client.app.state.serving.holder


def _known_and_cold(client: TestClient) -> tuple[str, str]:
    prepared = _holder(client).get("recommender").prepared
    settings = client.app.state.serving.settings
    segments = pd.read_parquet(settings.feast_offline_dir / "user_segment")
    cold = sorted(set(segments["user_id"]) - set(prepared.user_rows))
    return sorted(prepared.user_rows)[0], cold[0]


# ---- reads -----------------------------------------------------------------------------------


def test_ready_with_the_champions_loaded(client: TestClient, shop: Shop) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.json()
    models = client.get("/v1/models").json()
    for name, version in shop.champions.items():
        assert models["models"][name]["version"] == version
        assert models["models"][name]["alias"] == "champion"
    assert "/v1/users/{user_id}/recommendations" in client.get("/openapi.json").json()["paths"]


def test_a_known_user_gets_the_champions_personal_list(client: TestClient, shop: Shop) -> None:
    known, _ = _known_and_cold(client)
    body = client.get(f"/v1/users/{known}/recommendations", params={"k": 5}).json()
    assert body["strategy"] in ("personalized", "buy-again"), body
    assert body["source"] == "precomputed" and body["fallback"] is None
    assert body["version"] == shop.champions["recommender"]
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)

    # filters: a category and excluded items, scored by the loaded model
    catalogue = client.app.state.serving.catalogue.state
    category = catalogue.category[body["items"][0]["item_id"]]
    first = body["items"][0]["item_id"]
    filtered = client.get(
        f"/v1/users/{known}/recommendations",
        params={"k": 3, "category": category, "exclude": first},
    ).json()
    assert filtered["items"] and first not in {i["item_id"] for i in filtered["items"]}
    assert {catalogue.category[i["item_id"]] for i in filtered["items"]} == {category}


def test_a_cold_start_user_gets_their_segments_bestsellers(client: TestClient) -> None:
    _, cold = _known_and_cold(client)
    body = client.get(f"/v1/users/{cold}/recommendations", params={"k": 4}).json()
    assert body["strategy"] == "segment", body
    assert body["fallback"] == "unknown_user" and len(body["items"]) == 4
    segment = client.get(f"/v1/users/{cold}/segment").json()
    assert segment["source"] == "published" and segment["segment_id"] == body["segment_id"]


def test_an_unknown_user_gets_popular_items_a_probability_and_a_segment(
    client: TestClient,
) -> None:
    body = client.get("/v1/users/never-seen-42/recommendations", params={"k": 3}).json()
    assert body["strategy"] == "popular" and body["fallback"] == "unknown_user"
    assert len(body["items"]) == 3
    propensity = client.get("/v1/users/never-seen-42/propensity").json()
    assert propensity["strategy"] == "cold-start" and 0.0 <= propensity["probability"] <= 1.0
    segment = client.get("/v1/users/never-seen-42/segment").json()
    assert segment["source"] == "computed" and segment["segment_name"]
    metrics = client.get("/metrics").text
    assert 'personalize_fallbacks_total{endpoint="recommendations",reason="unknown_user"}' in (
        metrics
    )


def test_propensity_is_a_probability_within_the_models_horizon(
    client: TestClient, shop: Shop
) -> None:
    known, _ = _known_and_cold(client)
    body = client.get(f"/v1/users/{known}/propensity").json()
    assert body["version"] == shop.champions["propensity"]
    assert body["horizon_days"] == shop.settings.propensity_horizon_days
    assert 0.0 <= body["probability"] <= 1.0 and body["strategy"] == "personalized"


def test_known_users_are_answered_from_memory(client: TestClient, monkeypatch) -> None:
    """The published top-k is held in memory and every known user's propensity is scored at
    load: a known user's request neither reads recommendations_v1 nor runs the model."""
    state = client.app.state.serving
    known, _ = _known_and_cold(client)
    assert (
        state.catalogue.state.recommendations[known][0]
        == _holder(client).get("recommender").version
    )
    read = state.read

    def no_recommendations_read(user_id: str, service: str) -> dict[str, Any]:
        assert service != "recommendations_v1", "read the online store for a held top-k"
        return read(user_id, service)

    monkeypatch.setattr(state, "read", no_recommendations_read)
    body = client.get(f"/v1/users/{known}/recommendations", params={"k": 5}).json()
    assert body["source"] == "precomputed" and len(body["items"]) == 5

    loaded = _holder(client).get("propensity")
    features = {k: v for k, v in read(known, "propensity_v1").items() if k != "user_id"}
    expected = float(loaded.model.predict_proba(feature_frame(known, features))[0, 1])

    class NoScoring:
        def predict_proba(self, *_: Any) -> Any:
            raise AssertionError("scored a known user's unchanged features per request")

    holder = _holder(client)
    holder.put(LoadedModel("propensity", loaded.version, NoScoring(), loaded.loaded_at))
    try:
        answer = client.get(f"/v1/users/{known}/propensity").json()
    finally:
        holder.put(loaded)
    assert answer["fallback"] is None and answer["probability"] == pytest.approx(
        round(expected, 6), abs=1e-6
    )


def test_a_version_without_published_lists_answers_from_its_scored_ahead_lists(
    client: TestClient, shop: Shop
) -> None:
    """A recommender swapped in without published top-k (an alias moved by hand) scored its
    known users' best items at load time: the answers are those of scoring the whole catalogue
    per request, filters included, without scoring per request."""
    settings = client.app.state.serving.settings
    holder = _holder(client)
    served = holder.get("recommender")
    model = load_version(settings, "recommender", shop.next_recommender)
    prepared = prepare("recommender", model)
    assert prepared.ahead and set(prepared.ahead) <= set(prepared.user_rows)
    users = sorted(prepared.user_rows)[:40]
    category = next(c for c in client.app.state.serving.catalogue.state.category.values() if c)
    queries = [{"k": 10}, {"k": 100}, {"k": 5, "category": category},
               {"k": 5, "exclude": ",".join(prepared.items[:30])}]  # fmt: skip

    def answers(ahead: dict) -> list[Any]:
        version = LoadedModel("recommender", shop.next_recommender, model, served.loaded_at,
                              dataclasses.replace(prepared, ahead=ahead))  # fmt: skip
        holder.put(version)
        return [
            client.get(f"/v1/users/{user}/recommendations", params=query).json()
            for user in users
            for query in queries
        ]

    try:
        whole = answers({})
        scored = []
        score_items = model.score_items
        model.score_items = lambda *a, **kw: scored.append(a) or score_items(*a, **kw)
        ahead = answers(prepared.ahead)
    finally:
        model.score_items = score_items
        holder.put(served)
    assert {a["source"] for a in ahead} == {"model"}
    assert ahead == whole
    assert scored == []  # no request scored the catalogue


def test_an_item_no_longer_listed_is_never_returned(client: TestClient, shop: Shop) -> None:
    known, _ = _known_and_cold(client)
    top = client.get(f"/v1/users/{known}/recommendations", params={"k": 5}).json()["items"]
    gone = top[0]["item_id"]
    settings = shop.settings
    day = shop.last_day + timedelta(days=1)
    items = read_offline_partition(settings.feast_offline_dir, "item_popularity", shop.last_day)
    listed = items[items["item_id"] != gone].assign(
        event_timestamp=items["event_timestamp"] + pd.Timedelta(days=1)
    )
    write_offline_partition(settings.feast_offline_dir, "item_popularity", day, listed)
    _holder(client).refresh()  # the polling thread's job: reloads the catalogue

    for user in (known, "never-seen-42"):
        body = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        assert gone not in {i["item_id"] for i in body["items"]}, body
        assert len(body["items"]) == 10


def test_a_recommender_that_fails_to_score_falls_back_and_counts_it(client: TestClient) -> None:
    class Broken:
        """Stands in for a corrupt model: every score raises."""

        def __init__(self, model: Any) -> None:
            self.__dict__.update(model.__dict__)

        def score_items(self, *_: Any) -> Any:
            raise FloatingPointError("corrupt weights")

    holder = _holder(client)
    held = holder.get("recommender")
    broken_prepared = prepare("recommender", Broken(held.model))  # loads: nothing scored ahead
    assert broken_prepared.ahead == {}
    holder.put(LoadedModel("recommender", held.version, held.model, held.loaded_at,
                           broken_prepared))  # fmt: skip
    try:
        known, _ = _known_and_cold(client)
        body = client.get(f"/v1/users/{known}/recommendations", params={"k": 90}).json()
        assert body["strategy"] == "popular" and body["fallback"] == "model_error", body
        assert body["items"]
        assert 'reason="model_error"' in client.get("/metrics").text
    finally:
        holder.put(held)


# ---- events ----------------------------------------------------------------------------------


def test_a_pushed_event_changes_the_next_answers_features_and_is_logged(
    client: TestClient, shop: Shop
) -> None:
    user = "u000003"
    before = client.get(f"/v1/users/{user}/propensity").json()["realtime"]["rt_views_1h"] or 0
    events = [_event(user_id=user), _event(user_id=user, event_type="add_to_cart", price=9.5)]
    accepted = client.post("/v1/events", json={"events": events}, headers=AUTH)
    assert accepted.status_code == 202, accepted.json()
    assert accepted.json()["accepted"] == 2

    after = client.get(f"/v1/users/{user}/propensity").json()["realtime"]
    assert after["rt_views_1h"] == before + 1 and after["rt_carts_1h"] >= 1

    day = datetime.fromisoformat(events[0]["event_ts"]).date()
    logged = read_event_log(shop.settings.landing_dir, day)
    assert set(events[i]["event_id"] for i in (0, 1)) <= set(logged["event_id"])
    assert str(logged["event_ts"].dtype) == contract.EVENTS.column("event_ts").pandas_dtype
    assert "personalize_events_pushed_total" in client.get("/metrics").text


def test_the_propensity_cache_is_keyed_by_the_inputs_so_a_push_changes_the_answer(
    client: TestClient,
) -> None:
    """The trained champion ignores rt_* (never seen in training), so a stand-in whose score is
    the views counter shows the cache scoring moved counters anew, not serving a user's old
    probability."""

    class ByViews:
        def predict_proba(self, frame: pd.DataFrame) -> Any:
            views = frame["rt_views_1h"].fillna(0).to_numpy()
            p = 1.0 - 1.0 / (2.0 + views)
            return np.column_stack([1.0 - p, p])

    holder = _holder(client)
    loaded = holder.get("propensity")
    holder.put(LoadedModel("propensity", loaded.version + 1000, ByViews(), loaded.loaded_at))
    try:
        user = "u000005"
        first = client.get(f"/v1/users/{user}/propensity").json()
        assert client.get(f"/v1/users/{user}/propensity").json() == first  # cached, same
        accepted = client.post("/v1/events", json=_event(user_id=user), headers=AUTH)
        assert accepted.status_code == 202, accepted.json()
        second = client.get(f"/v1/users/{user}/propensity").json()
    finally:
        holder.put(loaded)
    views = second["realtime"]["rt_views_1h"]
    assert views == (first["realtime"]["rt_views_1h"] or 0) + 1
    assert second["probability"] == pytest.approx(round(1.0 - 1.0 / (2.0 + views), 6))
    assert second["probability"] != first["probability"]


def test_a_bad_event_is_refused_naming_the_field_and_the_rule(client: TestClient) -> None:
    refused = client.post(
        "/v1/events",
        json={"events": [_event(), _event(event_type="click"), _event(event_type="purchase")]},
        headers=AUTH,
    )
    assert refused.status_code == 422
    problems = {p["field"]: p["rule"] for p in refused.json()["detail"]}
    assert problems["events[1].event_type"].startswith("one of ['view'")
    assert problems["events[2].price"] == "add_to_cart and purchase rows carry a price"

    one = client.post("/v1/events", json=_event(quantity=0), headers=AUTH)
    assert one.status_code == 422 and one.json()["detail"][0]["field"] == "quantity"
    naive = client.post("/v1/events", json=_event(event_ts="2026-02-01T10:00:00"), headers=AUTH)
    assert naive.json()["detail"][0]["rule"] == "an ISO 8601 timestamp with a timezone"
    too_many = client.post("/v1/events", json=[_event() for _ in range(51)], headers=AUTH)
    assert too_many.status_code == 422 and "at most 50" in too_many.json()["detail"][0]["rule"]


def test_an_oversized_body_gets_413_declared_or_streamed(client: TestClient) -> None:
    big = b'{"events": [' + b" " * (17 * 1024) + b"]}"
    assert client.post("/v1/events", content=big, headers=AUTH).status_code == 413
    chunks = iter([big[:8000], big[8000:]])  # no Content-Length: counted while read
    assert client.post("/v1/events", content=chunks, headers=AUTH).status_code == 413


def test_a_write_without_the_token_gets_401(client: TestClient) -> None:
    assert client.post("/v1/events", json=_event()).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/v1/events", json=_event(), headers=wrong).status_code == 401
    assert 'reason="unauthorized"' in client.get("/metrics").text


# ---- model lifecycle -------------------------------------------------------------------------


def test_an_alias_swap_under_concurrent_requests_drops_none(shop: Shop) -> None:
    settings = shop.settings.model_copy(update={"serve_poll_seconds": 0.2})
    old, new = shop.champions["recommender"], shop.next_recommender
    statuses: list[int] = []
    versions: set[int] = set()
    stop = threading.Event()

    def hammer(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            n = 0
            while not stop.is_set():
                user = f"u{n % 300:06d}"
                response = http.get(f"/v1/users/{user}/recommendations", params={"k": 5})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["version"])
                n += 1

    with running_server(create_app(settings)) as base:
        threads = [threading.Thread(target=hammer, args=(base,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        promote(settings, "recommender", new, actor="test", reason="swap under load",
                require_blessed=False)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            served = httpx.get(f"{base}/v1/models").json()["models"]["recommender"]["version"]
            if served == new:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        after = httpx.get(f"{base}/v1/users/u000001/recommendations").json()
        metrics = httpx.get(f"{base}/metrics").text

    assert statuses and set(statuses) == {200}, set(statuses)
    assert versions == {old, new}
    assert after["version"] == new and after["source"] == "model"  # precomputed lists are v1's
    assert f'personalize_model_version{{model="recommender"}} {float(new)}' in metrics


def test_a_poll_looks_up_the_aliases_only_until_one_moves(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The polling thread's tick: alias lookups, nothing loaded and no catalogue / registry
    callbacks while nothing moved; a moved alias is loaded and prepared before the swap, and the
    callbacks run then (or when ``dependents_seconds`` passed)."""
    settings = shop.settings
    loads: list[int] = []
    real_load = serving_models.registry_load

    def counted_load(settings: Settings, name: str, version: int) -> Any:
        loads.append(version)
        return real_load(settings, name, version)

    monkeypatch.setattr(serving_models, "registry_load", counted_load)
    holder = ModelHolder(settings, ["recommender"], prepare=prepare, dependents_seconds=3600)
    ran: list[str] = []
    holder.add_refresh_callback(lambda _: ran.append("dependents"))
    holder.add_refresh_callback(lambda _: ran.append("every poll"), every_poll=True)
    holder.refresh()
    champion = holder.get("recommender").version
    other = (
        shop.next_recommender
        if champion != shop.next_recommender
        else shop.champions["recommender"]
    )
    assert ran == ["dependents", "every poll"] and loads == [champion]

    ran.clear()
    assert holder.poll_once() == {} and holder.poll_once() == {}
    assert ran == ["every poll", "every poll"] and loads == [champion]  # lookups only

    client = mlflow_client(settings)
    client.set_registered_model_alias("recommender", CHAMPION, str(other))
    try:
        ran.clear()
        assert holder.poll_once() == {"recommender": (champion, other)}
        assert ran == ["dependents", "every poll"] and loads == [champion, other]
        swapped = holder.get("recommender")
        assert swapped.version == other and swapped.prepared is not None  # prepared before
    finally:
        client.set_registered_model_alias("recommender", CHAMPION, str(champion))
    holder.dependents_seconds = 0.0  # due: the callbacks run without a move too
    ran.clear()
    assert holder.poll_once() == {"recommender": (other, champion)}
    holder.poll_once()
    assert ran == ["dependents", "every poll"] * 2


def test_a_registry_outage_keeps_the_last_models_serving(
    client: TestClient, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    holder = _holder(client)
    served = {n: m.version for n, m in holder.snapshot().items()}
    unreachable = shop.settings.model_copy(update={"mlflow_uri": "http://127.0.0.1:9"})
    holder.registry_settings = unreachable
    try:
        assert holder.refresh() == {}
        assert holder.registry.reachable is False and holder.registry.error
        assert {n: m.version for n, m in holder.snapshot().items()} == served
        assert client.get("/ready").status_code == 200
        body = client.get("/v1/users/u000001/recommendations").json()
        assert body["version"] == served["recommender"]
        assert client.get("/v1/models").json()["registry"]["reachable"] is False
    finally:
        holder.registry_settings = shop.settings
        holder.refresh()


def test_without_any_model_serving_is_not_ready_but_answers(shop: Shop, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    settings: Settings = shop.settings.model_copy(update={"mlflow_uri": "http://127.0.0.1:9"})
    with TestClient(create_app(settings, poll=False)) as cold_client:
        ready = cold_client.get("/ready")
        assert ready.status_code == 503 and "no model loaded" in ready.json()["problems"][0]
        body = cold_client.get("/v1/users/u000001/recommendations", params={"k": 3}).json()
        assert body["strategy"] == "popular" and body["fallback"] == "no_model"
        assert len(body["items"]) == 3


# ---- end to end: the log reaches curated -----------------------------------------------------


def test_events_accepted_for_a_day_are_curated_by_that_days_ingest(
    client: TestClient, shop: Shop
) -> None:
    """The day's ingest validates the landed export and the serving log as one batch (same
    suite), an event both hold counted once: an accepted event is curated (or quarantined)."""
    from pipelines.data.partitions import partition_dir
    from pipelines.validation.batch import landed_files
    from pipelines.validation.ingest import ingest_table

    settings, day = shop.settings, shop.last_day
    landed = pd.concat(
        pd.read_parquet(f) for f in landed_files(settings.landing_dir, "events", day)
    )
    sample = landed.iloc[0]
    stamp = (pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=23)).isoformat()
    new = [
        _event(event_id="live-1", user_id=sample["user_id"], item_id=sample["item_id"],
               event_ts=stamp),
        _event(event_id="live-2", user_id=sample["user_id"], item_id=sample["item_id"],
               event_ts=stamp, event_type="add_to_cart", price=4.0),
        _event(event_id=sample["event_id"], user_id=sample["user_id"],
               item_id=sample["item_id"], event_ts=stamp),  # the export has it too
    ]  # fmt: skip
    accepted = client.post("/v1/events", json=new, headers=AUTH)
    assert accepted.status_code == 202 and accepted.json()["days"] == {day.isoformat(): 3}

    result = ingest_table(settings, "events", day)
    assert result.status == "loaded" and result.rows == len(landed) + 2
    curated = pd.read_parquet(partition_dir(settings.curated_dir, "events", day))
    assert {"live-1", "live-2"} <= set(curated["event_id"])
    assert (curated["event_id"] == sample["event_id"]).sum() == 1
    assert curated["event_id"].is_unique
    lineage = (partition_dir(settings.curated_dir, "events", day) / "_validation.json").read_text()
    assert "serving_events" in lineage  # the log is named among the batch's files
