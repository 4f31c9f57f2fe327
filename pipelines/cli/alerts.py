"""``personalize alerts``: the alert log as on-call reads it, and acknowledgements."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipelines.cli.common import app, console, parse_day, settings_of, usage_error

alerts_app = typer.Typer(
    help="List alerts in time order (what happened, what the platform did, the links); "
    "`personalize alerts ack ID --note TEXT` records that you looked.",
    no_args_is_help=False,
)
app.add_typer(alerts_app, name="alerts")

SEVERITIES = ("info", "warning", "critical")


@alerts_app.callback(invoke_without_command=True)
def list_alerts(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="First day, YYYY-MM-DD (the alert's day).")
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option("--severity", help="Minimum severity: info, warning or critical."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="The newest N.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Alerts oldest first: id, time, severity, what happened, what the platform already did,
    the report and runbook links, and any acknowledgement."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.alerts.acks import acks_file, read_acks, select_alerts
    from pipelines.alerts.records import read_alerts

    if severity is not None and severity not in SEVERITIES:
        raise usage_error(f"--severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
    settings = settings_of(ctx)
    chosen = select_alerts(
        read_alerts(settings.alerts_file),
        since=parse_day(since, "--since") if since else None,
        severity=severity,
        model=model,
    )[-limit:]
    acks = read_acks(acks_file(settings))
    if as_json:
        console.print_json(
            json.dumps([{**a, "ack": acks.get(a["id"])} for a in chosen], default=str)
        )
        return
    if not chosen:
        console.print("no alerts match: `personalize alerts` lists them all")
        return
    for alert in chosen:
        console.print(
            f"{alert['id']}  {str(alert.get('ts', ''))[:19]}  "
            f"[{str(alert.get('severity', '')).upper()}] {alert.get('summary', '')}",
            highlight=False,
            markup=False,
        )
        done = alert.get("actions") or []
        if done:
            console.print(f"    done: {'; '.join(done)}", highlight=False, markup=False)
        for label in ("report", "runbook", "runbook_link"):
            if alert.get(label):
                console.print(f"    {label}: {alert[label]}", highlight=False, markup=False)
        ack = acks.get(alert["id"])
        if ack:
            console.print(
                f"    acknowledged by {ack['by']} at {ack['ts'][:19]}: {ack['note']}",
                highlight=False,
                markup=False,
            )


@alerts_app.command("ack")
def ack(
    ctx: typer.Context,
    identifier: Annotated[str, typer.Argument(help="The alert's id (or a unique prefix).")],
    note: Annotated[str, typer.Option("--note", help="What you found or did.")],
) -> None:
    """Record that you looked at an alert, with a note (in `<home>/acks.jsonl`)."""
    from pipelines.alerts.acks import UnknownAlert, acknowledge

    try:
        done = acknowledge(settings_of(ctx), identifier, note)
    except UnknownAlert as problem:
        raise usage_error(str(problem)) from None
    console.print(f"acknowledged {done['id']}: {done['summary']}", highlight=False, markup=False)
