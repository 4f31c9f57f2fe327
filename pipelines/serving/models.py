"""The models serving answers with: ``@champion`` of each model, kept current by polling.

:class:`ModelHolder` loads each model's champion at start and then, every
``serve_poll_seconds``, asks the registry where ``@champion`` points. A moved alias is loaded in
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


def registry_champion(settings: Settings, model: str) -> int | None:
    from pipelines.registry import alias_version

    return alias_version(settings, model, ALIAS)


def registry_load(settings: Settings, model: str, version: int) -> Any:
    from pipelines.registry import load_version

    return load_version(settings, model, version)


class ModelHolder:
    """``@champion`` of each of ``names`` (default: every model of the catalogue), polled.

    ``registry_settings`` is the settings the registry is read with (the serving settings unless
    changed); ``prepare(name, model)`` precomputes what requests need from a model (indexes,
    masks), once per load and outside any request; ``on_refresh`` callbacks run after every poll
    (the catalogue reload, the metrics' version gauges).
    """

    def __init__(
        self,
        settings: Settings,
        names: Sequence[str] | None = None,
        *,
        poll_seconds: float | None = None,
        prepare: Callable[[str, Any], Any] | None = None,
        on_refresh: Sequence[Callable[[ModelHolder], None]] = (),
    ) -> None:
        if names is None:
            from pipelines.models.catalog import model_names

            names = model_names()
        self.names = tuple(names)
        self.registry_settings = settings
        self.poll_seconds = settings.serve_poll_seconds if poll_seconds is None else poll_seconds
        self._prepare = prepare
        self._on_refresh = list(on_refresh)
        self._models: Mapping[str, LoadedModel] = MappingProxyType({})
        self.registry = RegistryStatus()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_refresh_callback(self, callback: Callable[[ModelHolder], None]) -> None:
        """Run ``callback(holder)`` after every poll (in the polling thread)."""
        self._on_refresh.append(callback)

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
        """Ask the registry for every champion and swap in the moved ones; ``{model: (old, new)}``
        of the swaps. Never raises: a failure is recorded in :attr:`registry`."""
        with self._refresh_lock:
            swaps = self._refresh()
        for callback in self._on_refresh:
            try:
                callback(self)
            except Exception:  # a callback's problem must not stop the polling
                log.exception("serving: refresh callback %r failed", callback)
        return swaps

    def _refresh(self) -> dict[str, tuple[int | None, int]]:
        settings = self.registry_settings
        status = self.registry
        now = datetime.now(UTC)
        status.checked_at = now
        try:
            wanted = {name: registry_champion(settings, name) for name in self.names}
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
            try:
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
            self.refresh()
            log.debug("serving: poll took %.3f s", time.perf_counter() - started)


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return text[0][:300] if text else type(error).__name__
