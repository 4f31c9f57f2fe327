"""The models serving answers with: ``@champion`` of each model, kept current by polling.

:class:`ModelHolder` loads each model's champion at start and then, every
``serve_poll_seconds``, asks the registry where ``@champion`` points — one alias lookup per
model, nothing else. Only when a version moved (or every ``DEPENDENTS_SECONDS``) does the poll
do more: load the new model fully, prepare it, swap it in and run the refresh callbacks
(catalogue reload, Feast registry re-resolution, propensity warm-up). A moved alias is loaded in
the polling thread and swapped in with one reference assignment: a request reads
:meth:`ModelHolder.snapshot` once and works with that mapping to the end, so it sees the old
model or the new one, never a mixture, and never waits for a load. When the registry cannot be
reached the last good models stay (and :attr:`ModelHolder.registry` says why); a champion that
disappears from the registry is kept too, with a warning. Requests never touch the registry or
the disk for a model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import Settings

log = logging.getLogger(__name__)

ALIAS = "champion"
DEPENDENTS_SECONDS = 60.0
"""At least this often a poll runs the refresh callbacks without a moved version: a new day's
catalogue or a changed feature service reaches serving within it (the Feast registry's cache
TTL is as long)."""


@dataclass(frozen=True)
class LoadedModel:
    """One model in memory: its registered version, the native object and what serving
    precomputed from it (``prepared``, see ``ModelHolder(prepare=...)``)."""

    name: str
    version: int
    model: Any
    loaded_at: datetime
    prepared: Any = None
    alias: str = ALIAS

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "alias": self.alias,
            "class": type(self.model).__name__,
            "loaded_at": self.loaded_at.isoformat(),
        }


@dataclass
class RegistryStatus:
    """How the last poll went."""

    reachable: bool | None = None  # None: not asked yet
    checked_at: datetime | None = None
    last_ok_at: datetime | None = None
    error: str | None = None
    swaps: int = 0
    failures: int = 0
    problems: dict[str, str] = field(default_factory=dict)  # model -> last load problem

    def describe(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
            "error": self.error,
            "swaps": self.swaps,
            "failed_polls": self.failures,
            "problems": dict(self.problems),
        }


def registry_champions(settings: Settings, models: Sequence[str]) -> dict[str, int | None]:
    """``{model: version of @champion}`` (None: no such model or alias), one client for all."""
    from pipelines.registry import alias_version, mlflow_client

    client = mlflow_client(settings)
    found = {}
    for model in models:
        found[model] = alias_version(settings, model, ALIAS, client)
        time.sleep(0)  # let the event loop have the GIL between lookups
    return found


def registry_load(settings: Settings, model: str, version: int) -> Any:
    from pipelines.registry import load_version

    return load_version(settings, model, version)


class ModelHolder:
    """``@champion`` of each of ``names`` (default: every model of the catalogue), polled.

    ``registry_settings`` is the settings the registry is read with (the serving settings unless
    changed); ``prepare(name, model)`` precomputes what requests need from a model (indexes,
    masks), once per load and outside any request. Refresh callbacks run after :meth:`refresh`
    and after a poll that swapped a model or found ``dependents_seconds`` passed (the catalogue
    reload, the Feast registry, the propensity warm-up); ``every_poll`` ones after every poll
    (the metrics' version gauges: cheap).
    """

    def __init__(
        self,
        settings: Settings,
        names: Sequence[str] | None = None,
        *,
        poll_seconds: float | None = None,
        dependents_seconds: float = DEPENDENTS_SECONDS,
        prepare: Callable[[str, Any], Any] | None = None,
        on_refresh: Sequence[Callable[[ModelHolder], None]] = (),
    ) -> None:
        if names is None:
            from pipelines.models.catalog import model_names

            names = model_names()
        self.names = tuple(names)
        self.registry_settings = settings
        self.poll_seconds = settings.serve_poll_seconds if poll_seconds is None else poll_seconds
        self.dependents_seconds = dependents_seconds
        self._prepare = prepare
        self._on_refresh = list(on_refresh)
        self._every_poll: list[Callable[[ModelHolder], None]] = []
        self._dependents_at = 0.0  # monotonic time the callbacks last ran
        self._models: Mapping[str, LoadedModel] = MappingProxyType({})
        self.registry = RegistryStatus()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_refresh_callback(
        self, callback: Callable[[ModelHolder], None], *, every_poll: bool = False
    ) -> None:
        """Run ``callback(holder)`` after :meth:`refresh` and after a poll that swapped a model
        (or found ``dependents_seconds`` passed) — with ``every_poll``, after every poll — in
        the polling thread."""
        (self._every_poll if every_poll else self._on_refresh).append(callback)

    # ---- what requests read -----------------------------------------------------------------

    def snapshot(self) -> Mapping[str, LoadedModel]:
        """The models now: an immutable mapping, replaced whole on a swap."""
        return self._models

    def get(self, name: str) -> LoadedModel | None:
        return self._models.get(name)

    @property
    def ready(self) -> bool:
        return bool(self._models)

    # ---- the registry -----------------------------------------------------------------------

    def refresh(self) -> dict[str, tuple[int | None, int]]:
        """Ask the registry for every champion, swap in the moved ones and run every refresh
        callback; ``{model: (old, new)}`` of the swaps. Never raises: a failure is recorded in
        :attr:`registry`."""
        return self._refresh(dependents=True)

    def poll_once(self) -> dict[str, tuple[int | None, int]]:
        """One poll: the alias lookups; the refresh callbacks only when a model was swapped or
        ``dependents_seconds`` passed since they last ran."""
        return self._refresh(dependents=False)

    def _refresh(self, *, dependents: bool) -> dict[str, tuple[int | None, int]]:
        with self._refresh_lock:
            swaps = self._swap_moved()
        due = time.monotonic() - self._dependents_at >= self.dependents_seconds
        callbacks = list(self._every_poll)
        if dependents or swaps or due:
            self._dependents_at = time.monotonic()
            callbacks = self._on_refresh + callbacks
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # a callback's problem must not stop the polling
                log.exception("serving: refresh callback %r failed", callback)
        return swaps

    def _swap_moved(self) -> dict[str, tuple[int | None, int]]:
        settings = self.registry_settings
        status = self.registry
        now = datetime.now(UTC)
        status.checked_at = now
        try:
            wanted = registry_champions(settings, self.names)
        except Exception as error:  # any failure to reach the registry: keep what we have
            status.reachable, status.error = False, _one_line(error)
            status.failures += 1
            log.warning(
                "serving: registry unreachable, keeping the loaded models: %s", status.error
            )
            return {}
        status.reachable, status.error, status.last_ok_at = True, None, now
        current = dict(self._models)
        swaps: dict[str, tuple[int | None, int]] = {}
        for name, version in wanted.items():
            held = current.get(name)
            if version is None:
                if held is not None:
                    log.warning(
                        "serving: %s has no @%s now; keeping v%s", name, ALIAS, held.version
                    )
                continue
            if held is not None and held.version == version:
                continue
            try:  # loaded and prepared in full here, before any request can see it
                model = registry_load(settings, name, version)
                prepared = self._prepare(name, model) if self._prepare else None
            except Exception as error:
                status.problems[name] = f"v{version}: {_one_line(error)}"
                log.warning("serving: cannot load %s v%s: %s", name, version, _one_line(error))
                continue
            status.problems.pop(name, None)
            current[name] = LoadedModel(name, version, model, datetime.now(UTC), prepared)
            swaps[name] = (held.version if held else None, version)
        if swaps:
            self._models = MappingProxyType(current)  # the one atomic swap
            status.swaps += len(swaps)
            for name, (old, new) in swaps.items():
                log.info("serving: %s v%s -> v%s", name, old, new)
        return swaps

    def put(self, loaded: LoadedModel) -> None:
        """Serve ``loaded`` as its model from now on (swapped like a polled version; the next
        poll replaces it if the registry's champion differs). For tools and tests."""
        with self._refresh_lock:
            self._models = MappingProxyType({**self._models, loaded.name: loaded})

    # ---- polling ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling in a daemon thread (the first poll after ``poll_seconds``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="serving-model-poll", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            started = time.perf_counter()
            self.poll_once()
            log.debug("serving: poll took %.3f s", time.perf_counter() - started)


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return text[0][:300] if text else type(error).__name__
