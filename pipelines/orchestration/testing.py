"""One Airflow for a whole test session: a temp home and a DAGs folder with the real DAGs.

Airflow binds to one home, database and DAGs folder per process (see ``airflow_env``), so every
test in a pytest process must share them. :func:`prepare_test_airflow` builds them on first call:
``<tmp_root>/dags`` holds a symlink to every entry of the real ``dags/`` plus any extra (toy) DAG
files, and ``<tmp_root>/home`` is the state dir. Later calls in the same process return the same
Settings and add their extra DAG files to the same folder, so several conftest files (tests/dags,
tests/pipelines/orchestration) can each ask for what they need, in any order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipelines.config import Settings
from pipelines.orchestration.airflow_env import DEFAULT_DAGS_FOLDER, configure_airflow

_prepared: tuple[Settings, Path] | None = None


def _write_dag_files(folder: Path, files: Mapping[str, str]) -> None:
    for name, source in files.items():
        if "/" in name or not name.endswith(".py"):
            raise ValueError(f"extra DAG file {name!r}: expected a plain file name ending in .py")
        target = folder / name
        if target.is_symlink():
            raise ValueError(f"extra DAG file {name!r} would shadow the real dags/{name}")
        if target.exists():
            if target.read_text() != source:
                raise ValueError(
                    f"extra DAG file {name!r} was already written with other content in {folder}"
                )
            continue
        target.write_text(source)


def prepare_test_airflow(
    tmp_root: Path,
    extra_dag_files: Mapping[str, str] | None = None,
    *,
    real_dags_folder: Path = DEFAULT_DAGS_FOLDER,
) -> Settings:
    """Configure this process's Airflow for tests once and return its Settings (profile local).

    ``tmp_root`` is used by the first call only; pass a session-scoped temp dir. The Settings are
    explicit (``home=<tmp_root>/home``), never read from ``PERSONALIZE_*``, because the top-level
    conftest clears those for every test.
    """
    global _prepared
    if _prepared is None:
        tmp_root = Path(tmp_root).resolve()
        dags = tmp_root / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for entry in sorted(Path(real_dags_folder).resolve().iterdir()):
            if entry.name == "__pycache__" or (dags / entry.name).exists():
                continue
            (dags / entry.name).symlink_to(entry)
        _write_dag_files(dags, extra_dag_files or {})
        # short waits: dag.test sleeps through a retry delay and a sensor's whole timeout
        settings = Settings(
            home=tmp_root / "home",
            profile="local",
            retry_delay_seconds=1,
            sensor_timeout_seconds=3,
            sensor_poke_seconds=0.5,
        )
        configure_airflow(settings, dags_folder=dags)
        _prepared = (settings, dags)
        return settings
    settings, dags = _prepared
    _write_dag_files(dags, extra_dag_files or {})
    return settings


def session_dags_folder() -> Path:
    """The session's DAGs folder; prepare_test_airflow must have run."""
    if _prepared is None:
        raise RuntimeError("prepare_test_airflow() has not run in this process")
    return _prepared[1]
