"""MLflow: training runs, registered versions, aliases and the audit trail of every alias move.

``gates`` decides, this module carries the decision out. Three aliases matter per registered model:

* ``challenger`` — the newest version that went through training (blessed or not);
* ``champion`` — what runs. Everything in the platform resolves ``models:/<name>@champion`` at use
  time, so moving the alias by hand in the MLflow UI changes what runs, with no other step;
* ``previous_champion`` — what ``champion`` pointed at before the last promotion: the rollback
  target.

MLflow keeps no history of alias moves, so every move — by the platform, or found to have been done
by hand — is appended to ``<home>/audit.jsonl``. Moves hold a lock (a file lock in the state dir)
so two promotions cannot interleave, and ``champion`` is moved with one alias update: a reader sees
the old version or the new one, never none.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo

    from pipelines.config import Settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"
TRAINING_EXPERIMENT = "personalize-training"
MONITORING_EXPERIMENT = "personalize-monitoring"
REPO_ROOT = Path(__file__).resolve().parent.parent
# What a logged model needs to be loaded again: the lock's versions of these, pinned.
MODEL_REQUIREMENTS = (
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "pyarrow",  # the pyfunc models' ids and frames are parquet files
    "skops",
    "cloudpickle",
)
MAX_TAG_LENGTH = 5000


class RegistryError(Exception):
    """A registry operation that cannot be carried out, with what to do instead."""


# ---- connection -------------------------------------------------------------------------------


def mlflow_client(settings: Settings) -> MlflowClient:
    """A client on the settings' tracking and registry store (URI set here, not at import)."""
    import mlflow
    from mlflow import MlflowClient

    settings.ensure_dirs()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def experiment_id(settings: Settings, name: str = TRAINING_EXPERIMENT) -> str:
    """The experiment's id, created with its artifacts under the state dir on first use."""
    client = mlflow_client(settings)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # through a tracking server the server decides (its --artifacts-destination, proxied to every
    # client as mlflow-artifacts:/); on a local store the artifacts live under the state dir
    location = (
        None
        if settings.mlflow_through_server
        else f"{settings.mlflow_artifact_root.rstrip('/')}/{name}"
    )
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def pinned_requirements(packages: Sequence[str] = MODEL_REQUIREMENTS) -> list[str]:
    """``pip_requirements`` for ``log_model`` from the installed (locked) versions: no inference."""
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


# ---- lineage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lineage:
    """Where a model's training data came from: curated partitions, their hash and GX runs."""

    window_start: date
    window_end: date
    partitions: tuple[str, ...]
    content_hash: str
    gx_run_ids: tuple[str, ...]
    feature_service: str | None = None
    source: str = ""  # the curated dir the partitions are relative to

    @property
    def feature_service_version(self) -> str | None:
        if not self.feature_service:
            return None
        _, _, version = self.feature_service.rpartition("_v")
        return version or None

    def tags(self) -> dict[str, str]:
        tags = {
            "data.window_start": self.window_start.isoformat(),
            "data.window_end": self.window_end.isoformat(),
            "data.partitions": str(len(self.partitions)),
            "data.content_hash": self.content_hash,
            "gx.validation_runs": str(len(self.gx_run_ids)),
            "gx.last_run_id": self.gx_run_ids[-1] if self.gx_run_ids else "none",
        }
        if self.feature_service:
            tags["feast.feature_service"] = self.feature_service
            tags["feast.feature_service_version"] = self.feature_service_version or "unknown"
        return tags

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "window_start": str(self.window_start),
            "window_end": str(self.window_end),
        }


def curated_lineage(
    settings: Settings,
    start: date,
    end: date,
    tables: Sequence[str] = ("events", "users", "items"),
    feature_service: str | None = None,
) -> Lineage:
    """The curated partitions of ``tables`` for days in [start, end], hashed by content."""
    from pipelines.data.partitions import parquet_files, partition_days, partition_dir
    from pipelines.validation.ingest import VALIDATION_FILE

    digest = hashlib.sha256()
    partitions, run_ids = [], []
    for table in tables:
        for day in partition_days(settings.curated_dir, table):
            if not start <= day <= end:
                continue
            directory = partition_dir(settings.curated_dir, table, day)
            partitions.append(str(directory.relative_to(settings.curated_dir)))
            for path in parquet_files(directory):
                digest.update(path.name.encode())
                with path.open("rb") as handle:
                    for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                        digest.update(chunk)
            validation = directory / VALIDATION_FILE
            if validation.exists():
                run_id = json.loads(validation.read_text()).get("gx_run_id")
                if run_id:
                    run_ids.append(str(run_id))
    return Lineage(
        window_start=start,
        window_end=end,
        partitions=tuple(partitions),
        content_hash=digest.hexdigest(),
        gx_run_ids=tuple(run_ids),
        feature_service=feature_service,
        source=str(settings.curated_dir),
    )


# ---- training runs ----------------------------------------------------------------------------


@dataclass
class TrainingRun:
    """Everything one training run logs; ``log_model(name)`` logs the model in its flavour."""

    model: str
    log_model: Callable[[str], ModelInfo]
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)  # file name -> matplotlib Figure
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # artifact path -> frame
    texts: Mapping[str, str] = field(default_factory=dict)  # file name -> text
    model_card: str = ""
    reference_sample: pd.DataFrame | None = None
    training_frame: pd.DataFrame | None = None  # a sample of it is logged as the mlflow dataset
    lineage: Lineage | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegisteredVersion:
    model: str
    version: int
    run_id: str
    log_model_and_register_s: float = 0.0  # the model itself, its version and alias

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


REFERENCE_SAMPLE = "reference/reference_sample.parquet"


def log_and_register(settings: Settings, run: TrainingRun) -> RegisteredVersion:
    """Log ``run`` to MLflow, register its model as a new version and point ``challenger`` at it."""
    import mlflow

    client = mlflow_client(settings)
    experiment = experiment_id(settings)
    commit = git_commit()
    lineage_tags = run.lineage.tags() if run.lineage else {}
    run_tags = {
        "model": run.model,
        "mlflow.source.git.commit": commit,
        "git.commit": commit,
        **lineage_tags,
        **run.tags,
    }
    if run.model_card:
        run_tags["mlflow.note.content"] = run.model_card[:MAX_TAG_LENGTH]
    with mlflow.start_run(experiment_id=experiment, run_name=f"{run.model}-train") as active:
        mlflow.set_tags(run_tags)
        mlflow.log_params({k: _param(v) for k, v in run.params.items()})
        mlflow.log_metrics(
            {_metric_name(k): float(v) for k, v in run.metrics.items() if _finite(v)}
        )
        _log_dataset(run)
        _log_artifacts(run)
        started = time.perf_counter()
        info = run.log_model(run.model)
    version = _register(client, run.model, info.model_uri, active.info.run_id, lineage_tags, commit)
    client.set_registered_model_alias(run.model, CHALLENGER, str(version))
    seconds = time.perf_counter() - started
    return RegisteredVersion(run.model, version, active.info.run_id, round(seconds, 3))


def _register(
    client: MlflowClient,
    model: str,
    source: str,
    run_id: str,
    lineage_tags: Mapping[str, str],
    commit: str,
) -> int:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            model, description=f"personalize {model} model; aliases champion / challenger."
        )
    except MlflowException as error:
        if "RESOURCE_ALREADY_EXISTS" not in str(error.error_code):
            raise
    # MLflow 3 logged models: a tracking server accepts a models:/m-<id> source only with its id
    logged = source.removeprefix("models:/") if source.startswith("models:/m-") else None
    created = client.create_model_version(
        model,
        source,
        run_id=run_id,
        tags={**lineage_tags, "git.commit": commit},
        model_id=logged,
    )
    return int(created.version)


def _log_dataset(run: TrainingRun) -> None:
    import mlflow

    if run.training_frame is None or run.lineage is None:
        return
    lineage = run.lineage
    dataset = mlflow.data.from_pandas(
        run.training_frame.head(1000),
        source=lineage.source or None,
        name=f"{run.model}-training-{lineage.window_start}-{lineage.window_end}",
        digest=lineage.content_hash[:32],
    )
    mlflow.log_input(dataset, context="training", tags={"partitions": str(len(lineage.partitions))})
    mlflow.log_text(json.dumps(lineage.to_dict(), indent=2), "lineage/lineage.json")


def _log_artifacts(run: TrainingRun) -> None:
    import tempfile

    import matplotlib.pyplot as plt
    import mlflow

    for name, figure in run.figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plt.close(figure)
    for name, text in run.texts.items():
        mlflow.log_text(text, name)
    if run.model_card:
        mlflow.log_text(run.model_card, "model_card.md")
    with tempfile.TemporaryDirectory() as scratch:
        for name, frame in run.tables.items():
            path = Path(scratch) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
            parent = str(Path(name).parent)
            mlflow.log_artifact(str(path), None if parent == "." else parent)
        if run.reference_sample is not None:
            path = Path(scratch) / Path(REFERENCE_SAMPLE).name
            run.reference_sample.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), str(Path(REFERENCE_SAMPLE).parent))


def load_reference_sample(settings: Settings, model: str, alias: str = CHAMPION) -> pd.DataFrame:
    """The features + predictions of the training window stored with ``model@alias``."""
    import mlflow
    import pandas as pd

    version = version_by_alias(settings, model, alias)
    if version is None:
        raise RegistryError(f"{model} has no {alias}: train it first (`personalize train {model}`)")
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=version.run_id,
            artifact_path=REFERENCE_SAMPLE,
            tracking_uri=settings.mlflow_tracking_uri,
        )
    except MlflowException as error:
        raise RegistryError(
            f"{model} v{version.version} (run {version.run_id}) has no {REFERENCE_SAMPLE}: it was "
            "not trained by the train DAG; drift cannot be judged until a trained version is "
            f"champion ({error.message[:200]})"
        ) from None
    return pd.read_parquet(path)


def load_version(settings: Settings, model: str, version: int) -> Any:
    """``model`` v``version`` as the native object the platform calls (``.recommend``,
    ``.predict``...): an sklearn-flavoured model as itself, a pyfunc one unwrapped — the
    platform's pyfunc models keep the object they rebuilt from their files as ``native``."""
    import mlflow

    mlflow_client(settings)
    uri = f"models:/{model}/{version}"
    flavors = mlflow.models.get_model_info(uri).flavors
    if "sklearn" in flavors:  # propensity, and versions logged before the pyfunc models
        return mlflow.sklearn.load_model(uri)
    python_model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    native = getattr(python_model, "native", None)
    return python_model if native is None else native


# ---- versions and aliases ---------------------------------------------------------------------


def version_by_alias(settings: Settings, model: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    try:
        return client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return None


def aliases(settings: Settings, model: str) -> dict[str, int]:
    """``{alias: version}`` of a registered model ({} when it does not exist yet)."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    try:
        registered = client.get_registered_model(model)
    except MlflowException:
        return {}
    return {alias: int(version) for alias, version in registered.aliases.items()}


def alias_version(
    settings: Settings, model: str, alias: str = CHAMPION, client: MlflowClient | None = None
) -> int | None:
    """The version ``model@alias`` points at; None when the model or the alias does not exist.

    Unlike :func:`aliases`, a registry that cannot answer (a server down, a broken database)
    raises :class:`RegistryError` instead of reading as "no model yet": serving keeps its last
    good models on an outage, but drops nothing because of one. One alias lookup when the alias
    exists (serving polls this: cheaper than reading the registered model); pass
    ``client`` to reuse one.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        INVALID_PARAMETER_VALUE,
        RESOURCE_DOES_NOT_EXIST,
        ErrorCode,
    )

    client = client or mlflow_client(settings)
    missing = {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE)}

    def cannot_answer(error: Exception) -> RegistryError:
        return RegistryError(
            f"the registry at {settings.mlflow_tracking_uri} cannot answer for {model}: {error}"
        )

    try:
        return int(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as error:
        if error.error_code not in missing:
            raise cannot_answer(error) from error
    except Exception as error:
        raise cannot_answer(error) from error
    # no such model or no such alias (the alias lookup does not say which): ask the model
    try:
        registered = client.get_registered_model(model)
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise cannot_answer(error) from error
    except Exception as error:
        raise cannot_answer(error) from error
    version = registered.aliases.get(alias)
    return None if version is None else int(version)


def versions(settings: Settings, model: str) -> list[ModelVersion]:
    """Every version of ``model``, newest first."""
    client = mlflow_client(settings)
    found = client.search_model_versions(f"name = '{model}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def tag_version(settings: Settings, model: str, version: int, tags: Mapping[str, str]) -> None:
    client = mlflow_client(settings)
    for key, value in tags.items():
        client.set_model_version_tag(model, str(version), key, str(value)[:MAX_TAG_LENGTH])


def describe_version(settings: Settings, model: str, version: int, description: str) -> None:
    mlflow_client(settings).update_model_version(model, str(version), description=description)


# ---- audit trail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AliasMove:
    """One line of ``audit.jsonl``: an alias of a model moved from one version to another."""

    model: str
    alias: str
    action: str  # promote | rollback | manual
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    gate: Mapping[str, Any] | None = None
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_audit(settings: Settings, model: str | None = None) -> list[dict[str, Any]]:
    path = settings.audit_file
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if model is None or r.get("model") == model]


def _append_audit(settings: Settings, move: AliasMove) -> None:
    settings.audit_file.parent.mkdir(parents=True, exist_ok=True)
    with settings.audit_file.open("a") as handle:
        handle.write(json.dumps(move.to_dict(), default=str) + "\n")
    summary = f"{move.ts} {move.action} {move.alias} v{move.from_version}->v{move.to_version}"
    mlflow_client(settings).set_registered_model_tag(
        move.model, "audit.last", f"{summary} by {move.actor}: {move.reason}"[:MAX_TAG_LENGTH]
    )


@contextmanager
def alias_lock(settings: Settings, model: str) -> Iterator[None]:
    """Serialise alias moves of one model across threads and processes on this machine."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / f".registry-{model}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_known_champion(settings: Settings, model: str) -> int | None:
    for record in reversed(read_audit(settings, model)):
        if record.get("alias") == CHAMPION:
            return record.get("to_version")
    return None


def reconcile_manual_moves(
    settings: Settings, model: str, actor: str = "mlflow-ui"
) -> AliasMove | None:
    """Record a champion move done outside the platform (the MLflow UI) as a ``manual`` move.

    The audit trail knows where the platform last put ``champion``; if the registry now says
    otherwise, somebody moved it by hand. That is honoured: the move is logged and the version it
    replaced becomes ``previous_champion``, so a rollback can undo it.
    """
    with alias_lock(settings, model):
        return _reconcile(settings, model, actor)


def _reconcile(settings: Settings, model: str, actor: str) -> AliasMove | None:
    current = aliases(settings, model).get(CHAMPION)
    known = _last_known_champion(settings, model)
    if current == known:
        return None
    client = mlflow_client(settings)
    if known is not None and current is not None:
        client.set_registered_model_alias(model, PREVIOUS, str(known))
    move = AliasMove(
        model=model,
        alias=CHAMPION,
        action="manual",
        from_version=known,
        to_version=current,
        actor=actor,
        reason="champion alias moved outside the platform (detected)",
    )
    _append_audit(settings, move)
    return move


def promote(
    settings: Settings,
    model: str,
    version: int,
    *,
    actor: str,
    reason: str,
    gate: Mapping[str, Any] | None = None,
    require_blessed: bool = True,
) -> AliasMove | None:
    """Make ``version`` the champion; the one it replaces becomes ``previous_champion``.

    Idempotent (promoting the champion again does nothing and returns None). With
    ``require_blessed`` the version's ``gate.decision`` tag is re-read under the lock, so a
    concurrent promotion can never leave ``champion`` on a version the gate rejected.
    """
    client = mlflow_client(settings)
    with alias_lock(settings, model):
        _reconcile(settings, model, "mlflow-ui")
        target = client.get_model_version(model, str(version))
        if require_blessed and target.tags.get("gate.decision") != "blessed":
            raise RegistryError(
                f"{model} v{version} is not blessed by the gate "
                f"(gate.decision={target.tags.get('gate.decision', 'missing')}); "
                f"promote it by hand in the MLflow UI if you mean to override the gate"
            )
        current = aliases(settings, model).get(CHAMPION)
        if current == version:
            return None
        if current is not None:
            client.set_registered_model_alias(model, PREVIOUS, str(current))
        # one alias update: readers see the old champion or the new one, never none
        client.set_registered_model_alias(model, CHAMPION, str(version))
        move = AliasMove(model, CHAMPION, "promote", current, version, actor, reason, gate)
        _append_audit(settings, move)
        return move


def rollback(
    settings: Settings,
    model: str,
    *,
    to_version: int | None = None,
    reason: str,
    actor: str,
) -> AliasMove:
    """Move ``champion`` back to ``previous_champion`` (or ``to_version``) and tag the demoted one.

    Afterwards ``previous_champion`` points at whatever preceded the restored version in the audit
    trail, so rollbacks can walk back through history; with no history left it is removed and a
    further rollback fails with a message saying so.
    """
    from mlflow.exceptions import MlflowException

    from pipelines.gates import rollback_target

    client = mlflow_client(settings)
    with alias_lock(settings, model):
        _reconcile(settings, model, "mlflow-ui")
        current_aliases = aliases(settings, model)
        current = current_aliases.get(CHAMPION)
        if current is None:
            raise RegistryError(f"{model} has no champion: nothing to roll back")
        target = rollback_target(model, current, current_aliases.get(PREVIOUS), to_version)
        try:
            client.get_model_version(model, str(target))
        except MlflowException:
            raise RegistryError(
                f"{model} has no version {target}: `personalize models {model}` lists them"
            ) from None
        client.set_registered_model_alias(model, CHAMPION, str(target))
        before_target = _champion_before(settings, model, target)
        if before_target is not None and before_target != target:
            client.set_registered_model_alias(model, PREVIOUS, str(before_target))
        else:
            client.delete_registered_model_alias(model, PREVIOUS)
        stamp = datetime.now(UTC).isoformat()
        tag_version(
            settings,
            model,
            current,
            {"rolled_back": "true", "rollback.reason": reason, "rollback.ts": stamp},
        )
        move = AliasMove(model, CHAMPION, "rollback", current, target, actor, reason)
        _append_audit(settings, move)
        return move


def _champion_before(settings: Settings, model: str, version: int) -> int | None:
    """The champion that ``version`` replaced the last time it was promoted (by any means)."""
    for record in reversed(read_audit(settings, model)):
        if (
            record.get("alias") == CHAMPION
            and record.get("action") in ("promote", "manual")
            and record.get("to_version") == version
        ):
            return record.get("from_version")
    return None


def _metric_name(name: str) -> str:
    """MLflow allows alphanumerics, ``_ - . : /`` and spaces in names; ``ease(l2=50)`` is not."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]+", "_", name).strip("_")


def _param(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:6000]


def _finite(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number == number and number not in (float("inf"), float("-inf"))


# ---- overview ---------------------------------------------------------------------------------


def model_overview(settings: Settings, model: str, limit: int = 20) -> list[dict[str, Any]]:
    """Per version, newest first: aliases, creation time, data window, gate decision, metrics."""
    client = mlflow_client(settings)
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases(settings, model).items():
        by_version.setdefault(version, []).append(alias)
    rows = []
    for found in versions(settings, model)[:limit]:
        version = int(found.version)
        metrics = client.get_run(found.run_id).data.metrics if found.run_id else {}
        tags = found.tags or {}
        window = f"{tags.get('data.window_start', '?')}..{tags.get('data.window_end', '?')}"
        rows.append(
            {
                "version": version,
                "aliases": sorted(by_version.get(version, [])),
                "created": datetime.fromtimestamp(found.creation_timestamp / 1000, UTC).isoformat(),
                "window": window,
                "gate": tags.get("gate.decision"),
                "gate_reason": tags.get("gate.reason"),
                "rolled_back": tags.get("rolled_back") == "true",
                "run_id": found.run_id,
                "metrics": dict(metrics),
            }
        )
    return rows
