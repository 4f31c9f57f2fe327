"""Every DAG file in dags/ follows the house rules and parses cheaply.

Files are discovered, not listed: a new DAG file is checked the moment it lands in dags/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
NOT_DAG_FILES = {"assets.py", "__init__.py"}  # shared declarations, no DAG
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if p.name not in NOT_DAG_FILES)
HEAVY = ("pandas", "sklearn", "mlflow", "feast", "great_expectations", "evidently")
PARSE_BUDGET_S = 5.0  # per file, airflow's own import excluded; the scheduler re-parses often


def _parse_file(path: Path) -> tuple[list[Any], dict[str, str]]:
    """Parse one DAG file as the DAG processor does: its DAGs and import errors."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=path, bundle_path=DAGS_DIR, bundle_name="dags-folder")
    return list(bag.dags.values()), dict(bag.import_errors)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_defines_one_well_formed_dag(path: Path, airflow_settings: Settings) -> None:
    dags, errors = _parse_file(path)

    assert not errors, f"{path} fails to import:\n" + "\n".join(errors.values())
    assert [dag.dag_id for dag in dags] == [path.stem], "one DAG per file, dag_id = file name"
    (dag,) = dags
    assert dag.tags, f"{path.name}: set tags=[...] so the DAG can be found in the UI"
    assert dag.doc_md and dag.doc_md.strip(), f"{path.name}: set doc_md=__doc__"
    retries = (dag.default_args or {}).get("retries", 0)
    assert retries >= 1, f"{path.name}: default_args['retries'] is {retries}; want >= 1"
    start = dag.start_date
    assert start is not None, f"{path.name}: set a start_date"
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0), (
        f"{path.name}: start_date {start!r} must be timezone-aware UTC"
    )


_PARSE_SCRIPT = r"""
import importlib.util, json, sys, time

heavy = tuple(sys.argv[1].split(","))
folder, files = sys.argv[2], sys.argv[3:]
sys.path.insert(0, folder)  # as Airflow does for the dags folder: `from assets import ...`

def loaded():
    return {name for name in heavy if name in sys.modules}

started = time.perf_counter()
import airflow.sdk  # noqa: E402,F401  the cost every DAG file pays once
report = {"airflow_import_s": time.perf_counter() - started, "airflow_heavy": sorted(loaded())}
report["files"] = []
for path in files:
    before = loaded()
    started = time.perf_counter()
    error = None
    try:
        name = "dagfile_" + path.rsplit("/", 1)[-1][:-3]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    report["files"].append({
        "file": path,
        "seconds": time.perf_counter() - started,
        "error": error,
        "heavy": sorted(loaded() - before),
    })
print(json.dumps(report))
"""


def test_parsing_dags_imports_no_heavy_library(
    airflow_settings: Settings, record_property: pytest.RecordProperty
) -> None:
    from pipelines.orchestration import airflow_environment

    files = sorted(DAGS_DIR.glob("*.py"))  # assets.py too: every DAG file imports it
    env = {**os.environ, **airflow_environment(airflow_settings, dags_folder=DAGS_DIR)}
    completed = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, ",".join(HEAVY), str(DAGS_DIR)]
        + [str(p) for p in files],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    print(
        f"\nparse times (fresh interpreter; airflow.sdk import {report['airflow_import_s']:.2f}s)"
    )
    for item in report["files"]:
        name = Path(item["file"]).name
        print(f"  {name:<24} {item['seconds']:.3f}s")
        record_property(f"parse_s[{name}]", round(item["seconds"], 3))

    assert not report["airflow_heavy"], f"airflow.sdk itself imports {report['airflow_heavy']}"
    problems = (
        [f"{Path(i['file']).name}: {i['error']}" for i in report["files"] if i["error"]]
        + [
            f"{Path(i['file']).name} imports {', '.join(i['heavy'])} at parse time;"
            " import it inside the task"
            for i in report["files"]
            if i["heavy"]
        ]
        + [
            f"{Path(i['file']).name} takes {i['seconds']:.1f}s to parse (budget {PARSE_BUDGET_S}s)"
            for i in report["files"]
            if i["seconds"] > PARSE_BUDGET_S
        ]
    )
    assert not problems, "\n".join(problems)
