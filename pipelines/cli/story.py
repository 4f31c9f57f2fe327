"""``personalize story``: the platform's life story over a generated shop (``make quickstart``).

Registered on the main app by :mod:`pipelines.cli`; the work is in
:mod:`pipelines.local.story`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pipelines.cli.common import app, console, err_console, parse_day, settings_of, usage_error
from pipelines.config import Settings

MARK = {"success": "[green]✓[/]", "failed": "[red]✗[/]"}
ALERT_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


@app.command()
def story(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=50, help="Customers in the shop.")] = 2000,
    items: Annotated[int, typer.Option(min=12, help="Catalogue size.")] = 500,
    history_days: Annotated[
        int, typer.Option(min=18, help="Days of history before the live days.")
    ] = 30,
    live_days: Annotated[
        int,
        typer.Option(min=6, help="Live days: drift on the 3rd, a hand promotion on the 5th."),
    ] = 7,
    seed: Annotated[int, typer.Option(help="Same seed, same story.")] = 42,
    start: Annotated[
        str, typer.Option(help="First history day (a Saturday keeps the weekly train on Sunday).")
    ] = "2026-01-03",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Generate a shop and run its history and live days through Airflow: a broken batch is
    quarantined, drift is alerted and retrains, the gate decides, a champion that does worse live
    is rolled back. During the live days a serving API (127.0.0.1, a free port) takes a sample of
    each day's events through POST /v1/events, and one new customer's recommendations are shown
    changing. Ends with what happened and where to look. Exits 1 if a turn did not happen.

    On --profile prod it runs `personalize init` first and, as auto-promotion is off in prod,
    turns it on for its own runs (and says so) so that blessed models become champions.
    """
    from pipelines.local.story import Scenario, story_settings, tell

    settings = settings_of(ctx)
    try:
        scenario = Scenario(
            users=users,
            items=items,
            history_days=history_days,
            live_days=live_days,
            seed=seed,
            start=parse_day(start, "--start"),
        )
    except ValueError as problem:
        raise usage_error(str(problem)) from None
    for line in scenario.plan():
        err_console.print(f"[dim]plan:[/] {line}", highlight=False)
    with contextlib.ExitStack() as stack:
        if settings.profile == "prod":
            settings = stack.enter_context(_prod_services(settings))
        settings, note = story_settings(settings)
        if note:
            err_console.print(f"[yellow]{escape(note)}[/]", highlight=False)
        with _DayPrinter() as printer:
            result = tell(settings, scenario, on_event=printer.on_event, on_stage=printer.on_stage)
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
    else:
        _print_summary(result)
    if result.missing_turns:
        err_console.print(
            f"[bold red]the story missed: {', '.join(result.missing_turns)}[/] — see "
            f"{result.paths.get('summary')} and `personalize status`"
        )
        raise typer.Exit(1)


@contextlib.contextmanager
def _prod_services(settings: Settings) -> Iterator[Settings]:
    """The prod story: `personalize init` first, and an MLflow tracking server on the PostgreSQL
    store for the story's runs when ``mlflow_uri`` names none (stopped after). The DAG runs are
    real Airflow runs on the PostgreSQL metadata DB, in this process (as `personalize run`)."""
    from pipelines.local import supervisor
    from pipelines.orchestration.initialise import InitError, initialise

    err_console.print(
        "[yellow]prod story: the generated shop goes into the configured PostgreSQL databases "
        "and Redis; use scratch ones[/]"
    )
    try:
        for step in initialise(settings):
            err_console.print(f"[dim]init:[/] {step.describe()}", highlight=False)
    except InitError as problem:
        err_console.print(f"[bold red]error:[/] {problem}")
        raise typer.Exit(1) from None
    if settings.mlflow_uri is not None:
        yield settings
        return
    port = supervisor.free_port()
    settings = settings.model_copy(update={"mlflow_uri": f"http://{supervisor.HOST}:{port}"})
    spec = supervisor.service_spec(settings, "mlflow", port=port)
    try:
        process = supervisor.start_service(settings, spec)
        supervisor.wait_until_healthy(settings, [spec], {spec.name: process}, timeout=120)
        err_console.print(f"[dim]MLflow tracking server:[/] {spec.url}")
        yield settings
    except supervisor.ServiceError as problem:
        err_console.print(f"[bold red]error:[/] {problem}")
        raise typer.Exit(1) from None
    finally:
        supervisor.stop_services(settings, names=[spec.name])


class _DayPrinter:
    """One line per day (its DAG runs and how long they took), a spinner for the running one."""

    def __init__(self) -> None:
        self.day: date | None = None
        self.parts: list[str] = []
        self.failures: list[str] = []
        self.seconds = 0.0
        self.status = err_console.status("starting")

    def __enter__(self) -> _DayPrinter:
        self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.status.stop()

    def on_stage(self, text: str) -> None:
        self.flush()
        self.status.update(text)
        err_console.print(f"[bold]{text}[/]")

    def on_event(self, event: Any) -> None:
        if event.day != self.day:
            self.flush()
            self.day = event.day
        if event.kind == "started":
            why = "" if event.reason == "requested" else f" ({event.reason})"
            self.status.update(f"{event.day} {event.dag_id}{why}")
            return
        triggered = " [magenta](triggered)[/]" if event.reason.startswith("triggered") else ""
        self.parts.append(f"{event.dag_id} {MARK.get(event.state or '', '?')}{triggered}")
        self.failures += [f"{event.dag_id}.{task}" for task in event.failed_tasks]
        self.seconds += event.duration_s or 0.0

    def flush(self) -> None:
        if self.day is not None and self.parts:
            err_console.print(
                f"{self.day}  {'  '.join(self.parts)}  [dim]{self.seconds:.1f}s[/]",
                highlight=False,
            )
            for failure in self.failures:
                err_console.print(f"  [red]✗ {escape(failure[:300])}[/]", highlight=False)
        self.day, self.parts, self.failures, self.seconds = None, [], [], 0.0


def _print_summary(result: Any) -> None:
    console.rule("[bold]what happened")
    from pipelines.local.story import TURNS

    turns = Table("turn", "", "first seen", show_header=False, box=None)
    for turn in TURNS:
        seen = result.turns.get(turn) or []
        turns.add_row(turn, MARK["success"] if seen else MARK["failed"], _first(seen))
    console.print(turns)

    for model, facts in result.models.items():
        console.rule(f"[bold]{model}")
        table = Table("version", "aliases", "data window", "gate", box=None)
        for version in reversed(facts["versions"]):
            rolled_back = " (rolled back)" if version["rolled_back"] else ""
            table.add_row(
                f"v{version['version']}",
                ", ".join(version["aliases"]) + rolled_back,
                version["window"],
                version["gate"] or "-",
            )
        console.print(table)
        for move in facts["history"]:
            arrow = f"v{move['from_version']} -> v{move['to_version']}"
            if move["from_version"] is None:
                arrow = f"v{move['to_version']}"
            console.print(
                f"  {move['action']:<9} {arrow:<12} by {move['actor']}: {move['reason']}",
                highlight=False,
                markup=False,
            )

    _print_live(result.live)

    console.rule(f"[bold]alerts ({len(result.alerts)})")
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.timing["alerts_by_type"].items()))
    console.print(counts or "none")
    for alert in _notable(result.alerts):
        style = ALERT_STYLE.get(alert.get("severity") or "", "white")
        console.print(
            f"  [{style}]{alert['day']} {alert['type']}[/] {alert['summary']}", highlight=False
        )

    console.rule("[bold]where to look")
    for name, path in result.paths.items():
        console.print(f"  {name:<11} {path}", highlight=False)
    timing = result.timing
    console.print(
        f"\n{timing['wall_s']:.0f} s in all (generate {timing['generate_s']:.0f} s, history "
        f"{timing['history_s']:.0f} s, live {timing['live_s']:.0f} s); {timing['dag_runs']} DAG "
        f"runs, of which Airflow's own share {timing['airflow_share']:.0%} "
        f"({timing['airflow_overhead_s']:.0f} s outside task bodies)"
    )
    console.print(
        "\nLook around:\n"
        "  personalize status    DAG runs, champions, open alerts, quarantined batches\n"
        "  personalize up        the Airflow and MLflow UIs on localhost (Ctrl-C stops them)\n"
        "  personalize up --serve   and the serving API beside them (curl examples: README)"
    )


def _print_live(live: dict[str, Any]) -> None:
    """The live traffic: events through POST /v1/events, and one customer's answers changing."""
    if not live:
        return
    console.rule("[bold]live traffic (serving API)")
    days = live["days"]
    posted = sum(d["posted"] for d in days)
    accepted = sum(d["accepted"] for d in days)
    refused = sorted({rule for d in days for rule in d["refused_rules"]})
    seconds = sum(d.get("seconds", 0.0) for d in days)
    curated = [d for d in days if d.get("ingest") == "curated"]
    once = all(d.get("counted_once") for d in curated)
    console.print(
        f"  {posted} events of {len(days)} live days sent to POST /v1/events: {accepted} "
        f"accepted, {posted - accepted} refused by the contract"
        + (f" ({'; '.join(refused)})" if refused else "")
        + f"; {seconds:.1f} s",
        highlight=False,
    )
    console.print(
        f"  the nightly export holds them too: {len(curated)} curated days, each event "
        + ("counted once" if once else "[red]NOT counted once[/]")
        + (
            f"; {len(days) - len(curated)} day(s) quarantined (their posted events kept in the "
            "day's log)"
            if len(curated) < len(days)
            else ""
        ),
        highlight=False,
    )
    user, before, after = live.get("user"), live.get("before"), live.get("after")
    if not user or not before:
        return
    console.print(
        f"  customer {user} (new to the recommender on {live['user_first_day']}):", highlight=False
    )
    rt_before, rt_after = live.get("realtime_before") or {}, live.get("realtime_after") or {}
    if rt_after:
        moved = ", ".join(f"{k} {rt_before.get(k) or 0} -> {v}" for k, v in rt_after.items())
        console.print(f"    right after its {live['user_events']} events: {moved}", highlight=False)
    console.print(f"    before  {_rec_line(before)}", highlight=False, markup=False)
    if after:
        console.print(
            f"    after   {_rec_line(after)}   ({live['changed_on']}, after that day's runs)",
            highlight=False,
            markup=False,
        )
    else:
        console.print("    [red]its recommendations did not change during the live days[/]")


def _rec_line(answer: dict[str, Any]) -> str:
    version = f"v{answer['version']}" if answer.get("version") is not None else "no model"
    return f"{answer['strategy']:<12} recommender {version:<4} {' '.join(answer['items'])}"


def _first(lines: list[str]) -> str:
    if not lines:
        return "did not happen"
    more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
    return lines[0][:110] + more


def _notable(alerts: list[dict[str, Any]], limit: int = 12) -> list[dict[str, Any]]:
    """The first alert of each type and model, then the rest up to ``limit``."""
    seen: set[tuple[str, str | None]] = set()
    first, rest = [], []
    for alert in alerts:
        key = (alert["type"], alert.get("model"))
        (rest if key in seen else first).append(alert)
        seen.add(key)
    return (first + rest)[:limit]
