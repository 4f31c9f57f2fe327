"""What an engineer sees after `personalize up`: the MLflow and Airflow UIs in headless Chromium.

One real start of both services on a small state dir (two registered models with aliases), the
pages an engineer would open, then `personalize down`. Needs Debian's `chromium` and
`chromium-driver` (`.ci/run` installs them); Selenium never downloads a browser here
(`SE_OFFLINE`, explicit binary and driver paths). Without them the test skips, or fails under
PERSONALIZE_REQUIRE_SERVICES=1 (CI).

Screenshots go to the test's temp dir and, with PERSONALIZE_SAVE_SCREENSHOTS=1, to docs/images/
for the tour.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import registry
from pipelines.config import Settings
from pipelines.local import supervisor
from tests.conftest import services_required

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
DOCS_IMAGES = REPO / "docs" / "images"
# read at import: the per-test environment isolation (tests/conftest.py) clears PERSONALIZE_*
SAVE_SCREENSHOTS = os.environ.get("PERSONALIZE_SAVE_SCREENSHOTS", "") == "1"
# the `personalize` command, as the console script runs it
PERSONALIZE = (
    sys.executable,
    "-c",
    "from pipelines.cli import app; app(prog_name='personalize')",
)
DAG_IDS = ("ingest", "features", "train")
UP_TIMEOUT = 240  # seconds; `up` itself reports how long it took


@dataclass
class Stack:
    settings: Settings
    airflow_url: str
    mlflow_url: str
    up_output: str
    screenshots: Path

    def personalize(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PERSONALIZE, "--home", str(self.settings.state_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return
    reason = f"headless browser check needs {' and '.join(missing)} (apt-get install chromium "
    reason += "chromium-driver; .ci/run does)"
    if services_required():
        pytest.fail(f"{reason}; PERSONALIZE_REQUIRE_SERVICES=1 makes this a failure", False)
    pytest.skip(reason)


def _register(settings: Settings, model: str, seed: int) -> int:
    """A tiny sklearn model logged and registered the way training does (challenger alias)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    estimator = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    run = registry.TrainingRun(
        model=model,
        log_model=lambda name: mlflow.sklearn.log_model(
            estimator, name=name, pip_requirements=registry.pinned_requirements()
        ),
        metrics={"test_roc_auc": 0.7 + seed / 100},
        lineage=registry.Lineage(
            window_start=date(2026, 1, 1),
            window_end=date(2026, 1, 30),
            partitions=("events/date=2026-01-30",),
            content_hash="cd" * 32,
            gx_run_ids=("events-2026-01-30@t",),
            feature_service=f"{model}_v1",
        ),
    )
    version = registry.log_and_register(settings, run).version
    registry.tag_version(settings, model, version, {"gate.decision": "blessed"})
    return version


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_browser()
    root = tmp_path_factory.mktemp("browser")
    settings = Settings(home=root / "home")
    # propensity: v1 champion, v2 challenger; recommender: v1 champion and challenger
    first = _register(settings, "propensity", seed=1)
    registry.promote(settings, "propensity", first, actor="e2e", reason="first champion")
    _register(settings, "propensity", seed=2)
    only = _register(settings, "recommender", seed=3)
    registry.promote(settings, "recommender", only, actor="e2e", reason="first champion")

    ports = supervisor.resolve_ports({"--airflow-port": 0, "--mlflow-port": 0})
    stack = Stack(
        settings=settings,
        airflow_url=f"http://127.0.0.1:{ports['--airflow-port']}",
        mlflow_url=f"http://127.0.0.1:{ports['--mlflow-port']}",
        up_output="",
        screenshots=root / "screenshots",
    )
    stack.screenshots.mkdir()
    try:
        up = stack.personalize(
            *("up", "--detach", "--timeout", str(UP_TIMEOUT)),
            *("--airflow-port", str(ports["--airflow-port"])),
            *("--mlflow-port", str(ports["--mlflow-port"])),
            timeout=UP_TIMEOUT + 60,
        )
        stack.up_output = up.stdout + up.stderr
        assert up.returncode == 0, f"personalize up failed:\n{stack.up_output}"
        yield stack
    finally:
        stack.personalize("down", timeout=120)
        supervisor.stop_services(settings, timeout=5)  # whatever `down` could not stop


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[object]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to fetch a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,900",
        "--no-first-run",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    """The page's visible text; empty while it is (re)loading (the body element goes stale)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except WebDriverException:
        return ""


def wait_for(
    driver,
    condition: Callable[[str], bool],
    *,
    timeout: float = 60,
    reload_every: float | None = None,
    what: str = "",
) -> str:
    """Poll the page's visible text until ``condition`` holds (reloading now and then)."""
    deadline = time.monotonic() + timeout
    last_reload = time.monotonic()
    text = ""
    while time.monotonic() < deadline:
        text = page_text(driver)
        if condition(text):
            return text
        if reload_every is not None and time.monotonic() - last_reload > reload_every:
            driver.refresh()
            last_reload = time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"{what or 'page'} not shown after {timeout:.0f} s; page text:\n{text}")


def screenshot(stack: Stack, driver, name: str) -> None:
    driver.save_screenshot(str(stack.screenshots / name))
    if SAVE_SCREENSHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(DOCS_IMAGES / name))


def tidy_mlflow(driver) -> None:
    """Close MLflow's first-visit pop-ups (assistant panel, new-UI announcement) for screenshots.

    Cosmetic only: no check depends on it, so a renamed key or button just leaves a pop-up open.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    opened = driver.execute_script("return localStorage.getItem('mlflow.assistant.panelOpen_v1');")
    if opened != "false":
        driver.execute_script("localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');")
        driver.refresh()
        time.sleep(2)
    for button in driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        try:
            if button.is_displayed():
                button.click()
        except WebDriverException:
            continue  # a pop-up that went away by itself


def scroll_to_text(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")
    if found:
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", found[0])
        time.sleep(0.5)


def test_up_prints_both_urls_and_the_airflow_login(stack: Stack) -> None:
    assert stack.airflow_url in stack.up_output
    assert stack.mlflow_url in stack.up_output
    assert re.search(r"login admin / \S+", stack.up_output), stack.up_output
    reported = re.search(r"up in (\d+) s", stack.up_output)
    print(f"\npersonalize up --detach: {reported and reported.group(1)} s until both UIs answered")
    again = stack.personalize("up", "--detach")
    assert again.returncode == 0 and "already running" in again.stdout


def test_mlflow_shows_the_registered_models_with_their_aliases(stack: Stack, browser) -> None:
    browser.get(f"{stack.mlflow_url}/#/models")
    wait_for(
        browser,
        lambda text: "propensity" in text and "recommender" in text,
        what="registered models",
    )
    tidy_mlflow(browser)
    wait_for(browser, lambda text: "@ challenger" in text or "challenger" in text, what="aliases")
    screenshot(stack, browser, "mlflow-registered-models.png")

    browser.get(f"{stack.mlflow_url}/#/models/propensity")
    text = wait_for(
        browser,
        lambda text: "Version 2" in text and "champion" in text and "challenger" in text,
        what="propensity's versions with aliases",
    )
    assert "Version 1" in text
    tidy_mlflow(browser)
    scroll_to_text(browser, "Versions")
    screenshot(stack, browser, "mlflow-model-versions.png")

    browser.get(f"{stack.mlflow_url}/#/models/propensity/versions/1")
    text = wait_for(
        browser, lambda text: "Aliases" in text and "champion" in text, what="version 1 page"
    )
    assert "gate.decision" in text and "blessed" in text
    tidy_mlflow(browser)
    screenshot(stack, browser, "mlflow-model-version.png")


def test_airflow_shows_the_dags_after_login(stack: Stack, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    user, password = re.search(r"login (\S+) / (\S+)", stack.up_output).groups()
    browser.get(f"{stack.airflow_url}/")
    form = WebDriverWait(browser, 60)
    form.until(expected_conditions.presence_of_element_located((By.NAME, "username")))
    browser.find_element(By.NAME, "username").send_keys(user)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda text: "Sign in" not in text and "Dags" in text, what="after login")

    browser.get(f"{stack.airflow_url}/dags")
    # the DAG processor starts once the UIs answer and parses dags/ within a few seconds
    dag_names = re.compile(r"^(\w+)$", re.MULTILINE)
    wait_for(
        browser,
        lambda text: set(DAG_IDS) <= set(dag_names.findall(text)),
        timeout=180,
        reload_every=5,
        what=f"DAGs {', '.join(DAG_IDS)}",
    )
    screenshot(stack, browser, "airflow-dags.png")


def test_down_stops_both_uis(stack: Stack) -> None:
    result = stack.personalize("down")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped airflow-api-server" in result.stdout and "stopped mlflow" in result.stdout
    assert supervisor.running_services(stack.settings) == []
    assert not supervisor.answers(stack.airflow_url + supervisor.AIRFLOW_HEALTH_PATH)
    assert not supervisor.answers(stack.mlflow_url + supervisor.MLFLOW_HEALTH_PATH)
