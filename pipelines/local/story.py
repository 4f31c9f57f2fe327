"""The platform's life story: a shop's history, then live days with every turn production has.

``make quickstart`` (``personalize story``) generates a synthetic shop with changes planted on
chosen days, backfills its history through ``ingest`` -> ``features`` -> ``train`` and then runs
the live days in order, each scheduled DAG for its day as the scheduler would: the daily
``ingest`` with everything it sets off (``features`` on the curated asset, ``monitor`` on the
features asset, ``train`` when monitoring asks for a retrain) and, on Sundays, the weekly
``train``. Every run is a real Airflow DAG run (``dag.test`` in this process, imports reused).

The scenario (:class:`Scenario`, documented in ``docs/tour.md``) is planted so that each turn
happens deterministically:

* **a broken batch** -- one live day's events carry negative prices: ingest quarantines the whole
  batch with its reason and alerts; the next monitor run alerts the missing feature day (once);
* **drift** -- shoppers move to the new mobile app and prices rise 20 % (covariate drift):
  monitoring sees the device mix and the price level move on the day, alerts, and triggers a
  retrain; the gate blesses or rejects each challenger (auto-promotion on the local profile, and
  for the story's own runs on prod: :func:`story_settings`);
* **a hand promotion gone wrong** -- an ML engineer tries the popularity baseline as recommender
  (``PERSONALIZE_RECOMMENDER_CANDIDATES=popularity personalize train recommender``); the gate
  rejects it and they move ``champion`` to it by hand in the MLflow UI anyway. The platform
  honours the move (audited as manual) and the next day's monitoring scores it live against the
  previous champion in shadow: significantly worse, so it is rolled back automatically;
* **the weekly train** -- on Sunday every model is retrained and gated as scheduled;
* **live traffic** -- a serving API runs through the live days (:mod:`pipelines.local.live`): a
  sample of each day's events goes through ``POST /v1/events`` before the day's DAGs (the nightly
  export holds them too; ingest counts each once), and one new customer's recommendations are
  followed until they change (strategy, items, version).

A week of live days is enough for all of it; labels of the first champions mature on the last
days, so live propensity figures appear too.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.days import day_range
from pipelines.models.catalog import model_names
from pipelines.orchestration.airflow_compat import TaskBodyClock

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.data.generator import ShopSpec
    from pipelines.orchestration.runner import RunEvent, RunRecord

# the first propensity model's temporal split: 7-day labels leave history_days - 7 snapshot days,
# which must hold 1 train day, the 7-day gap, then valid and test days (15 % each, at least 1):
# 9 and from 11 snapshot days on, not 10 (2 valid + 2 test); 11 = 18 history days
MIN_HISTORY_DAYS = 18
WEEKLY_TRAIN_WEEKDAY = 6  # the weekly train (Monday 04:00) covers the week ending on Sunday
TURNS = (
    "quarantine",
    "first champions",
    "drift alert",
    "retrain",
    "gate decision",
    "rollback",
    "live recommendations",
)
# the alerts that show a turn happened (the others are read from the registry and the runs)
TURN_OF_ALERT = {
    "quarantine": "quarantine",
    "drift": "drift alert",
    "retrain": "retrain",
    "rollback": "rollback",
}


@dataclass(frozen=True)
class Scenario:
    """A shop and the days its changes are planted on, counted in live days (1 = first)."""

    users: int = 2000
    items: int = 500
    history_days: int = 30
    live_days: int = 7
    seed: int = 42
    # a Saturday: the history ends on a Sunday, the weekly train's day
    start: date = date(2026, 1, 3)
    broken_day: int = 2
    broken_kind: str = "negative-price"
    drift_day: int = 3
    hand_promotion_day: int = 5

    def __post_init__(self) -> None:
        if self.history_days < MIN_HISTORY_DAYS:
            raise ValueError(
                f"history_days={self.history_days}: the first champions need at least "
                f"{MIN_HISTORY_DAYS} days (7-day labels leave 11 snapshot days for the first "
                "propensity split: 1 train day, the 7-day gap, 2 valid and 2 test days)"
            )
        last_turn = max(self.broken_day, self.drift_day, self.hand_promotion_day + 1)
        if self.live_days < last_turn:
            raise ValueError(
                f"live_days={self.live_days}: the story's turns need {last_turn} live days"
            )

    @property
    def history_end(self) -> date:
        return self.start + timedelta(days=self.history_days - 1)

    def live(self, number: int) -> date:
        """The date of live day ``number`` (1-based)."""
        return self.history_end + timedelta(days=number)

    @property
    def end(self) -> date:
        return self.live(self.live_days)

    def spec(self) -> ShopSpec:
        from pipelines.data.generator import PlantedChange, ShopSpec

        return ShopSpec(
            users=self.users,
            items=self.items,
            days=self.history_days + self.live_days,
            seed=self.seed,
            start=self.start,
            drifts=(PlantedChange("covariate", self.live(self.drift_day)),),
            bad=(PlantedChange(self.broken_kind, self.live(self.broken_day)),),
        )

    def plan(self) -> list[str]:
        """What is planted, in words, for the first lines of the story."""
        return [
            f"history {self.start} .. {self.history_end} ({self.history_days} days), "
            f"live {self.live(1)} .. {self.end} ({self.live_days} days)",
            f"{self.live(self.broken_day)}: the events batch has {self.broken_kind} rows",
            f"{self.live(self.drift_day)}: shoppers move to the new mobile app, prices rise 20 % "
            "(covariate drift)",
            f"{self.live(self.hand_promotion_day)}: an engineer promotes the popularity baseline "
            "recommender by hand, past the gate",
            "Sundays: the weekly train",
        ]


@dataclass
class Story:
    """What happened: per-day runs, the turns seen, models, alerts, paths and timings."""

    scenario: dict[str, Any]
    days: list[dict[str, Any]] = field(default_factory=list)
    turns: dict[str, list[str]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)  # the live traffic (pipelines.local.live)

    @property
    def missing_turns(self) -> list[str]:
        return [turn for turn in TURNS if not self.turns.get(turn)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"missing_turns": self.missing_turns}


StageCallback = Callable[[str], None]


def story_settings(settings: Settings) -> tuple[Settings, str | None]:
    """The settings the story runs on, and a line saying what it changed (None: nothing).

    The story's turns need champions: the first blessed models become champions, and a blessed
    retrain replaces one. The prod profile promotes nobody by itself (``[auto_promote] prod =
    false`` in ``gates.toml``: a blessed challenger waits for a person), so on a fresh prod
    registry no champion would ever be set -- no drift monitoring, no retrain, no rollback. The
    prod story therefore turns auto-promotion on for its own runs, and says so; an explicit
    ``PERSONALIZE_AUTO_PROMOTE`` is kept (``false``: the turns that need a champion are missed).
    """
    if settings.auto_promote is False:
        return settings, (
            "auto_promote is off (PERSONALIZE_AUTO_PROMOTE=false): no blessed model becomes "
            "champion, so the turns that need one (first champions, drift, retrain, rollback) "
            "will be missed"
        )
    if settings.profile != "prod" or settings.auto_promote is not None:
        return settings, None
    return settings.model_copy(update={"auto_promote": True}), (
        "prod: auto-promotion is off (gates.toml [auto_promote] prod = false: a blessed "
        "challenger waits for a person); the story turns it on for its runs "
        "(PERSONALIZE_AUTO_PROMOTE=true), so the first blessed models become champions and "
        "blessed retrains replace them. In production a person promotes them: `personalize "
        "promote MODEL VERSION --reason ...`"
    )


def weekly_train_due(day: date) -> bool:
    return day.weekday() == WEEKLY_TRAIN_WEEKDAY


def tell(
    settings: Settings,
    scenario: Scenario,
    *,
    on_event: Callable[[RunEvent], None] | None = None,
    on_stage: StageCallback | None = None,
) -> Story:
    """Generate the shop, run history and live days through Airflow, and say what happened."""
    from pipelines.data.generator import generate
    from pipelines.orchestration.airflow_env import configure_airflow
    from pipelines.orchestration.runner import airflow_share, run_dag

    stage = on_stage or (lambda _text: None)
    began = time.perf_counter()
    story = Story(scenario=_scenario_dict(scenario))
    records: list[RunRecord] = []

    stage("generating the shop")
    mark = time.perf_counter()
    generate(scenario.spec(), settings)
    story.timing["generate_s"] = round(time.perf_counter() - mark, 2)

    def run_day(day: date, live: bool) -> None:
        alerts_before = _alert_count(settings)
        moves_before = _audit_count(settings)
        day_records = run_dag(settings, "ingest", day, follow=True, on_event=on_event)
        if live and weekly_train_due(day):
            day_records += run_dag(settings, "train", day, follow=True, on_event=on_event)
        if live and day == scenario.live(scenario.hand_promotion_day):
            day_records += _engineer_forces_a_baseline(settings, day, on_event)
        records.extend(day_records)
        story.days.append(
            {
                "day": day.isoformat(),
                "phase": "live" if live else "history",
                "runs": [f"{r.dag_id}:{r.state}" for r in day_records],
                "alerts": _new_alerts(settings, alerts_before),
                "moves": _new_moves(settings, moves_before),
            }
        )

    configure_airflow(settings)  # before anything imports airflow
    with TaskBodyClock() as bodies:
        stage(f"history: {scenario.history_days} days through ingest -> features -> monitor")
        mark = time.perf_counter()
        for day in day_range(scenario.start, scenario.history_end):
            run_day(day, live=False)
        stage("history: first champions (train for the last history day)")
        moves_before = _audit_count(settings)
        records.extend(
            run_dag(settings, "train", scenario.history_end, follow=True, on_event=on_event)
        )
        story.days[-1]["moves"] += _new_moves(settings, moves_before)
        story.timing["history_s"] = round(time.perf_counter() - mark, 2)

        stage(f"live: {scenario.live_days} days, each scheduled DAG for its day")
        mark = time.perf_counter()
        from pipelines.local.live import live_traffic

        with live_traffic(settings, scenario.seed) as traffic:
            stage(f"live: serving API on {traffic.url}, a sample of each day's events posted")
            story.timing["serving_start_s"] = round(time.perf_counter() - mark, 2)
            for day in day_range(scenario.live(1), scenario.end):
                traffic.before_day(settings, day)
                run_day(day, live=True)
                traffic.after_day(settings, day)
        story.live = traffic.summary.to_dict()
        story.timing["live_traffic_s"] = round(sum(d["seconds"] for d in story.live["days"]), 2)
        story.timing["live_s"] = round(time.perf_counter() - mark, 2)

    _summarise(settings, story, records)
    story.timing["wall_s"] = round(time.perf_counter() - began, 2)
    story.timing |= airflow_share(records, bodies)
    out = settings.state_dir / "story" / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    story.paths["summary"] = str(out)
    out.write_text(json.dumps(story.to_dict(), indent=2, default=str) + "\n")
    return story


def _engineer_forces_a_baseline(
    settings: Settings, day: date, on_event: Callable[[RunEvent], None] | None
) -> list[RunRecord]:
    """What an engineer does by hand: train the popularity baseline as recommender, and when
    the gate rejects it, point ``champion`` at it in the MLflow UI (the same registry call)."""
    from pipelines import registry
    from pipelines.orchestration.runner import run_dag

    conf = {"day": day.isoformat(), "models": "recommender"}
    # PERSONALIZE_RECOMMENDER_CANDIDATES=popularity personalize train recommender
    experiment = settings.model_copy(update={"recommender_candidates": "popularity"})
    records = run_dag(experiment, "train", day, conf=conf, follow=True, on_event=on_event)
    baseline = registry.aliases(settings, "recommender").get(registry.CHALLENGER)
    champion = registry.aliases(settings, "recommender").get(registry.CHAMPION)
    if baseline is not None and baseline != champion:
        client = registry.mlflow_client(settings)
        client.set_registered_model_alias("recommender", registry.CHAMPION, str(baseline))
    return records


# ---- what happened ----------------------------------------------------------------------------


def _live_turn(live: dict[str, Any]) -> str | None:
    """The customer's recommendations changed after their events went through the API, and
    every curated live day counted each posted event once."""
    if not live.get("changed") or not live.get("days"):
        return None
    curated = [d for d in live["days"] if d.get("ingest") == "curated"]
    if not curated or not all(d.get("counted_once") for d in curated):
        return None
    before, after = live["before"], live["after"]
    return (
        f"{live['changed_on']} {live['user']}: {before['strategy']} v{before['version']} -> "
        f"{after['strategy']} v{after['version']}"
    )


def _scenario_dict(scenario: Scenario) -> dict[str, Any]:
    return asdict(scenario) | {
        "history_end": scenario.history_end.isoformat(),
        "live_start": scenario.live(1).isoformat(),
        "end": scenario.end.isoformat(),
        "plan": scenario.plan(),
    }


def _alert_count(settings: Settings) -> int:
    from pipelines.alerts.records import read_alerts

    return len(read_alerts(settings.alerts_file))


def _audit_count(settings: Settings) -> int:
    from pipelines.registry import read_audit

    return len(read_audit(settings))


def _new_alerts(settings: Settings, before: int) -> list[dict[str, Any]]:
    from pipelines.alerts.records import read_alerts

    return [
        {k: a.get(k) for k in ("type", "severity", "model", "version", "summary", "report")}
        for a in read_alerts(settings.alerts_file)[before:]
    ]


def _new_moves(settings: Settings, before: int) -> list[dict[str, Any]]:
    from pipelines.registry import read_audit

    keys = ("model", "action", "alias", "from_version", "to_version", "actor", "reason")
    return [{k: m.get(k) for k in keys} for m in read_audit(settings)[before:]]


def _summarise(settings: Settings, story: Story, records: list[RunRecord]) -> None:
    from pipelines import registry

    turns: dict[str, list[str]] = {turn: [] for turn in TURNS}
    for entry in story.days:
        day = entry["day"]
        for alert in entry["alerts"]:
            turn = TURN_OF_ALERT.get(alert["type"])
            if turn is not None:
                turns[turn].append(f"{day} {alert['summary']}")
        for move in entry["moves"]:
            if move["action"] == "rollback" and not any(
                a["type"] == "rollback" for a in entry["alerts"]
            ):
                turns["rollback"].append(f"{day} {move['model']} rolled back")
    retrain_runs = [r for r in records if r.dag_id == "train" and r.reason != "requested"]
    turns["retrain"] += [f"{r.day} train run ({r.reason})" for r in retrain_runs]

    for model in model_names():
        overview = registry.model_overview(settings, model)
        aliases = registry.aliases(settings, model)
        story.models[model] = {
            "aliases": aliases,
            "versions": [
                {k: v[k] for k in ("version", "aliases", "window", "gate", "rolled_back")}
                for v in overview
            ],
            "history": [
                {k: m.get(k) for k in ("ts", "action", "from_version", "to_version", "actor")}
                | {"reason": (m.get("reason") or "")[:160]}
                for m in registry.read_audit(settings, model)
            ],
        }
        first = next((m for m in story.models[model]["history"] if m["from_version"] is None), None)
        if first is not None and first["action"] == "promote":
            turns["first champions"].append(f"{model} champion v{first['to_version']}")
        for version in overview:
            decision = version.get("gate")
            if decision and version.get("version", 0) > 1:
                turns["gate decision"].append(f"{model} v{version['version']}: {decision}")
    if len(turns["first champions"]) < len(model_names()):
        turns["first champions"] = []
    live_turn = _live_turn(story.live)
    turns["live recommendations"] = [live_turn] if live_turn else []
    story.turns = turns
    story.alerts = [
        {"day": e["day"], **a} for e in story.days for a in e["alerts"] if a["type"] != "resolved"
    ]
    from pipelines.validation.gx_runner import build_data_docs_index

    data_docs = build_data_docs_index(settings.state_dir)
    story.paths = {
        "state dir": str(settings.state_dir),
        "reports": str(settings.reports_dir),
        "data docs": data_docs or "none yet",
        "quarantine": str(settings.quarantine_dir),
        "alerts": str(settings.alerts_file),
        "audit": str(settings.audit_file),
    }
    story.timing["alerts_by_type"] = dict(Counter(a["type"] for a in story.alerts))
