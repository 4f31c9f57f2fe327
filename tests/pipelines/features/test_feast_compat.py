"""The Feast behaviour feast_compat relies on, against the installed Feast and typeguard.

Runs in a fresh interpreter: the point is what the first ``import feast`` of a process does.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from packaging.specifiers import SpecifierSet

from pipelines.features.feast_compat import FEAST_RANGE, TYPEGUARD_RANGE


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def test_the_installed_versions_are_the_pinned_ones() -> None:
    assert version("feast") in SpecifierSet(",".join(FEAST_RANGE))
    assert version("typeguard") in SpecifierSet(",".join(TYPEGUARD_RANGE))


def test_feast_decorates_with_typeguard_at_import_and_the_toggle_skips_it_for_feast_only() -> None:
    # relied on: feast's modules call typeguard.typechecked while importing (else the toggle is
    # pointless and can go); after the toggle typeguard's decorator is the original again
    counted = run(
        "import typeguard\n"
        "calls = []\n"
        "original = typeguard.typechecked\n"
        "def counting(*a, **k):\n"
        "    calls.append(1)\n"
        "    return original(*a, **k)\n"
        "typeguard.typechecked = counting\n"
        "import feast\n"
        "print(len(calls))\n"
    )
    assert int(counted) > 0, "feast no longer uses typeguard.typechecked: drop import_feast"
    restored = run(
        "import typeguard\n"
        "original = typeguard.typechecked\n"
        "from pipelines.features.feast_compat import import_feast\n"
        "import_feast()\n"
        "import sys\n"
        "print('feast' in sys.modules, typeguard.typechecked is original)\n"
    )
    assert restored == "True True"
