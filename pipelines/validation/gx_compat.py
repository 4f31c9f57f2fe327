"""Where the platform leans on Great Expectations internals, and only here.

* :func:`reuse_compiled_templates` — Data Docs pages are rendered by Jinja environments GX builds
  in ``great_expectations.render.view.view`` (its module attribute ``Environment``); they are
  handed one shared bytecode cache.
* :func:`expectation_configurations_cached` — while a suite runs, each ``Expectation`` instance
  builds its ``configuration`` once instead of on every read (GX reads it for every domain,
  success and runtime keyword, ~1,900 times per run of the events suite), and each
  ``ExpectationConfiguration`` its domain object (``to_domain_obj``, ~30 times per expectation).

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


# id(expectation) -> (expectation, its field values when built, the configuration built), and
# ("domain", id(configuration)) -> (configuration, its attributes when built, the expectation)
_CONFIGURATIONS: ContextVar[dict[Any, tuple[Any, tuple[Any, ...], Any]] | None] = ContextVar(
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
    reassigned field builds it afresh). Likewise ``ExpectationConfiguration.to_domain_obj``,
    which GX calls for every metric an expectation depends on, builds the expectation once per
    configuration while its attributes and keyword values are the same objects. The expectations
    GX builds for a run are its own and only read during it; the cache is dropped when the block
    ends.
    """
    _install_configuration_cache()
    token = _CONFIGURATIONS.set({})
    try:
        yield
    finally:
        _CONFIGURATIONS.reset(token)


def _same(kept: tuple[Any, ...], state: tuple[Any, ...]) -> bool:
    return len(kept) == len(state) and all(a is b for a, b in zip(kept, state, strict=True))


def _install_configuration_cache() -> None:
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    current = Expectation.__dict__["configuration"]
    if getattr(current.fget, "_personalize_cached", False):
        return
    build = current.fget
    to_domain_obj = ExpectationConfiguration.to_domain_obj

    def domain_obj(self: Any) -> Any:
        cache = _CONFIGURATIONS.get()
        if cache is None:
            return to_domain_obj(self)
        state = (*self.__dict__.values(), *self.kwargs.keys(), *self.kwargs.values())
        hit = cache.get(("domain", id(self)))
        if hit is not None and hit[0] is self and _same(hit[1], state):
            return hit[2]
        value = to_domain_obj(self)
        cache[("domain", id(self))] = (self, state, value)
        return value

    def configuration(self: Any) -> Any:
        cache = _CONFIGURATIONS.get()
        if cache is None:
            return build(self)
        state = tuple(self.__dict__.values())
        hit = cache.get(id(self))
        if hit is not None and hit[0] is self and _same(hit[1], state):
            return hit[2]
        value = build(self)
        cache[id(self)] = (self, state, value)
        return value

    configuration._personalize_cached = True  # type: ignore[attr-defined]
    configuration.__doc__ = build.__doc__
    domain_obj.__doc__ = to_domain_obj.__doc__
    ExpectationConfiguration.to_domain_obj = domain_obj  # type: ignore[method-assign]
    Expectation.configuration = property(configuration)  # type: ignore[method-assign,assignment]
