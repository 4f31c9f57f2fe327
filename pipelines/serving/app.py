"""The serving API: ``create_app(settings)`` builds it, ``personalize serve`` runs it (uvicorn).

* ``GET /v1/users/{user_id}/recommendations?k=10[&category=..][&exclude=..]`` — top-k items with
  scores, the recommender's version and the ``strategy`` (personalized, buy-again, segment,
  popular; see :mod:`pipelines.serving.scoring`);
* ``GET /v1/users/{user_id}/propensity`` — the calibrated probability of a purchase within the
  model's horizon (``propensity_horizon_days``);
* ``GET /v1/users/{user_id}/segment``;
* ``POST /v1/events`` — one event, ``{"events": [...]}`` or a list (at most
  ``serve_max_batch_events``), validated against the events contract (422 names the field and
  the rule), logged durably under ``landing/serving_events/`` and pushed to the online store's
  real-time counters; 202. Needs ``Authorization: Bearer <serve_token>`` (401 otherwise);
  bodies above ``serve_max_body_bytes`` get 413;
* ``GET /health`` (the process answers), ``GET /ready`` (a model loaded and the online store
  readable; 503 otherwise), ``GET /metrics`` (Prometheus; with several
  workers, the sum over all of them), ``GET /v1/models``; OpenAPI at
  ``/docs``.

No request reads a model from disk or asks the registry: models are held in memory by
:class:`~pipelines.serving.models.ModelHolder`, polled in a background thread. Logs carry counts
and ids of what happened, never an event's payload.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pipelines.data import contract
from pipelines.serving.events import Problem, RealtimeCounters, validate_events
from pipelines.serving.metrics import ServingMetrics, latest, process_exiting, serving_metrics
from pipelines.serving.models import ModelHolder
from pipelines.serving.scoring import (
    PROPENSITY,
    RECOMMENDATIONS_SERVICE,
    Answer,
    Catalogue,
    FeatureReader,
    OnlineFeatures,
    PropensityScorer,
    prepare,
    recommend,
    segment,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from pipelines.config import Settings

log = logging.getLogger(__name__)

MAX_K = 100
MAX_EXCLUDE = 200
UserId = Annotated[str, Path(min_length=1, max_length=contract.ID_MAX_LENGTH)]


@dataclass
class ServingState:
    settings: Settings
    holder: ModelHolder
    catalogue: Catalogue
    propensity: PropensityScorer
    counters: RealtimeCounters
    metrics: ServingMetrics
    read: FeatureReader


class BodyTooLarge(Exception):
    pass


def create_app(
    settings: Settings, *, holder: ModelHolder | None = None, poll: bool = True
) -> FastAPI:
    """The API on ``settings``' state dir; ``poll=False`` loads the champions once at start and
    leaves refreshing to whoever calls ``app.state.serving.holder.refresh()`` (tests, bench)."""
    settings.ensure_dirs()
    metrics = serving_metrics()
    catalogue = Catalogue(settings)
    features = OnlineFeatures(settings)

    def publish_versions(current: ModelHolder) -> None:
        for name, loaded in current.snapshot().items():
            metrics.model_version.labels(name).set(loaded.version)
        metrics.registry_up.set(1 if current.registry.reachable else 0)

    if holder is None:
        holder = ModelHolder(settings, prepare=prepare)
    holder.add_refresh_callback(catalogue.refresh)
    holder.add_refresh_callback(publish_versions, every_poll=True)
    state = ServingState(
        settings=settings,
        holder=holder,
        catalogue=catalogue,
        propensity=PropensityScorer(settings.propensity_horizon_days),
        counters=RealtimeCounters(settings.state_dir / "serving" / "realtime.db"),
        metrics=metrics,
        read=features,
    )

    def warm_propensity(current: ModelHolder) -> None:
        state.propensity.warm(current.get(PROPENSITY), catalogue, features.many)

    holder.add_refresh_callback(features.refresh)
    holder.add_refresh_callback(warm_propensity)  # after the catalogue's reload

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(holder.refresh)
        if not holder.ready:
            log.warning("serving: no model loaded yet (%s); polling", holder.registry.error)
        if poll:
            holder.start()
        try:
            yield
        finally:
            holder.stop()
            process_exiting(metrics)

    app = FastAPI(
        title="personalize serving",
        version="1",
        description=(
            "Recommendations, purchase propensity and segments of the @champion models, and "
            "real-time events. Write endpoints need `Authorization: Bearer <serve_token>`."
        ),
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(Observe, metrics=metrics, max_body=settings.serve_max_body_bytes)

    def answer(endpoint: str, result: Answer) -> dict[str, Any]:
        result.body["fallback"] = result.fallback
        if result.fallback is not None:
            metrics.fallbacks.labels(endpoint, result.fallback).inc()
        return result.body

    # ---- reads --------------------------------------------------------------------------------

    async def compute(work: Callable[[], Answer]) -> Answer:
        """In memory (models, catalogue, local SQLite reads): on the event loop, no thread
        hop; a networked online store (Redis): in the thread pool."""
        if features.direct:
            return work()
        return await run_in_threadpool(work)

    @app.get("/v1/users/{user_id}/recommendations", tags=["users"])
    async def recommendations(
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = 10,
        category: Annotated[
            str | None, Query(max_length=200, description="Only items of this category.")
        ] = None,
        exclude: Annotated[
            list[str] | None,
            Query(description="Item ids to leave out (repeat, or comma-separated)."),
        ] = None,
    ) -> dict[str, Any]:
        """Top-k items for the user, best first, with the strategy that chose them."""
        left_out = [i.strip() for part in exclude or [] for i in part.split(",") if i.strip()]
        if len(left_out) > MAX_EXCLUDE:
            raise HTTPException(422, f"exclude: at most {MAX_EXCLUDE} item ids")
        result = await compute(
            lambda: recommend(
                holder.snapshot(), catalogue, state.read, user_id, k, category, left_out
            )
        )
        return answer("recommendations", result)

    @app.get("/v1/users/{user_id}/propensity", tags=["users"])
    async def propensity(user_id: UserId) -> dict[str, Any]:
        """Probability that the user buys within the model's horizon (calibrated)."""
        result = await compute(
            lambda: state.propensity.score(holder.snapshot(), state.read, user_id)
        )
        return answer("propensity", result)

    @app.get("/v1/users/{user_id}/segment", tags=["users"])
    async def user_segment(user_id: UserId) -> dict[str, Any]:
        """The user's customer segment (published, or computed from today's activity)."""
        result = await compute(lambda: segment(holder.snapshot(), state.read, user_id))
        return answer("segment", result)

    # ---- events ------------------------------------------------------------------------------

    def require_token(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = settings.serve_token
        if (
            not expected
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(token.strip().encode(), expected.encode())
        ):
            metrics.events_rejected.labels("unauthorized").inc()
            detail = (
                "writes are disabled: set PERSONALIZE_SERVE_TOKEN on the server"
                if not expected
                else "send Authorization: Bearer <serve_token>"
            )
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})

    @app.post(
        "/v1/events",
        status_code=202,
        tags=["events"],
        dependencies=[Depends(require_token)],
        openapi_extra={"requestBody": _events_request_body(settings.serve_max_batch_events)},
    )
    async def post_events(request: Request) -> JSONResponse:
        """Accept events (contract `events`): log them durably, update real-time features."""
        try:
            body = await _read_body(request, settings.serve_max_body_bytes)
        except BodyTooLarge:
            metrics.events_rejected.labels("too_large").inc()
            return _too_large(settings.serve_max_body_bytes)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            metrics.events_rejected.labels("invalid").inc()
            why = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
            problem = Problem(("body",), "a JSON document", f"not JSON ({why})")
            return JSONResponse({"detail": [problem.to_dict()]}, status_code=422)
        events, problems = validate_events(payload, settings.serve_max_batch_events)
        if problems:
            metrics.events_rejected.labels("invalid").inc()
            log.info("serving: refused %d event problem(s)", len(problems))
            return JSONResponse({"detail": [p.to_dict() for p in problems]}, status_code=422)
        result = await run_in_threadpool(_accept, state, events)
        status = 202 if result.get("logged") else 503
        return JSONResponse(result, status_code=status)

    # ---- operations --------------------------------------------------------------------------

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    def ready() -> JSONResponse:
        """Ready when at least one model is loaded and the online store can be read."""
        problems = []
        if not holder.ready:
            problems.append(f"no model loaded ({holder.registry.error or 'no champion yet'})")
        try:
            state.read("__ready__", RECOMMENDATIONS_SERVICE)
        except Exception as error:
            problems.append(f"online store unreadable: {type(error).__name__}: {error}"[:300])
        body = {
            "ready": not problems,
            "problems": problems,
            "models": {n: m.version for n, m in holder.snapshot().items()},
        }
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics", tags=["operations"])
    def prometheus() -> Response:
        """Prometheus metrics: this process's, or every worker's summed (``--workers N``)."""
        return Response(latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", tags=["operations"])
    def models() -> dict[str, Any]:
        """Which versions are served, under which alias, and how the registry polls go."""
        return {
            "models": {n: m.describe() for n, m in holder.snapshot().items()},
            "expected": list(holder.names),
            "poll_seconds": holder.poll_seconds,
            "registry": holder.registry.describe(),
            "catalogue_day": catalogue.state.day,
        }

    return app


def app_from_environment() -> FastAPI:
    """The uvicorn factory of ``personalize serve``: settings from ``PERSONALIZE_*``."""
    from pipelines.config import get_settings

    return create_app(get_settings())


# ---- events ------------------------------------------------------------------------------------


def _accept(state: ServingState, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Log (durably) first, then count and push: an acknowledged event is never lost."""
    from pipelines.data.event_log import append_events
    from pipelines.features.online import push_realtime

    try:
        days = append_events(state.settings.landing_dir, events)
    except OSError as error:
        log.error("serving: cannot log %d event(s): %s", len(events), type(error).__name__)
        return {"accepted": 0, "logged": False, "error": "the event log cannot be written"}
    pushed, error_text = 0, None
    try:
        pushed = push_realtime(state.settings, state.counters.record(events))
    except Exception as error:  # logged durably: the next batch or the daily ingest catches up
        error_text = f"{type(error).__name__}"
        log.warning("serving: %d event(s) logged but not pushed: %s", len(events), error_text)
    state.metrics.events_pushed.inc(len(events) if error_text is None else 0)
    return {
        "accepted": len(events),
        "logged": True,
        "days": {d.isoformat(): n for d, n in sorted(days.items())},
        "realtime_rows": pushed,
        "push_error": error_text,
    }


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body larger than {limit} bytes (serve_max_body_bytes)"},
        status_code=413,
    )


def _events_request_body(max_events: int) -> dict[str, Any]:
    """OpenAPI of the events body, from the contract (what the handler validates)."""
    kinds = {
        "id": {"type": "string", "maxLength": contract.ID_MAX_LENGTH},
        "string": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "float": {"type": "number"},
        "int": {"type": "integer"},
        "bool": {"type": "boolean"},
    }
    properties = {}
    for column in contract.EVENTS.columns:
        schema: dict[str, Any] = {**kinds[column.kind], "description": column.description}
        if column.allowed:
            schema["enum"] = list(column.allowed)
        if column.min_value is not None:
            key = "exclusiveMinimum" if column.exclusive_min else "minimum"
            schema[key] = column.min_value
        if column.max_value is not None:
            schema["maximum"] = column.max_value
        if column.nullable:
            schema = {"anyOf": [schema, {"type": "null"}], "description": column.description}
        properties[column.name] = schema
    event = {
        "type": "object",
        "properties": properties,
        "required": [c.name for c in contract.EVENTS.columns if not c.nullable],
        "description": "One event of the events contract; " + "; ".join(contract.EVENTS.rules),
    }
    batch = {"type": "array", "items": event, "minItems": 1, "maxItems": max_events}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        event,
                        {"type": "object", "properties": {"events": batch}, "required": ["events"]},
                        batch,
                    ]
                }
            }
        },
    }


# ---- middleware --------------------------------------------------------------------------------


class Observe:
    """Pure ASGI: refuse a declared body above the limit (413), and count and time every
    request by its route template (``/v1/users/{user_id}/recommendations``, never the id)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                response = _too_large(self.max_body)
                await response(scope, receive, send)
                self._observe(scope, 413, started)
                return

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._observe(scope, status["code"], started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(template, scope["method"], str(status)).inc()
        self.metrics.latency.labels(template).observe(time.perf_counter() - started)
