"""The Feast store of the active profile: its ``feature_store.yaml``, the store object, ``apply``.

``feature_store.yaml`` is rendered from the settings into ``<feast_dir>/`` (never into the repo), so
the definitions in ``feature_repo/`` are the same for every profile and hold no path or secret.
Nothing happens at import time; Feast is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.features.feast_compat import ENTITY_KEY_SERIALIZATION_VERSION, import_feast

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore
    from feast.repo_contents import RepoContents

    from pipelines.config import Settings

PROJECT = "personalize"
PROJECT_DESCRIPTION = "personalize: e-commerce personalization features"
REPO_DIR = Path(__file__).resolve().parents[2] / "feature_repo"
YAML_NAME = "feature_store.yaml"
APPLIED_NAME = "applied.sha256"
# How stale a long-running reader's view of the registry may get. The refresh runs inline in the
# first request after expiry (cache_mode sync): ~2 ms on the SQLite registry, once a minute.
REGISTRY_CACHE_TTL_SECONDS = 60

_stores: dict[tuple[str, str], FeatureStore] = {}
_lock = threading.RLock()
# (store, service) -> (the registry proto it was read from, the service): Feast rebuilds a
# FeatureService from protobuf on every ``get_feature_service`` (~2-9 ms, most of a serving
# request); the copy is kept until the registry cache is reloaded (a new proto object).
_services: dict[tuple[int, str], tuple[tuple[int, object], FeatureService]] = {}


class FeatureStoreError(Exception):
    """The Feast repo or store cannot be used as configured, with what to do about it."""


# ---- feature_store.yaml ---------------------------------------------------------------------


def feature_store_config(settings: Settings) -> dict[str, Any]:
    """The contents of ``feature_store.yaml`` for the settings' profile."""
    online_store: dict[str, Any] = dict(settings.feast_online_store)
    if online_store["type"] == "redis":
        # Feast's Redis writer skips a row whose stamp equals the stored one, so a day recomputed
        # with late data (same stamp) would never reach Redis. Our writer drops older rows itself
        # (online.write_online) and lets equal stamps through, as on SQLite.
        online_store["skip_dedup"] = True
    return {
        "project": PROJECT,
        "project_description": PROJECT_DESCRIPTION,
        "provider": "local",
        "registry": {
            "registry_type": "sql",
            "path": settings.feast_registry_uri,
            "cache_ttl_seconds": REGISTRY_CACHE_TTL_SECONDS,
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        },
        "online_store": online_store,
        "offline_store": offline_store_config(settings),
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }


def offline_store_config(settings: Settings) -> dict[str, Any]:
    """DuckDB over the parquet partitions, or Feast's Spark offline store when the features are
    computed on Spark (``feature_engine = "spark"``): then a training set's point-in-time join
    runs where the history is, in the session of ``spark_master``."""
    if settings.feature_engine == "spark":
        from pipelines.features.spark import spark_conf

        return {"type": "spark", "spark_conf": spark_conf(settings)}
    return {"type": "duckdb"}


def render_feature_store_yaml(settings: Settings) -> Path:
    """Write ``<feast_dir>/feature_store.yaml`` for the active profile; its path.

    The file is rewritten only when its contents change, so a reader never sees it half-written
    by a run that changed nothing.
    """
    import yaml

    text = yaml.safe_dump(feature_store_config(settings), sort_keys=False)
    path = settings.feast_dir / YAML_NAME
    if not path.is_file() or path.read_text() != text:
        settings.feast_dir.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{YAML_NAME}.{os.getpid()}.tmp")
        staged.write_text(text)
        os.replace(staged, path)
    return path


# ---- the store --------------------------------------------------------------------------------


def feature_store(settings: Settings) -> FeatureStore:
    """The ``FeatureStore`` of these settings, one per process and settings: the registry cache
    and the online store connection stay warm between calls (a cached call costs ~10 us)."""
    key = (str(settings.state_dir), settings.model_dump_json())
    store = _stores.get(key)
    if store is not None:
        return store
    with _lock:
        store = _stores.get(key)
        if store is None:
            path = render_feature_store_yaml(settings)
            import_feast()
            from feast import FeatureStore

            store = FeatureStore(repo_path=str(REPO_DIR), fs_yaml_file=path)
            _stores[key] = store
        return store


def clear_store_cache() -> None:
    """Forget the cached stores (tests, or after the state dir was deleted)."""
    with _lock:
        _stores.clear()
        _services.clear()


# ---- loading and applying the definitions -----------------------------------------------------


@contextmanager
def repo_environment(settings: Settings) -> Iterator[None]:
    """Load ``feature_repo/`` the way ``feast apply`` does, for exactly these settings.

    The repo files read the settings through ``get_settings()``, so the settings are exported as
    ``PERSONALIZE_*`` variables; the repo folder is the working directory and on ``sys.path``
    (its files import each other by module name); the repo's modules are dropped from
    ``sys.modules`` before and after, so definitions are never reused from another state dir.
    """
    import_feast()
    from feast.repo_operations import get_repo_files

    module_names = [p.stem for p in get_repo_files(REPO_DIR)]
    env = settings.as_environment()
    saved_env = {name: os.environ.get(name) for name in env}
    saved_cwd = os.getcwd()
    saved_dont_write = sys.dont_write_bytecode

    def drop_modules() -> dict[str, Any]:
        return {name: sys.modules.pop(name) for name in module_names if name in sys.modules}

    with _lock:
        # a module of the same name imported by something else comes back afterwards
        others = {n: m for n, m in drop_modules().items() if not _is_repo_module(m)}
        os.environ.update(env)
        sys.path.insert(0, str(REPO_DIR))
        sys.dont_write_bytecode = True
        os.chdir(REPO_DIR)
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            sys.dont_write_bytecode = saved_dont_write
            if str(REPO_DIR) in sys.path:
                sys.path.remove(str(REPO_DIR))
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            drop_modules()
            sys.modules.update(others)


def _is_repo_module(module: Any) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().parent == REPO_DIR


def load_repo(settings: Settings) -> RepoContents:
    """The definitions of ``feature_repo/`` as loaded for these settings."""
    import_feast()
    from feast.project import Project
    from feast.repo_operations import parse_repo

    with repo_environment(settings):
        try:
            repo = parse_repo(REPO_DIR)
        except Exception as error:
            raise FeatureStoreError(
                f"cannot load the Feast definitions in {REPO_DIR}: {error}. "
                "Fix the file named in the traceback; every .py file there is executed."
            ) from error
    if not repo.projects:
        # as `feast apply` does when the repo defines no Project: from feature_store.yaml
        repo.projects.append(Project(name=PROJECT, description=PROJECT_DESCRIPTION))
    return repo


def definitions_fingerprint(settings: Settings, repo: RepoContents) -> str:
    """A hash of everything ``apply`` would write: the yaml and every definition's proto."""
    digest = hashlib.sha256(render_feature_store_yaml(settings).read_bytes())
    protos = []
    for kind in (
        "projects",
        "data_sources",
        "entities",
        "feature_views",
        "stream_feature_views",
        "on_demand_feature_views",
        "feature_services",
        "permissions",
    ):
        for obj in getattr(repo, kind):
            proto = obj.to_proto()
            _clear_meta(proto)
            protos.append((kind, obj.name, proto.SerializeToString(deterministic=True)))
    for kind, name, proto in sorted(protos):
        digest.update(f"\0{kind}\0{name}\0".encode())
        digest.update(proto)
    return digest.hexdigest()


def _online_tables_present(settings: Settings, views: set[str]) -> bool:
    """Whether the SQLite online store still has a table per view (other stores need none)."""
    import sqlite3

    from pipelines.features.sqlite_store import TYPE as ENTITY_ROW_SQLITE

    online = settings.feast_online_store
    if online["type"] not in ("sqlite", ENTITY_ROW_SQLITE):
        return True
    path = Path(online["path"])
    if not path.is_file():
        return False
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {f"{PROJECT}_{name}" for name in views} <= {name for (name,) in rows}


def _clear_meta(message: Any) -> None:
    """Drop every ``meta`` (creation times of the Python objects, not definitions), recursively."""
    for field, value in message.ListFields():
        if field.name == "meta":
            message.ClearField("meta")
        elif field.message_type is None:
            continue
        elif hasattr(value, "ListFields"):  # a message
            _clear_meta(value)
        else:  # a repeated field, or a map (of messages or of scalars)
            items = value.values() if hasattr(value, "values") else value
            for item in items:
                if hasattr(item, "ListFields"):
                    _clear_meta(item)


def apply_repo(settings: Settings, *, force: bool = False) -> bool:
    """Register ``feature_repo/`` in the registry and create its online tables (``feast apply``).

    Idempotent: objects that left the repo are deleted, unchanged ones are left alone. When the
    definitions hash like the last successful apply and the registry still holds them, nothing is
    written (a fast no-op). Returns whether anything was applied.
    """
    from feast.repo_operations import extract_objects_for_apply_delete

    repo = load_repo(settings)
    fingerprint = definitions_fingerprint(settings, repo)
    marker = settings.feast_dir / APPLIED_NAME
    store = feature_store(settings)
    if not force and marker.is_file() and marker.read_text().strip() == fingerprint:
        names = {fv.name for fv in repo.feature_views}
        registered = {fv.name for fv in store.list_all_feature_views(allow_cache=False)}
        if registered == names and _online_tables_present(settings, names):
            return False
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(PROJECT, store.registry, repo)
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    # record the online tables in the registry as `feast apply` does (`feast plan`, `teardown`)
    infra = store.provider.plan_infra(store.config, repo.to_registry_proto())
    store.registry.update_infra(infra, PROJECT, commit=True)
    store.refresh_registry()
    marker.write_text(fingerprint + "\n")
    return True


def feature_service(
    store: FeatureStore, name: str, error_type: type[Exception] = FeatureStoreError
) -> FeatureService:
    """A registered feature service, or ``error_type`` listing the services there are."""
    from feast.errors import FeastObjectNotFoundException

    stamp = _registry_stamp(store)
    held = _services.get((id(store), name))
    if held is not None and stamp is not None and held[0] == stamp:
        return held[1]
    try:
        service = store.get_feature_service(name, allow_cache=True)
    except FeastObjectNotFoundException as error:
        known = sorted(s.name for s in store.list_feature_services())
        raise error_type(
            f"unknown feature service {name!r} (registered: {known}); services are defined in "
            "feature_repo/feature_services.py and registered by `apply_repo`"
        ) from error
    stamp = _registry_stamp(store)  # the call above may have reloaded the registry
    if stamp is not None:
        with _lock:
            _services[(id(store), name)] = (stamp, service)
    return service


def _registry_stamp(store: FeatureStore) -> tuple[int, object] | None:
    """Which registry copy a cached read came from: the proto object and when it was loaded."""
    registry = store.registry
    proto = getattr(registry, "cached_registry_proto", None)
    created = getattr(registry, "cached_registry_proto_created", None)
    return None if proto is None or created is None else (id(proto), created)
