"""`personalize up` / `down` without Airflow: the real process handling with stand-in servers.

Every stand-in is a real child process (``python -m http.server`` answering the health paths, or a
sleeper), so starting in sessions, pid files, waiting for health, Ctrl-C, crashes and stopping are
the code paths `up` uses for Airflow and MLflow. One real Airflow + MLflow start is the browser
test's job (tests/e2e/test_browser.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli import local as cli_local
from pipelines.config import Settings
from pipelines.local import supervisor
from pipelines.local.supervisor import ServicePlan, ServiceSpec
from pipelines.orchestration import initialise

runner = CliRunner()
SLEEPER = (sys.executable, "-c", "import time; time.sleep(600)")


def invoke(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"  # the `settings` fixture's state dir


@pytest.fixture(autouse=True)
def _stop_what_a_failing_test_left(home: Path) -> Iterator[None]:
    yield
    supervisor.stop_services(Settings(home=home), timeout=2)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Files that make `python -m http.server` answer 200 on both health paths."""
    root = tmp_path / "site"
    (root / "api/v2/monitor").mkdir(parents=True)
    (root / "health").write_text("OK")
    (root / "api/v2/monitor/health").write_text("{}")
    return root


def http_server(site: Path, port: int) -> tuple[str, ...]:
    return (sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(site))


def fake_plan(
    site: Path,
    *,
    api_server: tuple[str, ...] | None = None,
    migrate: tuple[str, ...] = (sys.executable, "-c", "print('migrated')"),
) -> ServicePlan:
    """The shape of the real plan (see plan_services) with stand-ins for each process."""
    ports = supervisor.resolve_ports({"--airflow-port": 0, "--mlflow-port": 0})
    airflow = f"http://127.0.0.1:{ports['--airflow-port']}"
    mlflow = f"http://127.0.0.1:{ports['--mlflow-port']}"
    env = dict(os.environ)
    return ServicePlan(
        services=(
            ServiceSpec(
                "mlflow",
                http_server(site, ports["--mlflow-port"]),
                env,
                url=mlflow,
                health_url=mlflow + "/health",
            ),
            ServiceSpec(
                "airflow-api-server",
                api_server or http_server(site, ports["--airflow-port"]),
                env,
                url=airflow,
                health_url=airflow + "/api/v2/monitor/health",
            ),
            ServiceSpec("airflow-scheduler", SLEEPER, env),
        ),
        prepare=(ServiceSpec("airflow-db-migrate", migrate, env),),
        independent=frozenset({"mlflow"}),
        background=frozenset({"airflow-scheduler"}),
    )


def use_plan(monkeypatch: pytest.MonkeyPatch, plan: ServicePlan) -> None:
    monkeypatch.setattr(supervisor, "plan_services", lambda settings, **_: plan)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def spawned() -> Iterator[list[psutil.Process]]:
    """Processes a test starts outside the supervisor's reach, killed if the test leaves them."""
    processes: list[psutil.Process] = []
    yield processes
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def pids(home: Path) -> dict[str, int]:
    return {path.stem: json.loads(path.read_text())["pid"] for path in (home / "run").glob("*.pid")}


def service_pids(settings: Settings) -> set[int]:
    """The PIDs `down` would stop, of all running services."""
    return {p.pid for record in supervisor.running_services(settings) for p in record.processes}


# ---- the commands -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["up", "down"])
def test_up_and_down_have_help(command: str, tmp_path: Path) -> None:
    result = invoke(tmp_path, command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_up_detach_serves_prints_urls_and_login_and_down_stops_everything(
    home: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = fake_plan(site)
    use_plan(monkeypatch, plan)
    settings = Settings(home=home)
    # what Airflow's SimpleAuthManager writes on the API server's first start
    settings.airflow_home.mkdir(parents=True)
    supervisor.airflow_password_file(settings).write_text(json.dumps({"admin": "s3cret"}))

    result = invoke(home, "up", "--detach")
    assert result.exit_code == 0, result.output
    urls = {spec.name: spec.url for spec in plan.services if spec.url}
    assert urls["airflow-api-server"] in result.output and urls["mlflow"] in result.output
    assert "admin / s3cret" in result.output
    assert "personalize down" in result.output
    started = pids(home)
    assert set(started) == {"mlflow", "airflow-api-server", "airflow-scheduler"}
    assert all(supervisor.answers(spec.health_url) for spec in plan.services if spec.health_url)
    assert "migrated" in supervisor.log_tail(settings, "airflow-db-migrate")
    assert not (home / "run/airflow-db-migrate.pid").exists()  # a finished step has no pid file

    again = invoke(home, "up", "--detach")
    assert again.exit_code == 0
    assert "already running" in again.output and urls["mlflow"] in again.output
    assert pids(home) == started  # nothing was started twice

    stopped = invoke(home, "down")
    assert stopped.exit_code == 0
    assert all(f"stopped {name} (pid {pid})" in stopped.output for name, pid in started.items())
    assert pids(home) == {}
    assert not any(supervisor.process_alive(pid) for pid in started.values())
    assert not any(supervisor.answers(spec.health_url) for spec in plan.services if spec.health_url)
    assert "nothing running" in invoke(home, "down").output


def test_ctrl_c_stops_the_services_up_started(
    home: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_plan(monkeypatch, fake_plan(site))
    seen: dict[str, int] = {}

    def interrupted(processes, interval: float = 1.0):
        seen.update({name: process.pid for name, process in processes.items()})
        assert all(supervisor.process_alive(pid) for pid in seen.values())
        raise KeyboardInterrupt

    monkeypatch.setattr(supervisor, "watch", interrupted)
    result = invoke(home, "up")
    assert result.exit_code == 0, result.output
    assert "Ctrl-C stops them" in result.output and "stopping" in result.output
    assert set(seen) == {"mlflow", "airflow-api-server", "airflow-scheduler"}
    assert pids(home) == {}
    assert not any(supervisor.process_alive(pid) for pid in seen.values())


def test_sigint_to_a_foreground_up_stops_its_services(home: Path, site: Path) -> None:
    """What Ctrl-C at a terminal does: SIGINT to `up` only (the services run in other sessions).

    `up` starts with SIGINT ignored, as a shell starts a background job (`personalize up &`):
    Ctrl-C handling must not depend on the signal disposition `up` inherits.
    """
    plan = fake_plan(site)
    script = f"""
import pickle, sys
from pipelines.local import supervisor
from pipelines.cli import app
plan = pickle.loads({__import__("pickle").dumps(plan)!r})
supervisor.plan_services = lambda settings, **_: plan
sys.argv = ["personalize", "--home", {str(home)!r}, "up"]
app()
"""
    up = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(up.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Ctrl-C stops them" in line for line in lines):
            assert time.monotonic() < deadline and up.poll() is None, "".join(lines)
            time.sleep(0.1)
        started = pids(home)
        assert set(started) == {"mlflow", "airflow-api-server", "airflow-scheduler"}
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
        reader.join(timeout=5)
    finally:
        up.kill()
    output = "".join(lines)
    assert up.returncode == 0, output
    assert "stopped mlflow" in output
    assert pids(home) == {}
    assert not any(supervisor.process_alive(pid) for pid in started.values())


def test_a_service_that_dies_on_start_is_reported_with_its_log_and_the_rest_stopped(
    home: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = (sys.executable, "-c", "import sys; print('boom: no such database'); sys.exit(3)")
    use_plan(monkeypatch, fake_plan(site, api_server=crash))
    result = invoke(home, "up", "--detach")
    assert result.exit_code == 1
    assert "airflow-api-server exited during start-up (exit code 3)" in result.output
    assert "boom: no such database" in result.output
    assert pids(home) == {}  # mlflow, already started, was stopped again


def test_a_failed_migration_stops_what_started_and_is_retried_next_time(
    home: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = (sys.executable, "-c", "import sys; print('alembic: locked'); sys.exit(1)")
    use_plan(monkeypatch, fake_plan(site, migrate=failing))
    result = invoke(home, "up", "--detach")
    assert result.exit_code == 1
    assert "airflow-db-migrate failed (exit code 1)" in result.output
    assert "alembic: locked" in result.output
    assert pids(home) == {}
    assert not initialise.airflow_db_is_current(Settings(home=home))


def test_a_busy_port_is_a_usage_error_naming_the_option(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke(home, "up", "--airflow-port", str(port), "--mlflow-port", "0")
    assert result.exit_code == 2
    assert f"port {port}" in result.output and "--airflow-port" in result.output
    assert pids(home) == {}


def test_down_removes_stale_pid_files(home: Path) -> None:
    run = home / "run"
    run.mkdir(parents=True)
    pid = dead_pid()
    (run / "mlflow.pid").write_text(json.dumps({"pid": pid, "create_time": 1.0}))
    result = invoke(home, "down")
    assert result.exit_code == 0
    assert f"removed the stale pid file of mlflow (pid {pid})" in result.output
    assert not (run / "mlflow.pid").exists()


def test_up_with_part_of_the_services_running_asks_for_down_first(home: Path) -> None:
    settings = Settings(home=home)
    supervisor.start_service(settings, ServiceSpec("mlflow", SLEEPER, dict(os.environ)))
    result = invoke(home, "up", "--detach")
    assert result.exit_code == 1
    assert "already running" in result.output
    assert (
        "not running: airflow-api-server" in result.output and "personalize down" in result.output
    )


# ---- pid files and process groups -------------------------------------------------------------


def test_a_pid_file_whose_pid_was_reused_is_stale_and_never_signalled(
    settings: Settings, spawned: list[psutil.Process]
) -> None:
    """Another program with the PID, leading a session of its own as a service would."""
    other = subprocess.Popen(SLEEPER, start_new_session=True)
    spawned.append(psutil.Process(other.pid))
    path = supervisor.write_pid_file(settings, ServiceSpec("mlflow", SLEEPER, {}), other.pid)
    record = supervisor.read_pid_file(settings, path)
    assert record is not None and record.state == "running"  # its own start time: ours

    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "create_time": data["create_time"] - 60}))
    record = supervisor.read_pid_file(settings, path)
    assert record is not None and record.state == "stale" and record.processes == ()
    assert supervisor.running_services(settings) == []

    stopped = supervisor.stop_services(settings, timeout=1)
    assert [(s.name, s.how) for s in stopped] == [("mlflow", "stale")]
    assert not path.exists()
    assert other.poll() is None  # never signalled


def test_a_plain_integer_pid_file_is_understood(settings: Settings) -> None:
    path = supervisor.pid_file(settings, "legacy")
    path.parent.mkdir(parents=True)
    path.write_text(f"{dead_pid()}\n")
    record = supervisor.read_pid_file(settings, path)
    assert record is not None and record.state == "stale"
    (path.parent / "garbage.pid").write_text("not a pid")
    assert [r.name for r in supervisor.service_records(settings)] == ["legacy"]


def test_stop_kills_a_group_that_ignores_sigterm_children_included(settings: Settings) -> None:
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    process = supervisor.start_service(
        settings, ServiceSpec("stubborn", (sys.executable, "-c", stubborn), dict(os.environ))
    )
    deadline = time.monotonic() + 30
    while len(members := service_pids(settings)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.pid in members and len(members) == 2
    stopped = supervisor.stop_services(settings, timeout=0.5)
    assert [(s.name, s.how) for s in stopped] == [("stubborn", "killed")]
    assert not any(supervisor.process_alive(pid) for pid in members)


def child_pid(settings: Settings, name: str, timeout: float = 30) -> int:
    """The PID a stand-in service wrote to <name>.child once its child runs."""
    path = settings.state_dir / f"{name}.child"
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{name} did not start its child"
        time.sleep(0.1)
    return int(path.read_text())


def spawner(name: str, *, then_exit: bool, detach: str = "process_group=0") -> tuple[str, ...]:
    """A service that starts a sleeping child in a process group of its own (as Airflow starts a
    task; ``detach="start_new_session=True"``: in a session of its own), writes the child's PID to
    <name>.child, then exits or sleeps."""
    script = (
        "import pathlib, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
        f"{detach})\n"
        f"pathlib.Path('{name}.child').write_text(str(child.pid))\n"
        f"{'' if then_exit else 'time.sleep(600)'}\n"
    )
    return (sys.executable, "-c", script)


def test_a_task_process_in_its_own_process_group_is_stopped_with_its_service(
    settings: Settings,
) -> None:
    spec = ServiceSpec("airflow-scheduler", spawner("task", then_exit=False), dict(os.environ))
    settings.ensure_dirs()
    process = supervisor.start_service(settings, spec)
    task = child_pid(settings, "task")
    assert os.getpgid(task) != process.pid  # out of reach of a process-group signal
    (record,) = supervisor.running_services(settings)
    assert record.state == "running" and task in service_pids(settings)
    stopped = supervisor.stop_services(settings, timeout=5)
    assert [(s.name, s.how) for s in stopped] == [("airflow-scheduler", "terminated")]
    assert not supervisor.process_alive(task)


def test_processes_left_by_a_dead_service_are_found_and_stopped(settings: Settings) -> None:
    spec = ServiceSpec("scheduler", spawner("left", then_exit=True), dict(os.environ))
    settings.ensure_dirs()
    process = supervisor.start_service(settings, spec)
    process.wait(timeout=30)
    left = child_pid(settings, "left")
    (record,) = supervisor.running_services(settings)
    assert record.state == "orphaned" and service_pids(settings) == {left}
    assert psutil.Process(left).ppid() != process.pid  # nobody's child: found by its session
    stopped = supervisor.stop_services(settings, timeout=5)
    assert [s.how for s in stopped] == ["terminated"]
    assert not supervisor.process_alive(left)


def test_a_child_that_left_the_session_is_stopped_with_its_running_service(
    settings: Settings, spawned: list[psutil.Process]
) -> None:
    command = spawner("daemon", then_exit=False, detach="start_new_session=True")
    settings.ensure_dirs()
    process = supervisor.start_service(settings, ServiceSpec("mlflow", command, dict(os.environ)))
    daemon = child_pid(settings, "daemon")
    spawned.append(psutil.Process(daemon))
    assert os.getsid(daemon) != process.pid  # found as a descendant, not by its session
    assert daemon in service_pids(settings)
    stopped = supervisor.stop_services(settings, timeout=5)
    assert [s.how for s in stopped] == ["terminated"]
    assert not supervisor.process_alive(daemon)


def test_a_task_started_while_its_scheduler_shuts_down_is_stopped_too(
    settings: Settings, spawned: list[psutil.Process]
) -> None:
    """Started after `down` listed the session's processes, so found by a second look."""
    on_sigterm = (
        "import pathlib, signal, subprocess, sys, time\n"
        "def shut_down(*_):\n"
        "    task = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
        "process_group=0)\n"
        "    pathlib.Path('late.child').write_text(str(task.pid))\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, shut_down)\n"
        "pathlib.Path('ready.child').write_text('1')\n"
        "time.sleep(600)\n"
    )
    settings.ensure_dirs()
    spec = ServiceSpec("airflow-scheduler", (sys.executable, "-c", on_sigterm), dict(os.environ))
    supervisor.start_service(settings, spec)
    child_pid(settings, "ready")  # the SIGTERM handler is in place
    stopped = supervisor.stop_services(settings, timeout=5)
    assert [s.how for s in stopped] == ["terminated"]
    task = child_pid(settings, "late", timeout=0)
    with contextlib.suppress(psutil.NoSuchProcess):
        spawned.append(psutil.Process(task))
    assert not supervisor.process_alive(task)


def test_an_exited_service_not_yet_reaped_is_not_running(settings: Settings) -> None:
    """A zombie (exited, its exit status not collected yet) is no process to wait for or stop."""
    settings.ensure_dirs()
    spec = ServiceSpec("mlflow", (sys.executable, "-c", "pass"), dict(os.environ))
    process = supervisor.start_service(settings, spec)
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
    assert psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE
    assert not supervisor.process_alive(process.pid)
    assert supervisor.running_services(settings) == []
    stopped = supervisor.stop_services(settings, timeout=5)
    assert [(s.name, s.how) for s in stopped] == [("mlflow", "stale")]


# ---- ports ------------------------------------------------------------------------------------


def test_port_zero_means_any_free_port_and_two_options_never_share_one() -> None:
    ports = supervisor.resolve_ports({"--airflow-port": 0, "--mlflow-port": 0})
    assert ports["--airflow-port"] != ports["--mlflow-port"]
    assert all(supervisor.port_is_free(port) for port in ports.values())
    with pytest.raises(supervisor.ServiceError, match="given twice"):
        supervisor.resolve_ports({"--airflow-port": 18123, "--mlflow-port": 18123})
    with pytest.raises(supervisor.ServiceError, match="between 1 and 65535"):
        supervisor.resolve_ports({"--airflow-port": 70000})


# ---- what the real plan runs ------------------------------------------------------------------


def test_airflow_components_share_the_state_dir_and_find_the_api_server(
    settings: Settings,
) -> None:
    env = supervisor.airflow_service_environment(settings, 18080, base_env={"PATH": "/usr/bin"})
    assert env["AIRFLOW_HOME"] == str(settings.airflow_home)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == settings.airflow_sql_alchemy_conn
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("dags")
    assert env["PERSONALIZE_HOME"] == str(settings.state_dir)  # the DAG files and tasks read it
    assert (env["AIRFLOW__API__HOST"], env["AIRFLOW__API__PORT"]) == ("127.0.0.1", "18080")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    # keys are stable: generated once under the state dir, the same for every component
    again = supervisor.airflow_service_environment(settings, 18080, base_env={})
    assert again["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_prod_airflow_gets_an_async_uri_it_can_load(tmp_path: Path) -> None:
    """Airflow 3 would derive postgresql+asyncpg (not installed) from the psycopg URI."""
    prod = Settings(home=tmp_path / "home", profile="prod")
    env = supervisor.airflow_service_environment(prod, 8080, base_env={})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
        == env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )


def test_an_exported_airflow_tuning_variable_wins(settings: Settings) -> None:
    env = supervisor.airflow_service_environment(
        settings, 8080, base_env={"AIRFLOW__CORE__PARALLELISM": "8"}
    )
    assert env["AIRFLOW__CORE__PARALLELISM"] == "8"


def test_mlflow_serves_the_profiles_store_on_localhost_without_job_runner(
    settings: Settings,
) -> None:
    command = supervisor.mlflow_command(settings, 15000)
    assert command[1:4] == ("-m", "mlflow", "server")
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options["--backend-store-uri"] == settings.mlflow_backend_store_uri
    assert options["--default-artifact-root"] == settings.mlflow_artifact_root
    assert (options["--host"], options["--port"], options["--workers"]) == (
        "127.0.0.1",
        "15000",
        "1",
    )
    env = supervisor.mlflow_service_environment(settings, base_env={})
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["PERSONALIZE_HOME"] == str(settings.state_dir)


def test_the_plan_starts_uis_first_and_migrates_only_when_needed(settings: Settings) -> None:
    plan = supervisor.plan_services(settings, airflow_port=18080, mlflow_port=15000)
    assert plan.names == (
        "mlflow",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
    )
    assert [step.name for step in plan.prepare] == ["airflow-db-migrate"]
    assert plan.background == {"airflow-scheduler", "airflow-dag-processor"}
    health = {spec.name: spec.health_url for spec in plan.services if spec.health_url}
    assert health == {
        "mlflow": "http://127.0.0.1:15000/health",
        "airflow-api-server": "http://127.0.0.1:18080/api/v2/monitor/health",
    }

    (settings.airflow_home / "airflow.db").touch()
    initialise.mark_airflow_db_current(settings)
    plan = supervisor.plan_services(settings, triggerer=True)
    assert plan.prepare == ()
    assert "airflow-triggerer" in plan.names
    (settings.airflow_home / "airflow.db").unlink()  # a reset DB is migrated again
    assert not initialise.airflow_db_is_current(settings)


def test_airflow_login_comes_from_the_generated_password_file(settings: Settings) -> None:
    assert supervisor.airflow_login(settings, env={}) is None
    settings.airflow_home.mkdir(parents=True)
    supervisor.airflow_password_file(settings, env={}).write_text('{"admin": "pw"}\n')
    assert supervisor.airflow_login(settings, env={}) == ("admin", "pw")
    no_login = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    assert supervisor.airflow_login(settings, env=no_login) is None


def test_the_cli_module_registers_both_commands() -> None:
    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert {"up", "down"} <= names
    assert cli_local.up.__doc__ and cli_local.down.__doc__
