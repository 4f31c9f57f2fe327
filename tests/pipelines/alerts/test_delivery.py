"""Delivery to a real local webhook receiver and a real local SMTP server, failures included."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from pipelines.alerts.delivery import deliver
from pipelines.alerts.records import read_alerts, resolve
from pipelines.config import Settings
from pipelines.monitoring.drift import ColumnDrift, DriftResult
from pipelines.monitoring.drift_alerts import drift_alert

NOW = datetime(2026, 2, 14, 6, 0, tzinfo=UTC)
SECRET_PATH = "/services/T000/B000/not-a-real-token"


class Receiver:
    """A webhook endpoint: answers with the queued status codes (then 200), keeps each body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"nope")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def alert_for(model: str = "propensity", ts: datetime = NOW):
    result = DriftResult(
        drift_share=0.6,
        dataset_drifted=True,
        drift_share_threshold=0.5,
        columns=[
            ColumnDrift("device_share_web_30d", "Wasserstein distance (normed)", 0.31, 0.1, True),
            ColumnDrift("top_category_1", "Jensen-Shannon distance", 0.14, 0.1, True),
            ColumnDrift("views_7d", "Wasserstein distance (normed)", 0.02, 0.1, False),
        ],
        reference_rows=10_000,
        current_rows=9_500,
        sampled=True,
    )
    alert = drift_alert(
        result,
        model=model,
        version=7,
        day=date(2026, 2, 13),
        report="/srv/reports/propensity/2026-02-13/drift.html",
        actions=["rolled back from v7 to v6"],
    )
    alert.ts = ts
    return alert


def settings_for(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"alert_retries": 3, **overrides})


def test_one_alert_reaches_webhook_mail_and_the_log(settings, receiver, smtp) -> None:
    mailbox, port = smtp
    before = len(mailbox.messages)
    settings = settings_for(
        settings,
        alert_webhook_url=receiver.url,
        alert_email_to="oncall@example.com, ml-team@example.com",
        smtp_host="127.0.0.1",
        smtp_port=port,
    )
    report = deliver(alert_for(), settings, sleep=lambda _: None)

    assert report.ok and report.sent
    assert [c.channel for c in report.channels] == ["file", "webhook", "email"]
    headline = (
        "[CRITICAL] Data drift on propensity v7: 2/3 features drifted (share 0.60, alert at 0.50)"
    )

    (body,) = receiver.bodies
    assert body["text"].splitlines()[0] == headline
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": headline}}
    section = body["blocks"][1]["text"]["text"]
    assert "device_share_web_30d: 0.31 (threshold 0.1" in section
    assert "Runbook: docs/runbook.md#drift" in section

    recipients, mail = mailbox.messages[before]
    assert recipients == ["oncall@example.com", "ml-team@example.com"]
    assert mail["Subject"] == headline
    text = mail.get_content()
    assert text.index("device_share_web_30d") < text.index("top_category_1")  # worst first
    assert "Already done: rolled back from v7 to v6" in text
    assert "Report: /srv/reports/propensity/2026-02-13/drift.html" in text
    assert "Runbook: docs/runbook.md#drift" in text

    (record,) = read_alerts(settings.alerts_file)
    assert record["delivery"]["webhook"] == {"ok": True, "attempts": 1, "error": None}
    assert record["delivery"]["email"]["ok"] is True
    assert [f["column"] for f in record["details"]["drifted_features"]] == [
        "device_share_web_30d",
        "top_category_1",
    ]


def test_a_failing_webhook_is_retried_with_back_off(settings, receiver) -> None:
    receiver.statuses = [500, 503]
    waits: list[float] = []
    settings = settings_for(settings, alert_webhook_url=receiver.url)
    report = deliver(alert_for(), settings, backoff_seconds=0.25, sleep=waits.append)

    webhook = report.channels[1]
    assert webhook.ok and webhook.attempts == 3
    assert waits == [0.25, 0.5]
    assert len(receiver.bodies) == 3
    assert read_alerts(settings.alerts_file)[0]["delivery"]["webhook"]["attempts"] == 3


def test_a_refused_payload_is_not_retried(settings, receiver) -> None:
    receiver.statuses = [400]
    report = deliver(alert_for(), settings_for(settings, alert_webhook_url=receiver.url))
    webhook = report.channels[1]
    assert not webhook.ok and webhook.attempts == 1
    assert webhook.error == "DeliveryFailed: HTTP 400 Bad Request"


def test_an_unreachable_channel_is_logged_and_recorded_not_raised(settings, caplog) -> None:
    closed = free_port()
    settings = settings_for(
        settings,
        alert_webhook_url=f"http://127.0.0.1:{closed}{SECRET_PATH}",
        alert_email_to="oncall@example.com",
        smtp_host="127.0.0.1",
        smtp_port=closed,
        alert_retries=2,
    )
    with caplog.at_level(logging.WARNING, logger="pipelines.alerts.delivery"):
        report = deliver(alert_for(), settings, sleep=lambda _: None, timeout_seconds=2)

    assert report.sent and not report.ok
    assert report.failed_channels == ["webhook", "email"]
    (record,) = read_alerts(settings.alerts_file)  # the local log has it all the same
    assert record["delivery"]["webhook"]["ok"] is False
    assert record["delivery"]["webhook"]["attempts"] == 2
    assert "unreachable" in record["delivery"]["webhook"]["error"]
    assert record["delivery"]["email"]["ok"] is False
    assert "gave up after 2 attempts" in caplog.text
    assert SECRET_PATH not in caplog.text and SECRET_PATH not in json.dumps(record)


def test_the_same_condition_is_sent_once_per_cool_down(settings, receiver) -> None:
    settings = settings_for(settings, alert_webhook_url=receiver.url, alert_cooldown_hours=24)
    assert deliver(alert_for(ts=NOW), settings).sent

    again = deliver(alert_for(ts=NOW + timedelta(hours=6)), settings)
    assert not again.sent and "cool-down of 24 h" in again.reason
    other = deliver(alert_for(model="recommender", ts=NOW + timedelta(hours=6)), settings)
    assert other.sent  # another model is another condition

    assert deliver(alert_for(ts=NOW + timedelta(hours=25)), settings).sent  # a reminder
    assert len(receiver.bodies) == 3
    assert len(read_alerts(settings.alerts_file)) == 3


def test_a_resolved_condition_says_so_once(settings, receiver) -> None:
    settings = settings_for(settings, alert_webhook_url=receiver.url)
    deliver(alert_for(ts=NOW), settings)

    resolved = resolve(settings.alerts_file, "drift:propensity", now=NOW + timedelta(hours=2))
    assert resolved is not None
    report = deliver(resolved, settings)
    assert report.sent and report.ok  # inside the cool-down, still news
    assert receiver.bodies[-1]["text"].startswith("[INFO] Resolved: Data drift on propensity v7")
    assert "Runbook: docs/runbook.md#resolved" in receiver.bodies[-1]["text"]

    assert resolve(settings.alerts_file, "drift:propensity", now=NOW + timedelta(hours=3)) is None
    assert not deliver(resolved, settings).sent  # delivering it twice does not repeat it
    assert [r["type"] for r in read_alerts(settings.alerts_file)] == ["drift", "resolved"]
    # the drift coming back alerts at once, cool-down or not
    assert deliver(alert_for(ts=NOW + timedelta(hours=4)), settings).sent


def warning_for(table: str, ts: datetime) -> object:
    from pipelines.alerts.records import Alert

    return Alert(
        type="quarantine",
        severity="warning",
        summary=f"{table} batch of 2026-02-13 quarantined: 1 check failed",
        day=date(2026, 2, 13),
        table=table,
        ts=ts,
    )


def test_warnings_wait_for_the_daily_digest_and_info_is_sent_nowhere(settings, receiver) -> None:
    """Only critical alerts page. The day's warnings go out once, together; info never."""
    from pipelines.alerts.digest import send_digest
    from pipelines.alerts.records import Alert

    settings = settings_for(settings, alert_webhook_url=receiver.url)
    for table in ("users", "items"):
        report = deliver(warning_for(table, NOW), settings)
        assert report.sent and report.reason == "for the daily digest"
    info = Alert(type="retrain", severity="info", summary="Retraining propensity", ts=NOW)
    assert deliver(info, settings).reason == "recorded, sent nowhere (info)"
    assert receiver.bodies == [], "no page for a warning or an info"
    assert [r["route"] for r in read_alerts(settings.alerts_file)] == ["digest", "digest", "record"]

    assert send_digest(settings, date(2026, 2, 13)) == {
        "day": "2026-02-13", "warnings": 0, "sent": False,
    }, "the warnings of the 14th are not the 13th's"  # fmt: skip
    assert send_digest(settings, date(2026, 2, 14))["warnings"] == 2
    (body,) = receiver.bodies
    lines = body["text"].splitlines()
    assert lines[0] == "[WARNING] Daily digest for 2026-02-14: 2 warning(s) (2 quarantine)"
    assert any("users batch of 2026-02-13 quarantined" in line for line in lines)
    assert any("docs/runbook.md#quarantine" in line for line in lines)
    assert send_digest(settings, date(2026, 2, 14))["sent"] is False, "a re-run sends nothing"
    assert len(receiver.bodies) == 1
    # a critical alert still pages at once, and its resolution closes the page the same way
    assert deliver(alert_for(ts=NOW), settings).reason == "new condition or cool-down over"
    assert len(receiver.bodies) == 2
