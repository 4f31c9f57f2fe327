"""Where the platform leans on Great Expectations internals, and only here.

* :func:`reuse_compiled_templates` — Data Docs pages are rendered by Jinja environments GX builds
  in ``great_expectations.render.view.view`` (its module attribute ``Environment``); they are
  handed one shared bytecode cache.

``tests/pipelines/validation/test_gx_compat.py`` checks, against the installed GX, that the name
is still there and that pages come out the same with the cache; the pin below is the range this
was written for (pyproject pins the same).
"""

from __future__ import annotations

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
