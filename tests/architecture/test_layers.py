"""The layers of ``.importlinter`` hold, and the contract would catch an upward import or a cycle.

``make test`` runs ``lint-imports`` on the tree itself; here the same contract is run on a copy of
the package with one import planted, so a contract that no longer bites fails a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / ".importlinter")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def plant(tree: Path, module: str, line: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _planted() -> None:\n    {line}\n")


def test_the_tree_keeps_its_layers(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # a domain package reaching up into the job code: the cycle the layout was made to end
        ("pipelines.validation.ingest", "from pipelines.flows import monitor", "downwards"),
        ("pipelines.alerts.delivery", "from pipelines.cli import common", "downwards"),
        # two modules of one package importing each other
        ("pipelines.features.offline", "from pipelines.features import training", "cycles"),
    ],
)
def test_an_upward_import_or_a_cycle_breaks_the_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    plant(tree, module, line)
    result = lint(tree)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and contract in result.stdout, result.stdout
    package, name = module.rsplit(".", 1)
    assert package in result.stdout and f".{name}" in result.stdout, result.stdout
