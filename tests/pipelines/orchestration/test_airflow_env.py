"""The Airflow environment of a state dir: its secrets when nobody exported any."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.orchestration.airflow_env import DEFAULT_DAGS_FOLDER, airflow_environment

SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "fernet_key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt_secret",
}
REPO = Path(__file__).resolve().parents[3]

IN_ANOTHER_PROCESS = """
import json
from pipelines.config import get_settings
from pipelines.orchestration.airflow_env import airflow_environment
env = airflow_environment(get_settings())
print(json.dumps({k: env[k] for k in json.loads(__import__("sys").argv[1])}))
"""


def test_a_newcomers_prod_env_gets_stable_private_generated_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer on the prod profile exports no Fernet key or JWT secret: they are generated
    once under the state dir's Airflow home (owner-only files), every later call and every other
    process of that state dir gets the same ones, and none lands in a file of the repository."""
    from cryptography.fernet import Fernet

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(profile="prod", home=tmp_path / "home")

    first = airflow_environment(settings, dags_folder=DEFAULT_DAGS_FOLDER)
    again = airflow_environment(settings, dags_folder=DEFAULT_DAGS_FOLDER)

    values = {name: first[name] for name in SECRETS}
    assert values == {name: again[name] for name in SECRETS}
    assert len(set(values.values())) == 2  # two secrets, not one reused
    Fernet(values["AIRFLOW__CORE__FERNET_KEY"])  # a valid Fernet key (raises otherwise)
    for name, file_name in SECRETS.items():
        path = settings.airflow_home / file_name
        assert path.read_text().strip() == values[name]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert not any(name in os.environ for name in SECRETS)  # computed, not exported

    # another process of the same state dir (a worker, the scheduler) reads the same secrets
    child = subprocess.run(
        [sys.executable, "-c", IN_ANOTHER_PROCESS, json.dumps(list(SECRETS))],
        env={**os.environ, **settings.as_environment()},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert json.loads(child.stdout) == values

    # nothing of them in the repository's files, tracked or not (the state dir is elsewhere)
    assert not settings.state_dir.is_relative_to(REPO)
    for value in values.values():
        found = subprocess.run(
            ["git", "grep", "--untracked", "-l", "-F", value],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 1 and not found.stdout, found.stdout  # 1: no match


def test_an_exported_secret_wins_and_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = "x" * 43 + "="
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", exported)
    monkeypatch.delenv("AIRFLOW__API_AUTH__JWT_SECRET", raising=False)
    settings = Settings(profile="prod", home=tmp_path / "home")

    env = airflow_environment(settings, dags_folder=DEFAULT_DAGS_FOLDER)

    assert env["AIRFLOW__CORE__FERNET_KEY"] == exported
    assert not (settings.airflow_home / "fernet_key").exists()
    assert (settings.airflow_home / "jwt_secret").exists()
