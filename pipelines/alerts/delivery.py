"""Deliver an alert: always to ``alerts.jsonl``, and to a webhook and by email when configured.

``deliver(alert, settings)`` first asks the alert log whether the condition is inside its
cool-down (``alert_cooldown_hours``; a ``resolved`` alert goes out once per resolution), then
tries each configured channel ``alert_retries`` times with a short doubling back-off, and finally
appends the record, with what each channel did in its ``delivery`` field. A channel that fails is
logged and reported, never raised: the monitoring DAG must finish (and retrain or roll back)
whether or not Slack answers. The webhook payload is Slack-compatible (``text`` plus ``blocks``),
the mail subject is the alert's first line.

Neither the webhook URL (Slack puts its token in the path) nor the SMTP password is written to
logs or records.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from pipelines.alerts.records import (
    Alert,
    alert_route,
    condition_key,
    latest_by_key,
    read_alerts,
    render_text,
    should_send,
    write_alert,
)
from pipelines.config import Settings

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
BACKOFF_SECONDS = 0.5  # first wait between attempts; doubles each time
SLACK_HEADER_LIMIT = 150  # Slack rejects longer header blocks
SLACK_SECTION_LIMIT = 3000


class DeliveryFailed(Exception):
    """One attempt on one channel failed; ``retry`` says whether another attempt can help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass
class ChannelResult:
    channel: str  # "file" | "webhook" | "email"
    ok: bool
    attempts: int
    error: str | None = None


@dataclass
class DeliveryReport:
    key: str
    sent: bool  # False: suppressed (cool-down, or already resolved)
    reason: str  # why it was sent or suppressed
    channels: list[ChannelResult] = field(default_factory=list)
    record: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Sent, and every channel succeeded."""
        return self.sent and all(c.ok for c in self.channels)

    @property
    def failed_channels(self) -> list[str]:
        return [c.channel for c in self.channels if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def deliver(
    alert: Alert,
    settings: Settings,
    *,
    backoff_seconds: float = BACKOFF_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send ``alert`` on every configured channel unless its condition is cooling down.

    The cool-down is measured from the alert's own ``ts``, so replaying a day is deterministic.
    """
    key = condition_key(alert)
    sent, reason = _decide(alert, key, settings)
    if not sent:
        logger.info("alert %s suppressed: %s", key, reason)
        return DeliveryReport(key=key, sent=False, reason=reason)
    route = _route(alert, key, settings)
    if route != "page":
        reason = "for the daily digest" if route == "digest" else "recorded, sent nowhere (info)"
        return _record_only(alert, key, settings, route, reason)
    return send_on_channels(
        alert, settings, reason=reason, backoff_seconds=backoff_seconds,
        timeout_seconds=timeout_seconds, sleep=sleep,
    )  # fmt: skip


def _route(alert: Alert, key: str, settings: Settings) -> str:
    resolves = None
    if alert.type == "resolved":
        last = latest_by_key(read_alerts(settings.alerts_file)).get(key) or {}
        resolves = str(last.get("severity", "info"))
    return alert_route(alert.severity, resolves)


def _record_only(
    alert: Alert, key: str, settings: Settings, route: str, reason: str
) -> DeliveryReport:
    try:
        record = write_alert(settings.alerts_file, alert, delivery={}, route=route)
        channels = [ChannelResult("file", ok=True, attempts=1)]
    except OSError as error:
        logger.error("could not append alert %s to %s: %s", key, settings.alerts_file, error)
        record, channels = None, [ChannelResult("file", ok=False, attempts=1, error=str(error))]
    return DeliveryReport(key=key, sent=True, reason=reason, channels=channels, record=record)


def send_on_channels(
    alert: Alert,
    settings: Settings,
    *,
    reason: str,
    backoff_seconds: float = BACKOFF_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    record_file: bool = True,
) -> DeliveryReport:
    """Send ``alert`` on the webhook and by e-mail now (each retried), then record it."""
    key = condition_key(alert)
    channels: list[ChannelResult] = []
    text = render_text(alert)
    attempts = max(1, settings.alert_retries)
    if settings.alert_webhook_url:
        payload = slack_payload(alert, text)
        url = settings.alert_webhook_url
        channels.append(
            _with_retries(
                "webhook",
                lambda: post_webhook(url, payload, timeout_seconds),
                attempts,
                backoff_seconds,
                sleep,
                where=_safe_url(url),
            )
        )
    recipients = email_recipients(settings)
    if recipients:
        message = email_message(alert, text, settings.alert_email_from, recipients)
        channels.append(
            _with_retries(
                "email",
                lambda: send_email(message, settings, timeout_seconds),
                attempts,
                backoff_seconds,
                sleep,
                where=f"{settings.smtp_host}:{settings.smtp_port}",
            )
        )

    delivery = {c.channel: {k: v for k, v in asdict(c).items() if k != "channel"} for c in channels}
    record = None
    if not record_file:
        return DeliveryReport(key=key, sent=True, reason=reason, channels=channels)
    try:
        record = write_alert(settings.alerts_file, alert, delivery=delivery, route="page")
        channels.insert(0, ChannelResult("file", ok=True, attempts=1))
    except OSError as error:  # the DAG goes on; the log line is the last trace of the alert
        logger.error(
            "could not append alert %s to %s: %s\n%s",
            key,
            settings.alerts_file,
            error,
            text,
        )
        channels.insert(0, ChannelResult("file", ok=False, attempts=1, error=str(error)))
    report = DeliveryReport(key=key, sent=True, reason=reason, channels=channels, record=record)
    if report.failed_channels:
        logger.error("alert %s not delivered on %s", key, ", ".join(report.failed_channels))
    return report


def _decide(alert: Alert, key: str, settings: Settings) -> tuple[bool, str]:
    if alert.type == "resolved":
        last = latest_by_key(read_alerts(settings.alerts_file)).get(key)
        if last is None:
            return False, f"nothing to resolve: {key} never alerted"
        if last.get("type") == "resolved":
            return False, f"{key} was already resolved at {last['ts']}"
        return True, f"{key} resolved"
    cooldown = timedelta(hours=settings.alert_cooldown_hours)
    if should_send(settings.alerts_file, key, alert.ts, cooldown):
        return True, "new condition or cool-down over"
    return False, (
        f"{key} already alerted within the cool-down of {settings.alert_cooldown_hours:g} h"
    )


def _with_retries(
    channel: str,
    attempt: Callable[[], None],
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
    *,
    where: str,
) -> ChannelResult:
    """``attempt`` up to ``attempts`` times with exponential back-off (tenacity), stopping early
    on a failure that another attempt cannot help (``DeliveryFailed(retry=False)``)."""
    import tenacity

    def may_help(failure: BaseException) -> bool:
        return getattr(failure, "retry", True)

    def log_failure(state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        logger.warning(
            "alert %s to %s failed (attempt %d/%d): %s",
            channel, where, state.attempt_number, attempts, _describe(failure),
        )  # fmt: skip

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(attempts, 1)),
        wait=tenacity.wait_exponential(multiplier=backoff_seconds, min=0, max=3600),
        # smtplib's errors are OSErrors; anything else is a bug, not a flaky channel
        retry=tenacity.retry_if_exception_type((DeliveryFailed, OSError))
        & tenacity.retry_if_exception(may_help),
        after=log_failure,
        sleep=sleep,
        reraise=True,
    )
    try:
        retrying(attempt)
    except (DeliveryFailed, OSError) as failure:
        number = retrying.statistics.get("attempt_number", attempts)
        error = _describe(failure)
        logger.error("alert %s to %s gave up after %d attempts: %s", channel, where, number, error)
        return ChannelResult(channel, ok=False, attempts=number, error=error)
    number = retrying.statistics.get("attempt_number", 1)
    if number > 1:
        logger.info("alert %s to %s delivered on attempt %d", channel, where, number)
    return ChannelResult(channel, ok=True, attempts=number)


def _describe(failure: BaseException | None) -> str:
    return "not attempted" if failure is None else f"{type(failure).__name__}: {failure}"


# ---- webhook ------------------------------------------------------------------------------------


def slack_payload(alert: Alert, text: str | None = None) -> dict[str, Any]:
    """``text`` (the whole alert, the fallback every client shows) and ``blocks`` for Slack."""
    text = text if text is not None else render_text(alert)
    headline, _, rest = text.partition("\n")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(headline, SLACK_HEADER_LIMIT)},
        },
    ]
    if rest:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(rest, SLACK_SECTION_LIMIT)},
            }
        )
    context = [
        f"*type* {alert.type}",
        f"*severity* {alert.severity}",
        f"*key* {condition_key(alert)}",
    ]
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(context)}]}
    )
    return {"text": text, "blocks": blocks}


def post_webhook(url: str, payload: dict[str, Any], timeout_seconds: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            response.read()
    except urllib.error.HTTPError as error:
        # 5xx and 429 may pass on the next attempt; any other answer will not
        retry = error.code >= 500 or error.code == 429
        raise DeliveryFailed(f"HTTP {error.code} {error.reason}", retry=retry) from None
    except urllib.error.URLError as error:
        raise DeliveryFailed(f"unreachable: {error.reason}") from None


# ---- email --------------------------------------------------------------------------------------


def email_recipients(settings: Settings) -> list[str]:
    return [a.strip() for a in (settings.alert_email_to or "").split(",") if a.strip()]


def email_message(alert: Alert, text: str, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = text.partition("\n")[0]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["X-Personalize-Alert"] = condition_key(alert)
    message.set_content(text)
    return message


def send_email(message: EmailMessage, settings: Settings, timeout_seconds: float) -> None:
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            refused = smtp.send_message(message)
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused) as error:
        # a wrong password or address stays wrong on the next attempt
        raise DeliveryFailed(f"{type(error).__name__}: {error}", retry=False) from None
    if refused:
        raise DeliveryFailed(f"recipients refused: {', '.join(sorted(refused))}", retry=False)


# ---- helpers ------------------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """Scheme and host only: a webhook's path is often its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
