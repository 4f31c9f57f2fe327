"""Where the platform leans on Great Expectations internals, and only here.

* :func:`reuse_compiled_templates` — Data Docs pages are rendered by Jinja environments GX builds
  in ``great_expectations.render.view.view`` (its module attribute ``Environment``); they are
  handed one shared bytecode cache.
* :func:`expectation_configurations_cached` — while a suite runs, each ``Expectation`` instance
  builds its ``configuration`` once instead of on every read (GX reads it for every domain,
  success and runtime keyword, ~1,900 times per run of the events suite).

``tests/pipelines/validation/test_gx_compat.py`` checks, against the installed GX, that the name
is still there and that pages come out the same with the cache; the pin below is the range this
was written for (pyproject pins the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

GX_RANGE = (">=1.0", "<1.25")


def reuse_compiled_templates() -> None:
    """GX builds a fresh Jinja environment for every Data Docs view and recompiles every
    template each time (~0.5 s a page, most of a small batch's validation). Handing those
    environments one shared bytecode cache keeps the pages identical and skips the recompiling."""
    from great_expectations.render.view import view

    if getattr(view.Environment, "_personalize_cached", False):
        return
    import jinja2

    class MemoryBytecodeCache(jinja2.BytecodeCache):
        def __init__(self) -> None:
            self.store: dict[str, bytes] = {}

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            self.store[bucket.key] = bucket.bytecode_to_string()

    original = view.Environment
    cache = MemoryBytecodeCache()

    def environment(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("bytecode_cache", cache)
        return original(*args, **kwargs)

    environment._personalize_cached = True  # type: ignore[attr-defined]
    view.Environment = environment


# id(expectation) -> (expectation, its field values when built, the configuration built)
_CONFIGURATIONS: ContextVar[dict[int, tuple[Any, tuple[Any, ...], Any]] | None] = ContextVar(
    "personalize_gx_configurations", default=None
)


@contextmanager
def expectation_configurations_cached() -> Iterator[None]:
    """Inside the block, ``Expectation.configuration`` is built once per instance.

    GX 1.x rebuilds the property from the pydantic fields on every read (``self.dict()`` plus an
    ``ExpectationConfiguration``), and reads it once per keyword in ``_get_domain_kwargs``,
    ``_get_success_kwargs`` and ``_get_success_kwarg``: most of a clean batch's GX time. The
    property is a pure function of the instance's fields, so the value built first is returned
    again while no field has been reassigned (field values are compared by identity; a
    reassigned field builds it afresh). The expectations GX builds for a run are its own and
    only read during it; the cache is dropped when the block ends.
    """
    _install_configuration_cache()
    token = _CONFIGURATIONS.set({})
    try:
        yield
    finally:
        _CONFIGURATIONS.reset(token)


def _install_configuration_cache() -> None:
    from great_expectations.expectations.expectation import Expectation

    current = Expectation.__dict__["configuration"]
    if getattr(current.fget, "_personalize_cached", False):
        return
    build = current.fget

    def configuration(self: Any) -> Any:
        cache = _CONFIGURATIONS.get()
        if cache is None:
            return build(self)
        state = tuple(self.__dict__.values())
        hit = cache.get(id(self))
        if (
            hit is not None
            and hit[0] is self
            and len(hit[1]) == len(state)
            and all(a is b for a, b in zip(hit[1], state, strict=True))
        ):
            return hit[2]
        value = build(self)
        cache[id(self)] = (self, state, value)
        return value

    configuration._personalize_cached = True  # type: ignore[attr-defined]
    configuration.__doc__ = build.__doc__
    Expectation.configuration = property(configuration)  # type: ignore[method-assign,assignment]
