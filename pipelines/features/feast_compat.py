"""Where the platform leans on Feast's (and typeguard's) internals, and only here.

* :func:`import_feast` — import Feast without typeguard's import-time instrumentation.

``tests/pipelines/features/test_feast_compat.py`` checks, against the installed versions, the
behaviour relied on: Feast's classes are decorated with ``typeguard.typechecked`` at import, and
the toggle leaves typeguard as it was. The pins below are the ranges it was written for
(pyproject pins the same).
"""

from __future__ import annotations

import sys
from typing import Any

FEAST_RANGE = (">=0.60", "<0.68")
TYPEGUARD_RANGE = (">=4", "<5")


def import_feast() -> None:
    """Import Feast without typeguard's import-time instrumentation.

    Feast 0.67 decorates its core classes with ``typeguard.typechecked``, which recompiles every
    method from source when ``feast`` is imported: ~4 s of the ~7 s an ``import feast`` takes
    here, and runtime type checks on every call afterwards. Python's ``-O`` turns the decorator
    into a no-op; this does the same for Feast's own import only, and leaves typeguard as it was
    for everyone else. Call it before the first ``import feast`` of the process.
    """
    if "feast" in sys.modules:
        return
    try:
        import typeguard
    except ImportError:  # a Feast without typeguard: nothing to skip
        import feast

        return

    def no_typecheck(target: Any = None, **_: Any) -> Any:
        return target if target is not None else (lambda decorated: decorated)

    original = typeguard.typechecked
    typeguard.typechecked = no_typecheck
    try:
        import feast  # noqa: F401
    finally:
        typeguard.typechecked = original
