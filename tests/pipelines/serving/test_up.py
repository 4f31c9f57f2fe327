"""`personalize up --serve`: the serving API as one of `up`'s services, then `personalize down`.

The serving process is the real one (uvicorn on ``pipelines.serving``, the shop's champions and
online store); Airflow and MLflow are the stand-ins of tests/pipelines/local/test_supervisor.py
(``python -m http.server`` answering their health paths), so only the API's own start-up is paid.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import Settings
from pipelines.local import supervisor
from tests.pipelines.local.test_supervisor import fake_plan, pids, site  # noqa: F401 (fixture)

from .conftest import TOKEN, Shop


def test_up_serve_starts_the_api_beside_the_uis_shows_it_ready_and_down_stops_it(
    shop: Shop,
    site: Path,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERSONALIZE_SERVE_TOKEN", TOKEN)
    real_plan = supervisor.plan_services
    planned: list[supervisor.ServicePlan] = []

    def stand_ins_but_the_real_api(settings: Settings, **options: object) -> supervisor.ServicePlan:
        plan = real_plan(settings, **options)  # what `up` asked for, --serve included
        planned.append(plan)
        stand_in = fake_plan(site)
        served = tuple(spec for spec in plan.services if spec.name == "serve")
        return dataclasses.replace(stand_in, services=stand_in.services + served)

    monkeypatch.setattr(supervisor, "plan_services", stand_ins_but_the_real_api)
    home = shop.settings.state_dir
    runner = CliRunner()
    try:
        result = runner.invoke(
            app,
            ["--home", str(home), "up", "--detach", "--serve", "--serve-port", "0"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        (spec,) = [s for s in planned[0].services if s.name == "serve"]
        assert spec.health_url == f"{spec.url}/health"
        assert f"Serving  {spec.url}" in result.output
        assert f"docs {spec.url}/docs" in result.output
        assert "ready" in result.output and "not ready" not in result.output, result.output
        assert "serve" in pids(home)

        ready = httpx.get(f"{spec.url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["models"]["recommender"]
        assert httpx.get(f"{spec.url}/docs", timeout=10).status_code == 200
        # the token reached the child: a write with it is accepted
        event = {
            "event_id": "up-serve-1",
            "user_id": "u000001",
            "item_id": "i00002",
            "event_type": "view",
            "event_ts": f"{shop.last_day}T12:00:00+00:00",
            "quantity": 1,
            "device": "web",
        }
        posted = httpx.post(
            f"{spec.url}/v1/events",
            json=event,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert posted.status_code == 202, posted.text
        serve_pid = pids(home)["serve"]

        stopped = runner.invoke(app, ["--home", str(home), "down"], catch_exceptions=False)
        assert stopped.exit_code == 0
        assert f"stopped serve (pid {serve_pid})" in stopped.output
        assert pids(home) == {}
        assert not supervisor.process_alive(serve_pid)
        assert not supervisor.answers(spec.health_url)
    finally:
        supervisor.stop_services(Settings(home=home), timeout=5)


def test_up_without_serve_plans_no_api_and_the_plan_names_it_serve(settings: Settings) -> None:
    assert "serve" not in supervisor.plan_services(settings).names
    plan = supervisor.plan_services(settings, serve=True, serve_port=18123)
    (spec,) = [s for s in plan.services if s.name == "serve"]
    assert spec.url == "http://127.0.0.1:18123"
    assert spec.health_url == "http://127.0.0.1:18123/health"
    assert spec.name not in plan.background  # waited for, like the UIs
    assert spec.env["PERSONALIZE_HOME"] == str(settings.state_dir)


def test_a_serve_port_without_serve_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "up", "--serve-port", "0"])
    assert result.exit_code == 2 and "--serve-port needs --serve" in result.output
