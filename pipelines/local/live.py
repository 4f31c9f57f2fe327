"""The story's live traffic: a sample of each live day's events through the real serving API.

During the story's live days a serving app (:func:`pipelines.serving.app.create_app`, uvicorn on a
free 127.0.0.1 port in a thread of the story's process) answers as it would in the shop. Before a
day's DAGs run, a sample of that day's landed events is sent through ``POST /v1/events`` -- as the
shop's site would have sent them while the day went on -- so they land in the serving log and the
real-time counters. The nightly export holds the same events: the day's ingest merges the log into
the export by ``event_id`` (:func:`pipelines.validation.ingest.with_serving_log`), and
:meth:`LiveTraffic.after_day` checks that each event was curated once.

One customer is followed: the most active of the first live day's customers that the served
recommender does not know yet. Their recommendations are read before their first events are sent,
then after every day's runs (the served models refreshed as the poller would within
``serve_poll_seconds``); the first answer that differs -- strategy, version or items -- is the
story's turn ``live recommendations``. Every answer of the API is counted per endpoint and status
(``LiveSummary.responses``).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    import pandas as pd
    from fastapi import FastAPI

    from pipelines.config import Settings

SAMPLE_EVENTS = 200  # per live day, besides the followed customer's own
SHOWN_ITEMS = 5


@dataclass(frozen=True)
class Recommendation:
    """What the API answered for the followed customer (the parts a person compares)."""

    strategy: str
    version: int | None
    items: tuple[str, ...]
    fallback: str | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.strategy, self.version, self.items)

    def line(self) -> str:
        version = f"recommender v{self.version}" if self.version is not None else "no recommender"
        return f"{self.strategy:<12} {version:<16} {' '.join(self.items)}"


@dataclass
class LiveSummary:
    """What the live traffic did: per day, events posted and how ingest counted them; the
    followed customer's answers."""

    url: str = ""
    user: str | None = None
    user_first_day: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    changed_on: str | None = None
    realtime_before: dict[str, Any] = field(default_factory=dict)
    realtime_after: dict[str, Any] = field(default_factory=dict)
    user_events: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)
    # every answer of the API: "GET /v1/users/{user}/propensity 200" -> count
    responses: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.changed_on is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"changed": self.changed}


class LiveTraffic:
    """Sends each live day's sample through the API and follows one customer (see module)."""

    def __init__(self, app: FastAPI, url: str, token: str, client: httpx.Client, seed: int):
        self.app = app
        self.url = url
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seed = seed
        self.summary = LiveSummary(url=url)
        self._export_rows: dict[date, int] = {}
        self._posted_ids: dict[date, set[str]] = {}
        self._last: Recommendation | None = None

    # ---- the API ---------------------------------------------------------------------------

    def recommendations(self, user: str) -> Recommendation:
        response = self.client.get(
            f"{self.url}/v1/users/{user}/recommendations", params={"k": SHOWN_ITEMS}
        )
        response.raise_for_status()
        body = response.json()
        return Recommendation(
            strategy=body["strategy"],
            version=body.get("version"),
            items=tuple(item["item_id"] for item in body["items"]),
            fallback=body.get("fallback"),
        )

    def realtime(self, user: str) -> dict[str, Any]:
        response = self.client.get(f"{self.url}/v1/users/{user}/propensity")
        response.raise_for_status()
        return dict(response.json().get("realtime") or {})

    def post(
        self, events: list[dict[str, Any]], batch: int
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """POST ``events`` in requests of at most ``batch``; an event the API refuses (422, the
        contract) is left out and the rest of its request sent again. Returns (event ids
        accepted, problems of the refused events)."""
        accepted: list[str] = []
        refused: list[dict[str, Any]] = []
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            while chunk:
                response = self.client.post(
                    f"{self.url}/v1/events", json={"events": chunk}, headers=self.headers
                )
                if response.status_code == 202:
                    if int(response.json()["accepted"]) != len(chunk):
                        raise RuntimeError(f"POST /v1/events: {response.json()}")
                    accepted += [event["event_id"] for event in chunk]
                    break
                if response.status_code != 422:
                    response.raise_for_status()
                problems = response.json()["detail"]
                bad = {p["loc"][2] for p in problems if len(p["loc"]) > 2}
                if not bad:  # a problem with the request as a whole: nothing to leave out
                    raise RuntimeError(f"POST /v1/events refused the batch: {problems}")
                # the column, not the position in the request: one line per broken rule
                refused += [
                    {"field": p["field"].rsplit(".", 1)[-1], "rule": p["rule"]} for p in problems
                ]
                chunk = [event for i, event in enumerate(chunk) if i not in bad]
        return accepted, refused

    def refresh_models(self) -> None:
        """What the alias poller does every ``serve_poll_seconds``, now: the story's day is done."""
        self.app.state.serving.holder.refresh()

    # ---- the days --------------------------------------------------------------------------

    def before_day(self, settings: Settings, day: date) -> None:
        """Choose the customer to follow (first live day), read their answer, send the sample."""
        started = time.perf_counter()
        landed = _landed_events(settings, day)
        self._export_rows[day] = len(landed)
        if self.summary.user is None and not landed.empty:
            self.summary.user = self._newcomer(landed)
            self.summary.user_first_day = day.isoformat()
            self._last = self.recommendations(self.summary.user)
            self.summary.before = asdict(self._last)
            self.summary.realtime_before = self.realtime(self.summary.user)
        events = self._sample(landed, day)
        accepted, refused = self.post(events, settings.serve_max_batch_events)
        self._posted_ids[day] = set(accepted)
        mine = sum(e["user_id"] == self.summary.user for e in events)
        if mine and not self.summary.realtime_after:
            self.summary.user_events = mine
            self.summary.realtime_after = self.realtime(self.summary.user)
        self.summary.days.append(
            {
                "day": day.isoformat(),
                "posted": len(events),
                "accepted": len(accepted),
                "refused": len(refused),
                "refused_rules": sorted({f"{p['field']}: {p['rule']}" for p in refused}),
                "seconds": round(time.perf_counter() - started, 3),
                "export_rows": len(landed),
            }
        )

    def after_day(self, settings: Settings, day: date) -> None:
        """Count what the day's ingest curated; refresh the models; read the customer's answer."""
        started = time.perf_counter()
        entry = self.summary.days[-1]
        curated = _curated_event_ids(settings, day)
        if curated is None:
            # the export waits in quarantine; the posted events wait in the day's log, which a
            # release validates again with it
            entry["ingest"] = "quarantined"
        else:
            posted = self._posted_ids.get(day, set())
            entry["ingest"] = "curated"
            entry["curated_rows"] = len(curated)
            entry["posted_curated"] = int(curated.isin(posted).sum())
            # every posted event is also in the export: curated once each, none added
            entry["counted_once"] = bool(
                curated.is_unique and len(curated) == self._export_rows.get(day)
            )
        self.refresh_models()
        if self.summary.user is not None and self._last is not None and not self.summary.changed:
            now = self.recommendations(self.summary.user)
            if now.key != self._last.key:
                self.summary.after = asdict(now)
                self.summary.changed_on = day.isoformat()
        entry["seconds"] = round(entry["seconds"] + time.perf_counter() - started, 3)

    def _newcomer(self, landed: pd.DataFrame) -> str:
        """The most active customer of the day whom the served recommender does not know (a
        newcomer gets a fallback today), else the most active one."""
        loaded = self.app.state.serving.holder.get("recommender")
        known = set(getattr(getattr(loaded, "prepared", None), "user_rows", {}) or {})
        counts = landed["user_id"].astype(str).value_counts()
        ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
        for user, _ in ranked:
            if user not in known:
                return user
        return ranked[0][0]

    def _sample(self, landed: pd.DataFrame, day: date) -> list[dict[str, Any]]:
        if landed.empty:
            return []
        mine = landed["user_id"].astype(str) == (self.summary.user or "")
        others = landed[~mine]
        size = min(SAMPLE_EVENTS, len(others))
        picked = others.sample(n=size, random_state=self.seed + day.toordinal())
        import pandas as pd

        frame = pd.concat([landed[mine], picked]).sort_values("event_ts", kind="stable")
        return [_event_json(row) for row in frame.to_dict("records")]


def _landed_events(settings: Settings, day: date) -> pd.DataFrame:
    import pandas as pd

    from pipelines.data.partitions import parquet_files, partition_dir

    files = parquet_files(partition_dir(settings.landing_dir, "events", day))
    if not files:
        return pd.DataFrame(columns=["event_id", "user_id", "event_ts"])
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _curated_event_ids(settings: Settings, day: date) -> pd.Series | None:
    import pandas as pd

    from pipelines.data.partitions import parquet_files, partition_dir

    files = parquet_files(partition_dir(settings.curated_dir, "events", day))
    if not files:
        return None
    frames = [pd.read_parquet(f, columns=["event_id"]) for f in files]
    return pd.concat(frames, ignore_index=True)["event_id"].astype(str)


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    """One landed row as the JSON a shop's site posts: the contract's columns, ISO timestamps,
    nulls as null."""
    from pipelines.data import contract

    out: dict[str, Any] = {}
    for name in contract.EVENTS.column_names:
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[name] = None
        elif hasattr(value, "isoformat"):
            out[name] = value.isoformat()
        elif hasattr(value, "item"):  # numpy scalar
            out[name] = value.item()
        else:
            out[name] = value
        if out[name] is not None and str(out[name]) in ("NaT", "<NA>"):
            out[name] = None
    return out


@contextmanager
def live_traffic(settings: Settings, seed: int) -> Iterator[LiveTraffic]:
    """A serving app on ``settings``' state dir on a free 127.0.0.1 port, with a token of its own
    for the story's writes; the models are refreshed by :meth:`LiveTraffic.refresh_models`
    (after each day) rather than by the polling thread, so the story stays deterministic."""
    import httpx

    from pipelines.serving.app import create_app
    from pipelines.serving.testing import running_server

    token = secrets.token_urlsafe(24)
    app = create_app(settings.model_copy(update={"serve_token": token}), poll=False)
    responses: dict[str, int] = {}

    def count(response: httpx.Response) -> None:
        key = f"{response.request.method} {_route(response.request.url.path)} "
        key += str(response.status_code)
        responses[key] = responses.get(key, 0) + 1

    hooks = {"response": [count]}
    with running_server(app) as url, httpx.Client(timeout=60.0, event_hooks=hooks) as client:
        traffic = LiveTraffic(app, url, token, client, seed)
        traffic.summary.responses = responses
        yield traffic


def _route(path: str) -> str:
    """``/v1/users/u42/propensity`` -> ``/v1/users/{user}/propensity``: one key per endpoint."""
    parts = path.split("/")
    if len(parts) > 3 and parts[2] == "users":
        parts[3] = "{user}"
    return "/".join(parts)
