"""The train DAG's job: for each model of the catalogue, data in, registered and gated version out.

The ``train`` DAG calls one function per task: :func:`train_for_run` (the model spec's
``build_run`` builds the training data, fits and evaluates; the run is logged to MLflow and
registered as ``challenger``), :func:`gate_for_run` (score challenger
and champion on the challenger's fresh holdout and bless or reject), :func:`promote_for_run`
(carry the gate's decision out) and :func:`publish_segments_for_run`. The same functions back
``personalize train``. Every model resolves ``@champion`` at the moment it is used, so an alias
moved by hand in the MLflow UI is what the next gate compares against.

Each training run stores, beside the model, its *holdout* (``holdout/``: the test rows, or the
test interactions and the history they must be novel to) so that a gate — now or re-run later —
judges challenger and champion on exactly the same data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.models.catalog import UnknownModel, model_names, spec_of
from pipelines.models.runs import (
    RECOMMEND_K,
    NotEnoughHistory,
    TrainingError,
    champion_model,
    last_feature_day,
    load_holdout,
)
from pipelines.registry import CHAMPION

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.gates import GateRecord

log = logging.getLogger(__name__)

__all__ = ["NotEnoughHistory", "TrainingError", "last_feature_day"]  # raised and used by callers


@dataclass(frozen=True)
class TrainedModel:
    model: str
    version: int
    run_id: str
    end_day: date
    metrics: dict[str, float]

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "end_day": self.end_day.isoformat()}


# ---- days -------------------------------------------------------------------------------------


def model_requested(model: str, context: Mapping[str, Any]) -> bool:
    """A run's conf may name the models to train (``{"models": ["propensity"]}``); default all."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    known = model_names()
    wanted = conf.get("models") or list(known)
    if isinstance(wanted, str):  # a triggered run's templated conf: "propensity,recommender"
        wanted = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise TrainingError(f"unknown model(s) {unknown} in the run conf; expected {known}")
    return model in wanted


def train_day(settings: Settings, context: Mapping[str, Any]) -> date:
    """The conf day, else the last day with features (a weekly run trains on all it has)."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("day"):
        from pipelines.days import parse_day

        return parse_day(conf["day"])
    return last_feature_day(settings)


# ---- DAG task bodies --------------------------------------------------------------------------


def train_for_run(model: str, context: Mapping[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from pipelines.config import get_settings

    if not model_requested(model, context):
        # skipped, with its gate and promotion after it: nothing of this model is touched
        raise AirflowSkipException(f"{model} is not among the models this run's conf names")
    settings = get_settings()
    try:
        return train_model(settings, model, train_day(settings, context)).to_xcom()
    except NotEnoughHistory as young:
        # a retrain asked for on a shop with a week of history is not an incident: the task is
        # skipped with the reason, the champion stays, and the next run tries again
        raise AirflowSkipException(str(young)) from young


def gate_for_run(model: str, trained: Mapping[str, Any] | None) -> dict[str, Any] | None:
    from pipelines.config import get_settings

    if not trained:
        return None
    return gate_version(get_settings(), model, int(trained["version"])).to_dict()


def promote_for_run(model: str, gated: Mapping[str, Any] | None) -> dict[str, Any] | None:
    from pipelines.config import get_settings
    from pipelines.gates import GateRecord

    if not gated:
        return None
    return carry_out_gate(get_settings(), GateRecord.from_dict(dict(gated)))


def publish_segments_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    from pipelines.config import get_settings

    settings = get_settings()
    return publish_segments(settings, train_day(settings, context))


def models_event_extra(context: Mapping[str, Any]) -> dict[str, Any]:
    from pipelines.config import get_settings
    from pipelines.registry import aliases

    settings = get_settings()
    return {
        "day": train_day(settings, context).isoformat(),
        "champions": {m: aliases(settings, m).get(CHAMPION) for m in model_names()},
    }


# ---- training ---------------------------------------------------------------------------------


def train_model(settings: Settings, model: str, end: date | None = None) -> TrainedModel:
    """Train ``model`` on the window ending with ``end`` and register it as ``challenger``."""
    from pipelines.registry import log_and_register

    try:
        spec = spec_of(model)
    except UnknownModel as unknown:
        raise TrainingError(str(unknown)) from None
    end = end or last_feature_day(settings)
    run = spec.build_run(settings, end)
    registered = log_and_register(settings, run)
    log.info("registered %s v%s (run %s)", model, registered.version, registered.run_id)
    return TrainedModel(model, registered.version, registered.run_id, end, dict(run.metrics))


# ---- gate and promotion -----------------------------------------------------------------------


def gate_version(settings: Settings, model: str, version: int) -> GateRecord:
    """Bless or reject ``model`` v``version`` against thresholds and the current champion."""
    from pipelines import registry
    from pipelines.gates import bless, load_gate_config_for

    registry.reconcile_manual_moves(settings, model)
    challenger_run = registry.mlflow_client(settings).get_model_version(model, str(version)).run_id
    holdout = load_holdout(settings, model, challenger_run)
    spec = spec_of(model)
    challenger = registry.load_version(settings, model, version)
    challenger_scores = spec.score_holdout(challenger, holdout)
    champion_version = registry.aliases(settings, model).get(CHAMPION)
    champion_scores, stability = None, None
    if champion_version is not None and champion_version != version:
        champion = registry.load_version(settings, model, champion_version)
        champion_scores = spec.score_holdout(champion, holdout)
        if spec.stability is not None:
            stability = spec.stability(challenger, champion, holdout)
    record = bless(
        model,
        load_gate_config_for(settings),
        challenger_scores,
        champion_scores,
        stability=stability,
        challenger_version=version,
        champion_version=champion_version if champion_version != version else None,
    )
    registry.tag_version(settings, model, version, record.to_tags())
    registry.describe_version(settings, model, version, record.to_markdown())
    return record


def carry_out_gate(settings: Settings, record: GateRecord) -> dict[str, Any]:
    """Promote a blessed challenger (when auto-promotion is on), or say why not."""
    from pipelines import registry
    from pipelines.gates import load_gate_config_for, promotion_action

    config = load_gate_config_for(settings)[record.model]
    decision = promotion_action(record, config.auto_promote)
    outcome = {
        "model": record.model,
        "version": record.challenger_version,
        "action": decision.action,
        "reason": decision.reason,
    }
    if decision.action == "promote":
        move = registry.promote(
            settings,
            record.model,
            int(record.challenger_version),
            actor="train",
            reason=decision.reason,
            gate=record.to_dict(),
        )
        outcome["from_version"] = move.from_version if move else None
    return outcome


def publish_segments(settings: Settings, day: date) -> dict[str, Any]:
    """Write the segmentation champion's labels for ``day`` to the ``user_segment`` view."""
    from pipelines.days import end_of_day
    from pipelines.features.offline import read_offline_partition, write_offline_partition
    from pipelines.features.online import materialize_interval
    from pipelines.models.segmentation import segment_labels

    model = champion_model(settings, "segmentation")
    if model is None:
        return {"day": day.isoformat(), "published": 0, "reason": "no segmentation champion yet"}
    frame = read_offline_partition(settings.feast_offline_dir, "user_activity", day)
    if frame is None or frame.empty:
        return {"day": day.isoformat(), "published": 0, "reason": f"no user_activity for {day}"}
    labels = segment_labels(model, frame)
    write_offline_partition(settings.feast_offline_dir, "user_segment", day, labels)
    written = materialize_interval(
        settings,
        end_of_day(day) - timedelta(days=1),
        end_of_day(day) + timedelta(seconds=1),
        tables=["user_segment"],
    )
    return {"day": day.isoformat(), "published": int(written.get("user_segment", 0))}


def publish_recommendations(settings: Settings, day: date, k: int = RECOMMEND_K) -> dict[str, Any]:
    """Top-k of the recommender's champion for every known user, into ``user_recommendations``.

    Written as the day's offline partition (a record of what was served) and materialized
    online, where serving reads it through the ``recommendations_v1`` service.
    """
    import pandas as pd

    from pipelines.days import end_of_day
    from pipelines.features.offline import read_curated_window, write_offline_partition
    from pipelines.features.online import materialize_interval
    from pipelines.registry import RegistryError, aliases, load_version

    version = aliases(settings, "recommender").get(CHAMPION)
    if version is None:
        raise RegistryError("recommender has no champion yet: `personalize train recommender`")
    model = load_version(settings, "recommender", version)
    _, users, _ = read_curated_window(settings.curated_dir, day, days=1)
    user_ids = sorted(users["user_id"].astype(str).unique())
    if not user_ids:
        raise TrainingError(f"no curated users up to {day}: ingest some days first")
    recs = model.recommend(user_ids, k=k)
    recs = recs.assign(user_id=recs["user_id"].astype(str), item_id=recs["item_id"].astype(str))
    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    grouped = recs.groupby("user_id", sort=True)
    frame = pd.DataFrame(
        {
            "user_id": list(grouped.groups),
            "event_timestamp": pd.Timestamp(end_of_day(day)),
            "recommended_item_ids": grouped["item_id"].agg(",".join).to_numpy(),
            "recommended_scores": grouped["score"]
            .agg(lambda s: ",".join(f"{v:.5g}" for v in s))
            .to_numpy(),
            "recommender_version": version,
        }
    )
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    write_offline_partition(settings.feast_offline_dir, "user_recommendations", day, frame)
    written = materialize_interval(
        settings,
        end_of_day(day) - timedelta(days=1),
        end_of_day(day) + timedelta(seconds=1),
        tables=["user_recommendations"],
    )
    return {
        "day": day.isoformat(),
        "version": version,
        "users": len(frame),
        "online_rows": int(written.get("user_recommendations", 0)),
    }


def day_report(settings: Settings, day: date) -> list[str]:
    """After a train run for ``day``: per model, the version trained, the gate and the aliases."""
    from pipelines.registry import aliases, versions

    lines = []
    for model in model_names():
        trained = [
            v for v in versions(settings, model) if v.tags.get("data.window_end") == day.isoformat()
        ]
        if not trained:
            continue
        latest = trained[0]
        current = aliases(settings, model)
        gate = latest.tags.get("gate.decision", "not gated")
        reason = latest.tags.get("gate.reason", "")
        champion = current.get(CHAMPION)
        lines.append(
            f"{model} v{latest.version}: {gate} — {reason} | champion "
            + (f"v{champion}" if champion is not None else "none")
        )
    return lines
