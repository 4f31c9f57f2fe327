"""What monitoring does with a drift decision, delivered to a real local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.alerts.digest import send_digest
from pipelines.alerts.records import read_alerts
from pipelines.config import Settings
from pipelines.flows.monitor import act_on_drift
from pipelines.gates import MonitoringConfig, drift_action, drift_severity
from pipelines.monitoring.drift import ColumnDrift, DriftResult
from tests.pipelines.alerts.test_delivery import Receiver

DAY = date(2026, 2, 10)
CONFIG = MonitoringConfig(
    drift_share_threshold=0.3,
    retrain_cooldown_hours=168,
    key_features={"propensity": ("avg_view_price_1d",)},
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def drift(*drifted: str) -> DriftResult:
    names = ["avg_view_price_1d", "views_7d", "spend_7d", "carts_1d", "sessions_7d"]
    columns = [ColumnDrift(n, "wasserstein", 0.4 if n in drifted else 0.05, 0.26, n in drifted)
               for n in names]  # fmt: skip
    share = len(drifted) / len(names)
    return DriftResult(
        drift_share=share,
        dataset_drifted=share >= CONFIG.drift_share_threshold,
        drift_share_threshold=CONFIG.drift_share_threshold,
        columns=sorted(columns, key=lambda c: not c.drifted),
        reference_rows=2_000,
        current_rows=2_000,
        sampled=False,
    )


def act(settings: Settings, day: date, result: DriftResult) -> dict:
    verdict: dict = {"actions": [], "retrain": False}
    act_on_drift(settings, "propensity", 3, day, result, None, None, CONFIG, verdict)
    return verdict


def drift_records(settings: Settings) -> list[dict]:
    return [a for a in read_alerts(settings.alerts_file) if a["type"] == "drift"]


def test_below_the_threshold_nothing_is_alerted_over_it_a_retrain_pages_then_the_digest(
    settings: Settings, receiver: Receiver
) -> None:
    settings = settings.model_copy(update={"alert_webhook_url": receiver.url})

    # one ordinary column over its threshold, the share below 0.3: the report's business only
    quiet = act(settings, DAY, drift("views_7d"))
    assert (quiet["drift_decision"]["action"], quiet["retrain"]) == ("none", False)
    assert drift_records(settings) == [] and receiver.bodies == []

    # the key feature drifts: retrain, and a page naming it
    first = act(settings, DAY + timedelta(days=1), drift("avg_view_price_1d"))
    assert first["retrain"] and first["drift_decision"]["action"] == "alert_and_retrain"
    (page,) = receiver.bodies
    assert page["text"].startswith("[CRITICAL] Feature drift on propensity v3")
    assert "avg_view_price_1d" in page["text"] and "retrain triggered" in page["text"]

    # the next day it persists while the retrain cools down: a digest line, not a second page
    held = act(settings, DAY + timedelta(days=2), drift("avg_view_price_1d", "views_7d"))
    assert (held["drift_decision"]["action"], held["retrain"]) == ("alert", False)
    assert len(receiver.bodies) == 1, "a warning never pages"
    last = drift_records(settings)[-1]
    assert (last["severity"], last["route"]) == ("warning", "digest")
    digest = send_digest(settings, DAY + timedelta(days=2))
    assert digest["sent"] and digest["warnings"] == 1
    assert receiver.bodies[-1]["text"].startswith("[WARNING] Daily digest")
    assert "propensity" in receiver.bodies[-1]["text"]


def test_severity_follows_what_the_decision_set_off() -> None:
    at = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    retrain = drift_action(0.4, ["views_7d"], (), CONFIG, None, at)
    held = drift_action(0.4, ["views_7d"], (), CONFIG, at - timedelta(hours=1), at)
    unmeasured = drift_action(None, [], (), CONFIG, None, at)
    calm = drift_action(0.1, ["views_7d"], (), CONFIG, None, at)
    assert [d.action for d in (retrain, held, unmeasured, calm)] == [
        "alert_and_retrain", "alert", "alert", "none",
    ]  # fmt: skip
    assert [drift_severity(d) for d in (retrain, held, unmeasured, calm)] == [
        "critical", "warning", "critical", "info",
    ]  # fmt: skip
