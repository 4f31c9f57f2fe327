"""The README's serving examples work as printed: every ``curl`` command of the Serving section's
shell block runs (bash, the real ``curl``) against a live server with registered models and
answers 2xx. Only the address changes (the server listens on a free port), and the token is the
one the block exports. Without ``curl`` on the machine, each command's arguments are expanded by
bash and sent with httpx instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.serving.app import create_app
from pipelines.serving.testing import running_server

from .conftest import Shop

README = Path(__file__).resolve().parents[3] / "README.md"
PRINTED = "http://127.0.0.1:8000"


def serving_block() -> str:
    """The first ```bash block of the README's ``## Serving`` section."""
    text = README.read_text()
    section = text[text.index("## Serving") :]
    section = section[: section.index("\n## ", 1)]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the README's Serving section has no ```bash block"
    return match.group(1)


def shell_commands(block: str) -> list[str]:
    """The block's commands: lines joined at a trailing backslash and inside open double quotes,
    comments dropped, ``;``-separated commands apart."""
    commands, current = [], ""
    for line in block.splitlines():
        current += line + "\n"
        if line.endswith("\\") or len(re.findall(r'(?<!\\)"', current)) % 2:
            continue
        text = re.sub(r"\s+#[^\"']*$", "", current.strip())
        commands += [part.strip() for part in text.split("; ") if part.strip()]
        current = ""
    return commands


def test_the_block_has_the_examples_the_readme_promises() -> None:
    commands = shell_commands(serving_block())
    curls = [c for c in commands if c.startswith("curl")]
    joined = "\n".join(curls)
    for needed in ("k=5", "category=", "exclude=", "Authorization: Bearer", "/v1/events"):
        assert needed in joined, needed
    assert len(curls) >= 10


@pytest.fixture(scope="module")
def server(shop: Shop) -> Iterator[tuple[str, str]]:
    block = serving_block()
    token = re.search(r"export PERSONALIZE_SERVE_TOKEN=(\S+)", block)
    assert token, "the block exports the token its POST sends"
    settings = shop.settings.model_copy(update={"serve_token": token.group(1)})
    with running_server(create_app(settings, poll=False)) as url:
        yield url, token.group(1)


def _run_with_curl(command: str, env: dict[str, str]) -> None:
    # --fail-with-body: a non-2xx answer makes curl (and, with pipefail, the pipeline) fail
    script = 'set -o pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + command
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout}{done.stderr}"


def _run_with_httpx(command: str, env: dict[str, str]) -> None:
    """bash expands the arguments (``$(date ...)``, the token), httpx sends the request."""
    curl_part = command.split(" | ")[0]
    expanded = subprocess.run(
        ["bash", "-c", "printf '%s\\0' " + curl_part.removeprefix("curl")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split("\0")[:-1]
    method, headers, data, url = "GET", {}, None, None
    args = iter(expanded)
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data, method = next(args), "POST" if method == "GET" else method
        elif not arg.startswith("-"):
            url = arg
    assert url, command
    response = httpx.request(method, url, headers=headers, content=data, timeout=30)
    assert 200 <= response.status_code < 300, f"{command}\n{response.status_code} {response.text}"


def test_every_curl_example_answers_2xx(server: tuple[str, str]) -> None:
    url, token = server
    env = {"PATH": "/usr/bin:/bin", "PERSONALIZE_SERVE_TOKEN": token}
    run = _run_with_curl if shutil.which("curl") else _run_with_httpx
    commands = [c for c in shell_commands(serving_block()) if c.startswith("curl")]
    for command in commands:
        assert PRINTED in command, command
        run(command.replace(PRINTED, url), env)
