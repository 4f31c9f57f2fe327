"""Start, watch and stop the platform's UIs: Airflow (API server, scheduler, DAGs) and MLflow,
and with ``up --serve`` the serving API (``serve``, uvicorn on ``pipelines.serving``).

``personalize up`` runs each component as a child process in a session of its own, so a
terminal's Ctrl-C reaches only ``up`` itself, which then stops them, and ``personalize down`` can
stop a detached set later from another shell. A component is its session: Airflow moves each task
to a process group of its own, out of reach of a group signal, but the task stays in the session
and is stopped with the scheduler. Per component:

* ``<state_dir>/run/<name>.pid`` — JSON ``{"pid", "create_time", "url", "argv"}``. The start time
  guards against PID reuse: a pid file whose PID now belongs to another program is stale, and
  ``down`` never signals that program.
* ``<state_dir>/logs/<name>.log`` — the component's stdout and stderr.

The Airflow components are what ``airflow standalone`` runs, started one by one so each has its own
log and pid file, with two deliberate differences on a laptop-sized machine: no triggerer unless
asked for (none of our DAGs defers a task) and two executor slots (``parallelism``), since a task
of ours is CPU-bound and two cores are the norm. MLflow's job runner (GenAI jobs, seven ``huey``
processes) is switched off for the same reason.

The functions that decide (environment, commands, ports, pid-file state) are pure or read-only;
the ones that act (``start_service``, ``stop_services``) are few and small. Nothing is imported
from Airflow or MLflow: they run in the children only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from pipelines.config import Settings
from pipelines.orchestration.initialise import airflow_db_is_current, mark_airflow_db_current

HOST = "127.0.0.1"
AIRFLOW_PORT = 8080
MLFLOW_PORT = 5000
SERVE_SERVICE = "serve"
SERVE_HEALTH_PATH = "/health"
SERVE_READY_PATH = "/ready"
SERVE_DOCS_PATH = "/docs"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 15.0
AIRFLOW_HEALTH_PATH = "/api/v2/monitor/health"
MLFLOW_HEALTH_PATH = "/health"
AIRFLOW_USER = "admin"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor")
CELERY_WORKER_SERVICE = "airflow-celery-worker"
# what `personalize service NAME` runs (and a container's command names)
SERVICE_NAMES = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    CELERY_WORKER_SERVICE,
    "mlflow",
    SERVE_SERVICE,
)
# stopped in the second round, after the scheduler and its tasks (see stop_services)
UI_SERVICES = frozenset({"airflow-api-server", "mlflow", SERVE_SERVICE})

# Airflow settings for the services; an AIRFLOW__* variable the operator exported wins over these.
AIRFLOW_SERVICE_TUNING = {
    # two task processes at a time: our tasks are CPU-bound and the machine has two cores
    "AIRFLOW__CORE__PARALLELISM": "2",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__API__WORKERS": "1",
}

ServiceState = Literal["running", "orphaned", "stale"]


class ServiceError(RuntimeError):
    """A service cannot be started or stopped; the message says which, why and what to do."""


# ---- what to run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """One long-running component: how to start it and, for a UI, where it answers when ready."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    url: str | None = None  # what a person opens
    health_url: str | None = None  # answers 200 once the component serves


@dataclass(frozen=True)
class ServicePlan:
    """What ``up`` does, in order: start the ``independent`` services; run the ``prepare`` steps to
    completion; start the other services except the ``background`` ones; wait until every health
    URL answers; start the ``background`` services.

    The order is about CPU on a small machine: each Airflow process spends 10-30 s importing
    Airflow, so the UIs come up first and the scheduler and DAG processor follow once they answer.
    """

    services: tuple[ServiceSpec, ...]
    prepare: tuple[ServiceSpec, ...] = ()
    independent: frozenset[str] = frozenset()
    background: frozenset[str] = frozenset()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.services)


def _python_bin_dir() -> Path:
    return Path(sys.executable).parent


def _child_path(base_env: Mapping[str, str]) -> str:
    """PATH with this interpreter's bin dir first: Airflow starts helper processes by name."""
    bin_dir = str(_python_bin_dir())
    rest = [p for p in base_env.get("PATH", os.defpath).split(os.pathsep) if p and p != bin_dir]
    return os.pathsep.join([bin_dir, *rest])


def airflow_service_environment(
    settings: Settings,
    port: int,
    base_env: Mapping[str, str] | None = None,
    log_level: str = "WARNING",
    host: str = HOST,
) -> dict[str, str]:
    """The environment of every Airflow component ``up`` starts for ``settings``.

    The same home, database, DAGs folder and keys as in-process runs (``airflow_environment``), the
    platform's ``PERSONALIZE_*`` settings for the DAG files and tasks, the API server bound to
    ``HOST:port`` (and the task runners told where its execution API is), ``log_level`` for the
    log files (WARNING: at INFO the scheduler's log also holds every task's log, which Airflow
    keeps under ``<home>/airflow/logs`` anyway), and :data:`AIRFLOW_SERVICE_TUNING` unless the
    operator exported those variables.
    """
    from pipelines.orchestration.airflow_env import airflow_environment

    base = dict(os.environ if base_env is None else base_env)
    env = {**base, **settings.as_environment(), **airflow_environment(settings)}
    for name, value in AIRFLOW_SERVICE_TUNING.items():
        env[name] = base.get(name, value)
    sync_uri = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if sync_uri.startswith("postgresql+psycopg://"):
        # Airflow 3 derives its async URI as postgresql+asyncpg (not installed); psycopg 3 is
        # async-capable under the same dialect name
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", sync_uri)
    env.update(
        {
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            # where task runners (a Celery worker's too) reach the API server; a container sets
            # its own (http://airflow-api-server:8080/execution/)
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": base.get(
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                f"http://{_client_host(host)}:{port}/execution/",
            ),
            "AIRFLOW__API__INSTANCE_NAME": f"personalize ({settings.profile})",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level,
            "PATH": _child_path(base),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _client_host(host: str) -> str:
    """The address a client on this machine uses for a server bound to ``host``."""
    return HOST if host in ("0.0.0.0", "::", "") else host


def mlflow_service_environment(
    settings: Settings, base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The MLflow server's environment: the platform settings, no GenAI job runner, and no usage
    telemetry from a local platform (the operator's own setting of either wins)."""
    base = dict(os.environ if base_env is None else base_env)
    return {
        **base,
        **settings.as_environment(),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": base.get(
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"
        ),
        "MLFLOW_DISABLE_TELEMETRY": base.get("MLFLOW_DISABLE_TELEMETRY", "true"),
        "PATH": _child_path(base),
        "PYTHONUNBUFFERED": "1",
    }


def mlflow_command(settings: Settings, port: int, host: str = HOST) -> tuple[str, ...]:
    """``mlflow server`` on the profile's backend store (PostgreSQL in prod), on ``host:port``.

    When clients reach MLflow through this server (prod), it also serves the artifacts: they go to
    ``mlflow_artifact_root`` (a shared path or s3://...) via the server (``mlflow-artifacts:/``),
    so no worker needs the artifact store's credentials or mount. On the local profile the UI
    reads the SQLite store and the artifacts under the state dir directly. Bound to 127.0.0.1,
    MLflow 3's security middleware (allowed hosts, CORS) keeps its localhost defaults; one worker
    is plenty for one engineer.
    """
    store = settings.mlflow_backend_store_uri
    if settings.mlflow_through_server:
        artifacts = (
            "--artifacts-destination",
            settings.mlflow_artifact_root,
            "--serve-artifacts",
        )
    else:
        artifacts = ("--default-artifact-root", settings.mlflow_artifact_root)
    return (
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store,
        "--registry-store-uri",
        store,
        *artifacts,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    )


def airflow_command(component: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "airflow", *component.split())


def celery_worker_command(settings: Settings, index: int | None = None) -> tuple[str, ...]:
    """``airflow celery worker`` on the settings' queues and slots.

    ``index`` names the worker (``worker-1@host``) when ``up`` starts several on one machine;
    ``None`` keeps Celery's own name (one worker per container). No log server (``-s``): task logs
    are written under the shared state dir, where the API server reads them.
    """
    name = ("--celery-hostname", f"worker-{index}@%h") if index is not None else ()
    return (
        *airflow_command("celery worker"),
        "--queues",
        ",".join(settings.worker_queues),
        "--concurrency",
        str(settings.celery_worker_concurrency),
        *name,
        "--skip-serve-logs",
        "--without-gossip",
        "--without-mingle",
    )


def serve_command(port: int, host: str = HOST) -> tuple[str, ...]:
    """What ``personalize serve --host 127.0.0.1 --port <port> --workers 1`` runs: uvicorn on the
    app factory, which builds its settings from the ``PERSONALIZE_*`` environment.

    One worker on a laptop (the Airflow and MLflow processes share the cores); ``personalize serve
    --workers N`` is the command for more.
    """
    return (
        sys.executable,
        "-m",
        "uvicorn",
        "pipelines.serving.app:app_from_environment",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "info",
    )


def serve_service(
    settings: Settings, port: int, base_env: Mapping[str, str] | None = None, host: str = HOST
) -> ServiceSpec:
    """The serving API as a service of ``up``: healthy once ``/health`` answers (models may still
    be missing: :func:`serve_readiness` says whether it can answer with them)."""
    base = dict(os.environ if base_env is None else base_env)
    url = f"http://{_client_host(host)}:{port}"
    env = {**base, **settings.as_environment(), "PATH": _child_path(base), "PYTHONUNBUFFERED": "1"}
    return ServiceSpec(
        name=SERVE_SERVICE,
        argv=serve_command(port, host),
        env=env,
        url=url,
        health_url=url + SERVE_HEALTH_PATH,
    )


def serve_readiness(url: str, timeout: float = 5.0) -> tuple[bool, list[str]]:
    """``(ready, problems)`` from the serving API's ``/ready`` at ``url`` (its base URL)."""
    try:
        with urllib.request.urlopen(url + SERVE_READY_PATH, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:  # 503: not ready, with the reasons in the body
        try:
            body = json.loads(error.read() or b"{}")
        except ValueError:
            body = {}
        return False, [str(p) for p in body.get("problems", [])] or [f"HTTP {error.code}"]
    except (urllib.error.URLError, OSError, ValueError) as error:
        return False, [f"{url + SERVE_READY_PATH} did not answer ({error})"]
    return bool(body.get("ready")), [str(p) for p in body.get("problems", [])]


def service_spec(
    settings: Settings,
    name: str,
    *,
    host: str = HOST,
    port: int | None = None,
    airflow_port: int | None = None,
    log_level: str = "WARNING",
    worker_index: int | None = None,
) -> ServiceSpec:
    """How to run the one service ``name`` (one of :data:`SERVICE_NAMES`) for ``settings``.

    ``personalize service NAME`` execs it in the foreground (a container's command) and ``up``
    starts the same specs as children. ``port`` is the service's own port (default: Airflow 8080,
    MLflow 5000, serving ``serve_port``); the Airflow components other than the API server are
    told where it answers by ``airflow_port`` (default 8080). ``worker_index`` names one of several
    Celery workers on one machine (``airflow-celery-worker-<i>``).
    """
    if name not in SERVICE_NAMES:
        raise ServiceError(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")
    if name == "mlflow":
        port = MLFLOW_PORT if port is None else port
        url = f"http://{_client_host(host)}:{port}"
        return ServiceSpec(
            name=name,
            argv=mlflow_command(settings, port, host),
            env=mlflow_service_environment(settings),
            url=url,
            health_url=url + MLFLOW_HEALTH_PATH,
        )
    if name == SERVE_SERVICE:
        return serve_service(settings, settings.serve_port if port is None else port, host=host)
    component = name.removeprefix("airflow-")
    if component == "api-server":
        api_port = AIRFLOW_PORT if port is None else port
    else:
        api_port = AIRFLOW_PORT if airflow_port is None else airflow_port
    env = airflow_service_environment(settings, api_port, log_level=log_level, host=host)
    if component == "celery-worker":
        argv = celery_worker_command(settings, worker_index)
        label = name if worker_index is None else f"{name}-{worker_index}"
        return ServiceSpec(name=label, argv=argv, env=env)
    url = f"http://{_client_host(host)}:{api_port}"
    api = component == "api-server"
    return ServiceSpec(
        name=name,
        argv=airflow_command(component),
        env=env,
        url=url if api else None,
        health_url=url + AIRFLOW_HEALTH_PATH if api else None,
    )


def plan_services(
    settings: Settings,
    *,
    airflow_port: int = AIRFLOW_PORT,
    mlflow_port: int = MLFLOW_PORT,
    triggerer: bool = False,
    log_level: str = "WARNING",
    serve: bool = False,
    serve_port: int | None = None,
    celery_workers: int | None = None,
) -> ServicePlan:
    """The processes ``personalize up`` runs for ``settings`` (pure: nothing is started).

    With ``serve``, the serving API too (service ``serve`` on ``serve_port``, default the
    ``serve_port`` setting), started after the migration with the Airflow API server and waited
    for like the UIs. On the CeleryExecutor (prod), ``celery_workers`` workers (default the
    ``celery_workers`` setting), each serving every queue of ``celery_worker_queues``, start with
    the scheduler once the UIs answer.

    ``airflow db migrate`` is the one preparation step (creates or upgrades the metadata DB; it is
    skipped when :func:`airflow_db_is_current` says this Airflow version already migrated it).
    MLflow migrates its own store at start, so it starts alongside the migration.
    """

    def spec(name: str, **kwargs: object) -> ServiceSpec:
        return service_spec(
            settings, name, airflow_port=airflow_port, log_level=log_level, **kwargs
        )  # type: ignore[arg-type]

    mlflow = spec("mlflow", port=mlflow_port)
    components = [*AIRFLOW_COMPONENTS, *(("triggerer",) if triggerer else ())]
    airflow = [
        spec(f"airflow-{c}", port=airflow_port if c == "api-server" else None) for c in components
    ]
    if settings.executor == "CeleryExecutor":
        count = settings.celery_workers if celery_workers is None else celery_workers
        airflow += [spec(CELERY_WORKER_SERVICE, worker_index=i) for i in range(1, count + 1)]
    prepare = ()
    if not airflow_db_is_current(settings):
        prepare = (
            ServiceSpec(
                name="airflow-db-migrate",
                argv=airflow_command("db migrate"),
                env=airflow[0].env,
            ),
        )
    served = (spec(SERVE_SERVICE, port=serve_port or settings.serve_port),) if serve else ()
    return ServicePlan(
        services=(mlflow, *airflow, *served),
        prepare=prepare,
        independent=frozenset({"mlflow"}),
        background=frozenset(s.name for s in airflow if s.health_url is None),
    )


# ---- ports ------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could bind ``host:port`` now (the same test the server will make)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def resolve_ports(requested: Mapping[str, int], host: str = HOST) -> dict[str, int]:
    """``{option: port}`` with 0 replaced by a free port; raises if a named port is taken.

    A busy port is an error, not a silent move elsewhere: the URL printed, bookmarked and written
    in docs stays the same, and the message says which option picks another one.
    """
    resolved: dict[str, int] = {}
    for option, port in requested.items():
        if port == 0:
            port = free_port(host)
            while port in resolved.values():
                port = free_port(host)
        elif not 0 < port < 65536:
            raise ServiceError(f"{option} {port}: expected a port between 1 and 65535 (0 = any)")
        elif not port_is_free(port, host):
            raise ServiceError(
                f"port {port} on {host} is in use by another program; "
                f"pass {option} with a free port (or 0 for any free port)"
            )
        if port in resolved.values():
            raise ServiceError(f"{option} {port}: the same port is given twice")
        resolved[option] = port
    return resolved


# ---- pid files and process state --------------------------------------------------------------


def run_dir(settings: Settings) -> Path:
    return settings.state_dir / "run"


def log_dir(settings: Settings) -> Path:
    return settings.state_dir / "logs"


def pid_file(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return log_dir(settings) / f"{name}.log"


# psutil's create_time() is wall-clock time, so a clock correction between ``up`` writing a pid
# file and ``down`` reading it shifts it; for another program to get the PID within a second of the
# first one's start, the whole PID range would have to wrap around in that second
START_TIME_TOLERANCE_SECONDS = 1.0


def _is_live(process: psutil.Process) -> bool:
    """Running and not a zombie: a zombie has exited and only waits for its parent to reap it
    (which a container's init may never do)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _started_at(process: psutil.Process, create_time: float | None) -> bool:
    """Whether ``process`` is the one that started at ``create_time`` (None: cannot tell, trust)."""
    if create_time is None:
        return True
    try:
        return abs(process.create_time() - create_time) < START_TIME_TOLERANCE_SECONDS
    except psutil.Error:
        return False


def _process(pid: int) -> psutil.Process | None:
    """The process that has ``pid`` now, a zombie included."""
    if pid <= 0:
        return None
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def process_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) and, given ``create_time``, the one that
    started then."""
    process = _process(pid)
    return process is not None and _started_at(process, create_time) and _is_live(process)


def _session(sid: int) -> list[psutil.Process]:
    """The live processes of session ``sid`` (see :class:`ServiceRecord` for why a session)."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(OSError):  # gone since the listing
            if os.getsid(process.pid) == sid and _is_live(process):
                members.append(process)
    return members


@dataclass(frozen=True)
class ServiceRecord:
    """What a pid file says about one started component, and what is true of it now.

    A service is its session: ``up`` starts each in a new one (session id = its PID), and
    everything it starts stays there unless it calls ``setsid`` itself. Airflow's task processes
    move to process groups of their own, out of reach of a group signal, but keep the session, and
    they outlive a scheduler that dies, when they are nobody's children any more.

    ``state``: ``running`` — the PID is alive and started when the pid file says; ``orphaned`` —
    that process is gone but processes it started are left (executor workers, a task): ``down``
    stops them; ``stale`` — nothing of it is left, or the PID now belongs to another program.
    ``processes`` are the live ones ``down`` stops: the session's and, while the component runs,
    its descendants that left the session.
    """

    name: str
    pid: int
    create_time: float | None
    url: str | None
    path: Path
    state: ServiceState
    processes: tuple[psutil.Process, ...] = field(default=(), repr=False)

    @property
    def active(self) -> bool:
        """Something of it still runs (the component, or children it left behind)."""
        return self.state != "stale"


def write_pid_file(settings: Settings, spec: ServiceSpec, pid: int) -> Path:
    path = pid_file(settings, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    process = _process(pid)
    record = {
        "pid": pid,
        "create_time": process.create_time() if process is not None else None,
        "url": spec.url,
        "argv": list(spec.argv),
    }
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(path)
    return path


def read_pid_file(settings: Settings, path: Path) -> ServiceRecord | None:
    """The record in ``path`` with its current state; None if the file is unreadable or garbage."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        data = json.loads(text)
        if isinstance(data, int):  # a plain pid file
            data = {"pid": data}
        pid = int(data["pid"])
    except (ValueError, TypeError, KeyError):
        return None
    create_time, url = data.get("create_time"), data.get("url")
    leader = _process(pid)
    if leader is not None and not _started_at(leader, create_time):
        # another program has the PID now: neither it nor a session it leads is ours
        return ServiceRecord(path.stem, pid, create_time, url, path, "stale")
    # an unused PID is nobody else's session id: Linux hands out no PID still in use as one
    processes = set(_session(pid))
    running = leader is not None and _is_live(leader)
    if running:
        with contextlib.suppress(psutil.NoSuchProcess):
            processes.update([leader, *leader.children(recursive=True)])
    state: ServiceState = "running" if running else "orphaned" if processes else "stale"
    return ServiceRecord(path.stem, pid, create_time, url, path, state, tuple(processes))


def _pid_files(settings: Settings) -> list[Path]:
    directory = run_dir(settings)
    return sorted(directory.glob("*.pid")) if directory.is_dir() else []


def service_records(settings: Settings) -> list[ServiceRecord]:
    """Every pid file of this state dir with its current state, sorted by name."""
    records = (read_pid_file(settings, path) for path in _pid_files(settings))
    return [record for record in records if record is not None]


def running_services(settings: Settings) -> list[ServiceRecord]:
    """The components of this state dir that still run (for ``up``, ``down`` and ``status``)."""
    return [record for record in service_records(settings) if record.active]


def remove_stale_pid_files(settings: Settings) -> list[ServiceRecord]:
    """Delete pid files whose process is gone (or was replaced) and unreadable ones; returns the
    records removed."""
    removed = []
    for path in _pid_files(settings):
        record = read_pid_file(settings, path)
        if record is None or record.state == "stale":
            path.unlink(missing_ok=True)
            if record is not None:
                removed.append(record)
    return removed


# ---- acting -----------------------------------------------------------------------------------


def start_service(settings: Settings, spec: ServiceSpec) -> subprocess.Popen[bytes]:
    """Start ``spec`` in a new session (own process group), logging to its log file, and write
    its pid file. The log is appended to, with a header, so earlier runs stay readable."""
    path = log_file(settings, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n==== {stamp} personalize: starting {' '.join(spec.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.state_dir,
        )
    write_pid_file(settings, spec, process.pid)
    return process


def run_to_completion(
    settings: Settings,
    spec: ServiceSpec,
    timeout: float = START_TIMEOUT_SECONDS,
    on_poll: Callable[[], None] | None = None,
) -> None:
    """Run a preparation step (``airflow db migrate``) with the same logging; raise if it fails."""
    process = start_service(settings, spec)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{spec.name} did not finish in {timeout:.0f} s; "
                    f"see {log_file(settings, spec.name)}"
                )
            if on_poll is not None:
                on_poll()
            time.sleep(0.2)
    except BaseException:
        stop_services(settings, names=[spec.name])
        raise
    finally:
        pid_file(settings, spec.name).unlink(missing_ok=True)
    if process.returncode != 0:
        raise ServiceError(
            f"{spec.name} failed (exit code {process.returncode}); last lines of "
            f"{log_file(settings, spec.name)}:\n{log_tail(settings, spec.name)}"
        )


def log_tail(settings: Settings, name: str, lines: int = 20) -> str:
    path = log_file(settings, name)
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64_000))
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_gone(processes: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for ``processes`` to end; returns the ones still live.

    ``wait_procs`` collects the exit status of our own children, so none lingers as a zombie; a
    zombie that is not ours counts as ended (see :func:`_is_live`).
    """
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive:
        left = max(0.0, deadline - time.monotonic())
        _, alive = psutil.wait_procs(alive, timeout=min(0.1, left))
        alive = [process for process in alive if _is_live(process)]
        if not left:
            break
    return alive


def _terminate(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """SIGTERM ``processes`` all at once, wait up to ``timeout`` s for them to end, then SIGKILL
    what is left; returns the ones that had to be killed.

    Waiting for all together keeps ``down`` as slow as the slowest component, not the sum of them.
    psutil refuses to signal a process whose PID was handed to another one since it was listed.
    """
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.terminate()
    survivors = _wait_until_gone(processes, timeout)
    for process in survivors:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.kill()
    _wait_until_gone(survivors, 5.0)
    return survivors


@dataclass(frozen=True)
class Stopped:
    name: str
    pid: int
    how: Literal["terminated", "killed", "stale"]


def stop_services(
    settings: Settings,
    names: Iterable[str] | None = None,
    timeout: float = STOP_TIMEOUT_SECONDS,
) -> list[Stopped]:
    """Stop the components this state dir's pid files name (all, or ``names``) and remove their
    pid files.

    Two rounds, each all at once: first the scheduler, DAG processor and triggerer — a running
    task is told to stop and still reaches the API server to record that it did — then the UIs.
    A PID that now belongs to another program is never signalled (its pid file is just removed);
    processes a service started in process groups of their own (Airflow's task processes) are
    stopped with it. A service is ``killed`` if any of its processes outlived ``timeout``.
    """
    wanted = set(names) if names is not None else None
    records = [r for r in service_records(settings) if wanted is None or r.name in wanted]
    records.sort(key=lambda record: record.name)
    killed: set[str] = set()
    for round_ in (
        [r for r in records if r.active and r.name not in UI_SERVICES],
        [r for r in records if r.active and r.name in UI_SERVICES],
    ):
        survivors = set(_terminate([p for r in round_ for p in r.processes], timeout))
        killed.update(r.name for r in round_ if survivors.intersection(r.processes))
        # a task process started while the scheduler was shutting down is in its session too
        late = [process for record in round_ for process in _session(record.pid)]
        if late:
            _terminate(late, min(timeout, 5.0))
    stopped = []
    for record in records:
        how: Literal["terminated", "killed", "stale"] = (
            "stale" if not record.active else "killed" if record.name in killed else "terminated"
        )
        record.path.unlink(missing_ok=True)
        stopped.append(Stopped(record.name, record.pid, how))
    return stopped


# ---- waiting ----------------------------------------------------------------------------------


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers HTTP 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def exited(processes: Mapping[str, subprocess.Popen[bytes]]) -> tuple[str, int] | None:
    """The first process that has exited, with its exit code."""
    for name, process in processes.items():
        code = process.poll()
        if code is not None:
            return name, code
    return None


def wait_until_healthy(
    settings: Settings,
    specs: Sequence[ServiceSpec],
    processes: Mapping[str, subprocess.Popen[bytes]],
    *,
    timeout: float = START_TIMEOUT_SECONDS,
    interval: float = 0.5,
    on_progress: Callable[[list[str], float], None] | None = None,
) -> float:
    """Poll the health URLs of ``specs`` until all answer; returns the seconds it took.

    Raises ServiceError, with the end of its log, as soon as one of ``processes`` exits (a crashed
    component does not come back by waiting), or after ``timeout`` naming the ones still silent.
    ``on_progress(still_waiting_for, elapsed)`` is called on every poll (the CLI's spinner).
    """
    start = time.monotonic()
    pending = {spec.name: spec.health_url for spec in specs if spec.health_url}
    while True:
        for name, url in list(pending.items()):
            if answers(url):
                del pending[name]
        elapsed = time.monotonic() - start
        if on_progress is not None:
            on_progress(sorted(pending), elapsed)
        if not pending:
            return elapsed
        dead = exited(processes)
        if dead is not None:
            name, code = dead
            raise ServiceError(
                f"{name} exited during start-up (exit code {code}); last lines of "
                f"{log_file(settings, name)}:\n{log_tail(settings, name)}"
            )
        if elapsed > timeout:
            silent = ", ".join(f"{name} ({url})" for name, url in pending.items())
            raise ServiceError(
                f"not answering after {timeout:.0f} s: {silent}; see the logs in "
                f"{log_dir(settings)} (a busy machine may need --timeout)"
            )
        time.sleep(interval)


def watch(
    processes: Mapping[str, subprocess.Popen[bytes]], interval: float = 1.0
) -> tuple[str, int]:
    """Block while every process runs; return (name, exit code) of the first that stops."""
    while True:
        dead = exited(processes)
        if dead is not None:
            return dead
        time.sleep(interval)


# ---- the whole start --------------------------------------------------------------------------


def start_plan(
    settings: Settings,
    plan: ServicePlan,
    *,
    timeout: float = START_TIMEOUT_SECONDS,
    on_progress: Callable[[list[str], float], None] | None = None,
) -> tuple[dict[str, subprocess.Popen[bytes]], float]:
    """Start everything in ``plan`` and wait until its UIs answer; returns processes and seconds.

    Services start in the plan's order (see :class:`ServicePlan`). On any failure (or Ctrl-C)
    every started component is stopped again before the error propagates, so a failed ``up``
    leaves nothing behind. ``on_progress(waiting_for, elapsed)`` is called about every 0.5 s.
    """
    settings.ensure_dirs()
    started_at = time.monotonic()

    def progress(waiting_for: list[str]) -> None:
        if on_progress is not None:
            on_progress(waiting_for, time.monotonic() - started_at)

    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for spec in plan.services:
            if spec.name in plan.independent:
                processes[spec.name] = start_service(settings, spec)
        for step in plan.prepare:
            run_to_completion(
                settings,
                step,
                max(1.0, timeout - (time.monotonic() - started_at)),
                on_poll=lambda step=step: progress([step.name]),
            )
            if step.name == "airflow-db-migrate":
                mark_airflow_db_current(settings)
        for spec in plan.services:
            if spec.name not in processes and spec.name not in plan.background:
                processes[spec.name] = start_service(settings, spec)
        wait_until_healthy(
            settings,
            plan.services,
            processes,
            timeout=max(1.0, timeout - (time.monotonic() - started_at)),
            on_progress=lambda waiting_for, _: progress(waiting_for),
        )
        for spec in plan.services:
            if spec.name in plan.background:
                processes[spec.name] = start_service(settings, spec)
    except BaseException:
        stop_services(settings, names=list(processes))
        raise
    return processes, time.monotonic() - started_at


# ---- what to tell the person ------------------------------------------------------------------


def airflow_password_file(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """Where Airflow's SimpleAuthManager keeps the generated passwords of this state dir."""
    env = os.environ if env is None else env
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if configured:
        return Path(configured)
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def airflow_login(
    settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """(user, password) for the Airflow UI, or None when there is no login to give.

    Airflow's SimpleAuthManager generates the ``admin`` password on the API server's first start
    and keeps it in the state dir, so it survives restarts and goes with ``rm -rf <state dir>``.
    With ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True`` there is no login at all.
    """
    env = os.environ if env is None else env
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        return None
    try:
        passwords = json.loads(airflow_password_file(settings, env).read_text() or "{}")
    except (OSError, ValueError):
        return None
    if AIRFLOW_USER in passwords:
        return AIRFLOW_USER, str(passwords[AIRFLOW_USER])
    if passwords:
        user, password = next(iter(passwords.items()))
        return str(user), str(password)
    return None
